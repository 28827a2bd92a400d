// GRUB: every boot entry's kernel and initramfs exist and are non-empty on the filesystem GRUB
// reads them from (a separate /boot changes the paths); root=, rd.lvm.lv=, resume= and
// search --fs-uuid name something that exists; the default entry exists; /etc/default/grub's
// GRUB_CMDLINE_LINUX agrees with the generated configuration.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "guestfs/bootconfig.h"
#include "guestfs/rules.h"

namespace imgcheck::guest {
namespace {

using fsck::P;

std::string Value(const std::vector<std::string>& args, const std::string& key) {
  for (const std::string& a : args) {
    if (a.starts_with(key + "=")) return a.substr(key.size() + 1);
  }
  return "";
}

void CheckFile(const Guest& g, Reporter& r, const BootEntry& e, const std::string& path, P code) {
  fsck::Fields f{.name = e.title, .file = e.file, .line = e.line, .evidence = path};
  // GRUB names files from the filesystem's top level: on a btrfs root in a subvolume the path
  // starts with the subvolume ("/@/boot/vmlinuz-..."), which our reads already add.
  std::string in_fs = path;
  if (e.fs && !e.fs->subvol.empty() && path.starts_with(e.fs->subvol + "/")) {
    in_fs = path.substr(e.fs->subvol.size());
  }
  auto size = e.fs ? g.Size(e.fs->device, in_fs) : std::nullopt;
  if (size && *size > 0) return;
  f.detail = !size ? fmt::format("does not exist on {}", e.fs ? Describe(g, *e.fs) : "?")
                   : std::string("is empty");
  f.fix = code == P::kGrubKernelMissing ? "reinstall the kernel package, then regenerate grub.cfg"
                                        : "rebuild it: dracut -f or update-initramfs -u -k KVER";
  r.Report(code, f);
}

}  // namespace

void CheckGrub(const Guest& g, Reporter& r) {
  auto bc = ReadBootConfig(g);
  if (!bc) {
    r.Report(P::kGrubNoConfig,
             fsck::Fields{.detail = " (no grub.cfg under /boot/grub2, /boot/grub or on a separate "
                                    "/boot): the disk cannot boot unless the hypervisor loads the "
                                    "kernel directly"});
    return;
  }
  for (const auto& [line, uuid] : bc->unresolved_searches) {
    r.Report(P::kGrubSearchUnresolved,
             fsck::Fields{.file = bc->display_path, .line = line,
                          .evidence = "search --fs-uuid " + uuid,
                          .fix = "regenerate grub.cfg (grub2-mkconfig -o " + bc->display_path + ")"});
  }
  for (const BootEntry& e : bc->entries) {
    if (e.kernel.empty()) continue;  // chainloader, memtest, ...
    CheckFile(g, r, e, e.kernel, P::kGrubKernelMissing);
    for (const std::string& i : e.initrds) CheckFile(g, r, e, i, P::kGrubInitrdMissing);
    fsck::Fields base{.name = e.title, .file = e.file, .line = e.line};
    std::string root = Value(e.args, "root");
    if (!root.empty() && (root.starts_with("/dev/") || root.find('=') != std::string::npos) &&
        !root.starts_with("/dev/nfs") && !g.Resolve(root)) {
      fsck::Fields f = base;
      f.evidence = "root=" + root;
      f.detail = AbsentName(g, root);
      if (const Filesystem* rf = g.RootFs(); rf && !rf->uuid.empty()) {
        f.fix = fmt::format("use root=UUID={} (the root filesystem, {})", rf->uuid, Describe(g, *rf));
      }
      r.Report(P::kGrubRootUnresolved, f);
    }
    for (const std::string& a : e.args) {
      if (!a.starts_with("rd.lvm.lv=")) continue;
      std::string vglv = a.substr(10);
      size_t slash = vglv.find('/');
      if (slash == std::string::npos) continue;
      std::string vg = vglv.substr(0, slash), lv = vglv.substr(slash + 1);
      if (g.LvExists(vg, lv)) continue;
      fsck::Fields f = base;
      f.evidence = a;
      std::vector<std::string> have;
      for (const std::string& x : g.lvs) {
        if (x.starts_with("/dev/" + vg + "/")) have.push_back(x.substr(6 + vg.size()));
      }
      f.detail = have.empty() ? fmt::format(" (there is no volume group {})", vg)
                              : fmt::format(" (volume group {} has {})", vg, fmt::join(have, ", "));
      f.fix = have.empty() ? "name the right volume group" : fmt::format("rd.lvm.lv={}/{}", vg, have.front());
      r.Report(P::kGrubLvmLvMissing, f);
    }
    std::string resume = Value(e.args, "resume");
    if (!resume.empty() && resume != "none" && !g.Resolve(resume)) {
      fsck::Fields f = base;
      f.evidence = "resume=" + resume;
      f.detail = AbsentName(g, resume);
      r.Report(P::kGrubResumeUnresolved, f);
    }
  }
  // The default entry.
  std::string saved = bc->grubenv.count("saved_entry") ? bc->grubenv.at("saved_entry") : "";
  if (!bc->Default() && !bc->entries.empty()) {
    std::string spec = !saved.empty() ? saved : bc->default_spec;
    r.Report(P::kGrubDefaultMissing,
             fsck::Fields{.file = bc->display_path, .evidence = "'" + spec + "'"});
  }
  // /etc/default/grub versus what grub.cfg was generated with.
  const BootEntry* def = bc->Default();
  auto it = bc->default_grub.find("GRUB_CMDLINE_LINUX");
  if (def && it != bc->default_grub.end()) {
    std::set<std::string> have(def->args.begin(), def->args.end());
    std::vector<std::string> missing;
    for (const std::string& w : SplitWords(it->second)) {
      if (!w.starts_with("$") && !have.count(w)) missing.push_back(w);
    }
    if (!missing.empty()) {
      r.Report(P::kGrubCmdlineInconsistent,
               fsck::Fields{.detail = fmt::format("GRUB_CMDLINE_LINUX has {} but the default boot "
                                                  "entry '{}' does not: grub.cfg was not "
                                                  "regenerated after the last change",
                                                  fmt::join(missing, " "), def->title),
                            .file = "/etc/default/grub",
                            .evidence = it->second});
    }
  }
}

}  // namespace imgcheck::guest
