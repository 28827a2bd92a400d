// Guest rules: each family is one function over the model, reporting findings with the guest
// file, line, evidence and a concrete fix. A rule never aborts on an unparsable file: that is a
// finding on its line.
#pragma once

#include <set>
#include <string>

#include "fsck/report.h"
#include "guestfs/model.h"

namespace imgcheck::guest {

// Where guest findings go: the results of the VM's disks (findings about one disk go to that
// disk's result, the others to the first disk's).
class Reporter {
 public:
  Reporter(std::vector<fsck::CheckResult*> disks) : disks_(std::move(disks)) {}
  void Report(fsck::P code, fsck::Fields f);

 private:
  std::vector<fsck::CheckResult*> disks_;
};

void CheckFstab(const Guest& g, Reporter& r);
void CheckGrub(const Guest& g, Reporter& r);
void CheckLvm(const Guest& g, Reporter& r);
void CheckInitramfs(const Guest& g, Reporter& r);
void CheckPartitions(const Guest& g, Reporter& r);
void CheckFilesystems(const Guest& g, Reporter& r);
void CheckHygiene(const Guest& g, Reporter& r);
// Firmware against the disks: UEFI needs an ESP with a loader the firmware finds (the removable
// path EFI/BOOT/BOOTX64.EFI, or a Boot#### entry of the NVRAM file); BIOS needs boot code in the
// boot disk's MBR and, on GPT, a BIOS boot partition. Errors with a domain, warnings when the
// firmware is only assumed.
void CheckFirmware(const Guest& g, const vm::Machine& m, Reporter& r);
// The disks (appliance devices) a filesystem lives on (an LV: its VG's PVs' disks).
std::set<std::string> DisksOf(const Guest& g, const Filesystem& f);
// Why a raw kernel name does not exist on this VM: " (this VM's disks are sda (sata), sdb ...:
// the filesystem at that position is /dev/sda1)"; "" when the name exists.
std::string AbsentName(const Guest& g, const std::string& spec);

// Shared helpers.
std::vector<std::string> SplitWords(const std::string& line);
std::string Describe(const Guest& g, const Filesystem& f);  // "xfs UUID=... on /dev/vda1"
// The guest's name for an appliance device (/dev/sda1 -> /dev/vda1).
std::string GuestName(const Guest& g, const std::string& device);

}  // namespace imgcheck::guest
