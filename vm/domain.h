// Reading a libvirt domain (what `virsh dumpxml` prints) into the VM model. Parsed with pugixml,
// which never expands DTD entities; a document with a DOCTYPE (where entities would be
// declared) is refused outright, and so is one larger than kMaxDomainXml. What is read is what
// decides whether the VM boots: every disk in libvirt's order (file, block, volume; network
// disks kept for their guest name but not checkable; cdroms and floppies skipped), its declared
// format, <backingStore> chain, bus and controller, read-only/shareable, boot order; the machine
// type; firmware (<os firmware='efi'>, <loader>, secure boot, NVRAM); DAC <seclabel>.
// Deliberately not read: SELinux and AppArmor labels, network interfaces, graphics.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "qcow2/result.h"
#include "vm/machine.h"

namespace imgcheck::vm {

// The largest domain XML accepted: real ones are a few KiB; the same bound as for policies.
inline constexpr size_t kMaxDomainXml = 16u << 20;

// Parses one <domain> document; `origin` says where it came from (for messages and
// Machine::origin). Errors are one line, for `imgcheck: ...`.
Result<Machine> ParseDomainXml(std::string_view xml, const std::string& origin);

// libvirt's virDiskNameToIndex: "vda" -> 0, "sdb" -> 1, "hdaa" -> 26; nullopt if `dev` is not a
// disk name. libvirt orders the disks of one bus by it and derives drive addresses from it.
std::optional<unsigned> TargetIndex(std::string_view dev);

}  // namespace imgcheck::vm
