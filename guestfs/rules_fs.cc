// Filesystem consistency, read-only: e2fsck -n / xfs_repair -n on the appliance's copy-on-write
// overlay (the image is never written). A dirty journal is told apart from corruption: it is
// replayed into the overlay first (mount, umount) and reported as such. All filesystems are
// checked by one script, in one appliance round trip.
#include <fmt/format.h>

#include <map>
#include <sstream>

#include "guestfs/rules.h"

namespace imgcheck::guest {

// A filesystem check that takes longer is stopped (big filesystems under TCG): the rest of the
// guest checks still run. `timeout` exits 124 when it stops the command.
constexpr int kFsCheckSeconds = 300;

void CheckFilesystems(const Guest& g, Reporter& r) {
  using fsck::P;
  std::string script = "mkdir -p /tmp/imgcheck-replay; ";
  std::vector<const Filesystem*> checked;
  for (const Filesystem& f : g.filesystems) {
    std::optional<std::string> kernel = g.KernelName(f.device);
    if (!kernel) continue;  // never run a tool on a device we cannot name for certain
    const std::string& d = *kernel;
    if (f.type == "ext2" || f.type == "ext3" || f.type == "ext4") {
      script += fmt::format(
          "echo imgcheck-fs={1}; "
          "if dumpe2fs -h {0} 2>/dev/null | grep -q needs_recovery; then echo dirty=1; "
          "mount {0} /tmp/imgcheck-replay && umount /tmp/imgcheck-replay; fi; "
          "timeout {2} e2fsck -n -f {0} >/tmp/imgcheck-fsck.out 2>&1; echo rc=$?; "
          "tail -n 3 /tmp/imgcheck-fsck.out | sed 's/^/out=/'; ",
          d, f.device, kFsCheckSeconds);
    } else if (f.type == "xfs") {
      script += fmt::format(
          "echo imgcheck-fs={1}; timeout {2} xfs_repair -n {0} >/tmp/imgcheck-fsck.out 2>&1; rc=$?; "
          "if grep -q 'valuable metadata changes in a log' /tmp/imgcheck-fsck.out; then "
          "echo dirty=1; mount {0} /tmp/imgcheck-replay && umount /tmp/imgcheck-replay; "
          "timeout {2} xfs_repair -n {0} >/tmp/imgcheck-fsck.out 2>&1; rc=$?; fi; echo rc=$rc; "
          "tail -n 3 /tmp/imgcheck-fsck.out | sed 's/^/out=/'; ",
          d, f.device, kFsCheckSeconds);
    } else {
      continue;
    }
    checked.push_back(&f);
  }
  if (checked.empty()) return;
  struct Result {
    bool dirty = false;
    int rc = 0;
    std::vector<std::string> out;
  };
  std::map<std::string, Result> results;
  std::istringstream in(g.Shell(script).first);
  std::string current;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("imgcheck-fs=")) current = line.substr(12);
    if (current.empty()) continue;
    if (line == "dirty=1") results[current].dirty = true;
    if (line.starts_with("rc=")) results[current].rc = std::atoi(line.c_str() + 3);
    if (line.starts_with("out=") && line.size() > 4) results[current].out.push_back(line.substr(4));
  }
  for (const Filesystem* f : checked) {
    auto it = results.find(f->device);
    if (it == results.end()) continue;
    const Result& res = it->second;
    bool ext = f->type != "xfs";
    fsck::Fields base{.name = GuestName(g, f->device), .other = f->type};
    if (res.dirty) r.Report(P::kFsDirtyJournal, base);
    if (res.rc == 124) {
      base.detail = fmt::format("{} was stopped after {} s", ext ? "e2fsck -n" : "xfs_repair -n",
                                kFsCheckSeconds);
      r.Report(P::kFsCheckIncomplete, base);
      continue;
    }
    bool corrupt = ext ? (res.rc & 4) != 0 : res.rc == 1;
    if (!corrupt) continue;
    base.detail = fmt::format("{} exited {}: {}", ext ? "e2fsck -n" : "xfs_repair -n", res.rc,
                              fmt::join(res.out, "; "));
    base.fix = fmt::format("{} {} in the guest, or on a copy", ext ? "e2fsck -f" : "xfs_repair",
                           GuestName(g, f->device));
    r.Report(P::kFsCorrupt, base);
  }
}

}  // namespace imgcheck::guest
