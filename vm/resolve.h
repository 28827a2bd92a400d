// The one place that builds the VM model from the command line. `check`, `info`, `repair` and
// `boot-test` call ResolveMachine with what the user gave: IMAGEs (the disks of one VM in
// attach order, with libvirt's defaults), or a libvirt domain (--domain-xml FILE|-, or -d NAME
// read through libvirt, read-only) that names the disks itself.
//
// The result is everything a consumer needs to run or judge the VM the way libvirt would: the
// disks in the order the guest enumerates them, each with its path, declared format (never
// probed when declared), bus, controller and model, predicted guest name, boot order and
// declared backing chain; the machine type; the firmware with its loader and NVRAM path.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "qcow2/result.h"
#include "vm/machine.h"

namespace imgcheck::vm {

struct MachineArgs {
  std::vector<std::string> images;        // IMAGE arguments; none when a domain is given
  std::optional<std::string> format;      // -f/--format qcow2|raw: every IMAGE's declared format
  std::optional<Bus> bus;                 // --bus: how every IMAGE is attached (default virtio)
  std::optional<std::string> domain_xml;  // --domain-xml FILE; "-" reads standard input
  std::optional<std::string> domain;      // -d NAME: the domain's inactive XML through libvirt
  std::optional<std::string> connect;     // -c URI (libvirt's default URI when not given); also
                                          // resolves <disk type='volume'> of a --domain-xml
};

// Errors (one line, for "imgcheck: ..."; exit 1): contradictory arguments (a domain with
// IMAGEs, --format or --bus), an unreadable, oversized, malformed or hostile domain XML, a
// domain libvirt does not know, libvirt not installed (only -d/-c load it, with dlopen).
// Nothing is defined, started or changed in libvirt.
Result<Machine> ResolveMachine(const MachineArgs& args);

// Reads a small text file ("-": standard input) of at most `limit` bytes.
Result<std::string> ReadBounded(const std::string& path, size_t limit, const char* what);

}  // namespace imgcheck::vm
