// The checks only the VM definition reveals, run after the format checks of its disks: the
// declared backing chain against the image headers, a backing file without a recorded format
// (libvirt refuses it), every file of every chain as the qemu user reaches it, IDE on q35, the
// firmware files, and the disks and devices that cannot be checked offline. (Declared formats
// are judged by the format check itself; firmware against the disks' contents by the guest
// phase, which can read the ESP.)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fsck/report.h"
#include "vm/machine.h"

namespace imgcheck::vm {

struct VmCheckOptions {
  std::optional<std::string> qemu_user;  // --qemu-user USER[:GROUP]
  std::string qemu_conf = "/etc/libvirt/qemu.conf";
};

// A disk imgcheck can open: a local file or block device (a volume once resolved).
bool Checkable(const Disk& d);

// The disks to check, in order, with their declared formats: the images of `m`'s checkable
// disks.
std::vector<const Disk*> CheckableDisks(const Machine& m);

// `results[i]` is the format check (with its chain) of CheckableDisks(m)[i]; findings about the
// VM as a whole go to results.front(). Permissions are computed only for a libvirt domain or
// when --qemu-user is given (without them nothing says QEMU runs under libvirt).
void CheckVm(const Machine& m, std::vector<fsck::CheckResult>& results,
             const VmCheckOptions& opts);

}  // namespace imgcheck::vm
