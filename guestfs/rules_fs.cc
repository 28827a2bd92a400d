// Filesystem consistency, read-only: e2fsck -n / xfs_repair -n on the appliance's copy-on-write
// overlay (the image is never written). A dirty journal is told apart from corruption: it is
// replayed into the overlay first (mount, umount) and reported as such.
#include <fmt/format.h>

#include "guestfs/rules.h"

namespace imgcheck::guest {
namespace {

std::string Tail(const std::string& out, size_t lines) {
  std::vector<std::string> all;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string l = out.substr(start, nl - start);
    if (!l.empty()) all.push_back(l);
  }
  std::vector<std::string> keep(all.end() - static_cast<long>(std::min(lines, all.size())), all.end());
  return fmt::format("{}", fmt::join(keep, "; "));
}

}  // namespace

void CheckFilesystems(const Guest& g, Reporter& r) {
  using fsck::P;
  for (const Filesystem& f : g.filesystems) {
    bool ext = f.type == "ext2" || f.type == "ext3" || f.type == "ext4";
    if (!ext && f.type != "xfs") continue;
    fsck::Fields base{.name = GuestName(g, f.device), .other = f.type};
    std::string dev = f.device;
    bool dirty = false;
    if (ext) {
      auto [hdr, rc] = g.Shell("dumpe2fs -h " + dev);
      dirty = rc == 0 && hdr.find("needs_recovery") != std::string::npos;
    } else {
      auto [out, rc] = g.Shell("xfs_repair -n " + dev);
      dirty = out.find("valuable metadata changes in a log") != std::string::npos;
      if (!dirty && rc == 1) {
        base.detail = Tail(out, 3);
        r.Report(P::kFsCorrupt, base);
        continue;
      }
      if (!dirty) continue;
    }
    if (dirty) {
      r.Report(P::kFsDirtyJournal, base);
      // Replay the journal into the overlay, then judge the replayed filesystem.
      g.Shell("mkdir -p /tmp/imgcheck-replay && mount " + dev + " /tmp/imgcheck-replay && "
              "umount /tmp/imgcheck-replay");
    }
    auto [out, rc] = ext ? g.Shell("e2fsck -n -f " + dev) : g.Shell("xfs_repair -n " + dev);
    bool corrupt = ext ? (rc & 4) != 0 : rc == 1;
    if (corrupt) {
      base.detail = fmt::format("{} exited {}: {}", ext ? "e2fsck -n" : "xfs_repair -n", rc, Tail(out, 3));
      base.fix = fmt::format("{} in the guest, or on a copy", ext ? "e2fsck -f " + GuestName(g, dev)
                                                                  : "xfs_repair " + GuestName(g, dev));
      r.Report(P::kFsCorrupt, base);
    }
  }
}

}  // namespace imgcheck::guest
