// Guest rules: each family is one function over the model, reporting findings with the guest
// file, line, evidence and a concrete fix. A rule never aborts on an unparsable file: that is a
// finding on its line.
#pragma once

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

// Shared helpers.
std::vector<std::string> SplitWords(const std::string& line);
std::string Describe(const Guest& g, const Filesystem& f);  // "xfs UUID=... on /dev/vda1"
// The guest's name for an appliance device (/dev/sda1 -> /dev/vda1).
std::string GuestName(const Guest& g, const std::string& device);

}  // namespace imgcheck::guest
