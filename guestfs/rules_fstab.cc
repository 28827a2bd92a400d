// /etc/fstab, parsed by us (tolerant: every line is judged on its own). Raw kernel device
// names, tags and paths that resolve to nothing in the guest, declared types that differ from
// the real ones, missing mount points, data disks without nofail, network filesystems without
// _netdev, duplicate mount points, missing swap.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "guestfs/rules.h"

namespace imgcheck::guest {
namespace {

using fsck::P;

const std::set<std::string> kPseudo = {
    "proc", "sysfs", "devpts", "tmpfs", "devtmpfs", "cgroup", "cgroup2", "securityfs", "debugfs",
    "hugetlbfs", "mqueue", "pstore", "bpf", "efivarfs", "configfs", "fusectl", "binfmt_misc",
    "autofs", "rpc_pipefs", "nfsd", "tracefs", "ramfs", "overlay", "none", "iso9660", "udf"};
const std::set<std::string> kNetwork = {"nfs", "nfs4", "cifs", "smbfs", "smb3", "glusterfs",
                                        "ceph", "fuse.sshfs", "sshfs", "9p", "davfs", "lustre"};
const std::set<std::string> kBootCritical = {"/", "/boot", "/usr", "/var"};

bool RawKernelName(const std::string& s) {
  static const std::regex kRaw(R"(^/dev/((s|v|xv|h)d[a-z]+\d*|nvme\d+n\d+(p\d+)?)$)");
  return std::regex_match(s, kRaw);
}

bool HasOption(const std::string& opts, const std::string& o) {
  std::stringstream ss(opts);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item == o) return true;
  }
  return false;
}

bool TypeMatches(const std::string& declared, const std::string& real) {
  if (declared == "auto" || declared == real) return true;
  if (declared == "ext4" && (real == "ext3" || real == "ext2")) return true;  // ext4 mounts them
  if (declared == "ext3" && real == "ext2") return true;
  if ((declared == "vfat" || declared == "msdos") && (real == "vfat" || real == "msdos")) return true;
  return false;
}

// Tags that name a filesystem we can judge (by-id and by-path depend on the hypervisor).
bool Judgeable(const std::string& spec) {
  return spec.starts_with("UUID=") || spec.starts_with("LABEL=") || spec.starts_with("PARTUUID=") ||
         spec.starts_with("PARTLABEL=") || spec.starts_with("\"UUID=") ||
         spec.starts_with("/dev/disk/by-uuid/") || spec.starts_with("/dev/disk/by-label/") ||
         spec.starts_with("/dev/disk/by-partuuid/") || spec.starts_with("/dev/disk/by-partlabel/") ||
         spec.starts_with("/dev/mapper/") || std::count(spec.begin(), spec.end(), '/') == 3;
}

}  // namespace

void CheckFstab(const Guest& g, Reporter& r) {
  const Filesystem* root = g.RootFs();
  const std::string file = "/etc/fstab";
  auto text = g.Read(root->device, file);
  if (!text) return;  // no fstab: systemd mounts the root from the kernel command line
  std::set<std::string> root_disks = DisksOf(g, *root);
  std::map<std::string, uint64_t> seen;  // mount point -> line
  // Encrypted volumes: /etc/crypttab names the /dev/mapper devices opened at boot; their contents
  // (and the filesystems inside LUKS containers) cannot be read without the key.
  std::map<std::string, std::string> crypt;  // mapper name -> source device spec
  if (auto ct = g.Read(root->device, "/etc/crypttab")) {
    std::istringstream cin(*ct);
    for (std::string l; std::getline(cin, l);) {
      std::vector<std::string> cw = SplitWords(l.substr(0, l.find('#')));
      if (cw.size() >= 2) crypt[cw[0]] = cw[1];
    }
  }
  std::vector<std::string> sealed;  // LUKS containers on the disks ("/dev/vda4")
  for (const Filesystem& f : g.filesystems) {
    if (f.type == "crypto_LUKS") sealed.push_back(GuestName(g, f.device));
  }
  auto crypt_name = [&](const std::string& spec) -> const std::string* {
    if (!spec.starts_with("/dev/mapper/")) return nullptr;
    auto it = crypt.find(spec.substr(12));
    return it == crypt.end() ? nullptr : &it->second;
  };
  std::istringstream in(*text);
  uint64_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    std::string body = line.substr(0, line.find('#'));
    std::vector<std::string> w = SplitWords(body);
    if (w.empty()) continue;
    fsck::Fields base{.file = file, .line = n, .evidence = line};
    if (body.find("TYPE=\"") != std::string::npos || (w[0].find("=\"") != std::string::npos &&
                                                      w.size() > 1 && w[1].find('=') != std::string::npos)) {
      base.detail = "this looks like blkid output pasted in, not an fstab entry";
      r.Report(P::kFstabMalformed, base);
      continue;
    }
    if (w.size() < 3) {
      base.detail = fmt::format("{} field(s); an entry needs at least a device, a mount point and "
                                "a type", w.size());
      r.Report(P::kFstabMalformed, base);
      continue;
    }
    if (w.size() > 6 || (w.size() >= 5 && !std::all_of(w[4].begin(), w[4].end(), ::isdigit)) ||
        (w.size() == 6 && !std::all_of(w[5].begin(), w[5].end(), ::isdigit))) {
      base.detail = "the dump and pass fields must be numbers, and there are at most six fields";
      r.Report(P::kFstabMalformed, base);
      continue;
    }
    const std::string& spec = w[0];
    const std::string& mnt = w[1];
    const std::string& type = w[2];
    std::string opts = w.size() > 3 ? w[3] : "defaults";
    bool optional = HasOption(opts, "nofail") || HasOption(opts, "noauto");
    base.name = mnt;
    if (kPseudo.count(type) || kPseudo.count(spec) || mnt.starts_with("/proc") ||
        mnt.starts_with("/sys") || (mnt.starts_with("/dev") && mnt != "/dev") ||
        spec.starts_with("/dev/fd") || spec.starts_with("/dev/cdrom") || spec.starts_with("/dev/sr")) {
      continue;
    }
    if (const std::string* source = crypt_name(spec)) {
      // Opened from crypttab at boot: its contents are out of reach, but a LUKS source must
      // exist. (A swap with a random key has no header and no blkid tags to find it by.)
      if (type == "swap") continue;
      if (!Judgeable(*source) && !RawKernelName(*source)) continue;
      if (g.Resolve(*source)) continue;
      fsck::Fields f = base;
      f.evidence = *source;
      if (optional) f.severity = fsck::Severity::kWarning;
      f.detail = fmt::format(" (it is the source of {} in /etc/crypttab)", spec);
      f.fix = "point /etc/crypttab at the encrypted volume by its UUID=";
      r.Report(P::kFstabUnresolved, f);
      continue;
    }
    if (type == "swap") {
      base.evidence = spec;
      const Filesystem* f = g.Resolve(spec);
      if (!f && (RawKernelName(spec) || Judgeable(spec))) r.Report(P::kFstabSwapMissing, base);
      continue;
    }
    if (kNetwork.count(type)) {
      if (!HasOption(opts, "_netdev")) {
        base.other = type;
        r.Report(P::kFstabNetfsNoNetdev, base);
      }
      continue;
    }
    if (auto it = seen.find(mnt); it != seen.end()) {
      fsck::Fields f = base;
      f.value = it->second;
      r.Report(P::kFstabDuplicateMountpoint, f);
    } else {
      seen[mnt] = n;
    }
    const Filesystem* fs = nullptr;
    if (RawKernelName(spec) && !AbsentName(g, spec).empty()) {
      // Named for another bus (or another disk count): on this VM the device never appears.
      fsck::Fields f = base;
      f.evidence = spec;
      f.detail = AbsentName(g, spec);
      if (optional) f.severity = fsck::Severity::kWarning;
      auto k = ParseKernelName(spec);
      const Filesystem* there = nullptr;
      if (k && k->position < g.disks.size()) {
        there = g.FindFs(g.disks[k->position].device +
                         (k->partition ? std::to_string(*k->partition) : ""));
      }
      f.fix = there && !there->uuid.empty()
                  ? fmt::format("replace {} with UUID={} (on this VM that filesystem is {})", spec,
                                there->uuid, GuestName(g, there->device))
                  : fmt::format("replace {} with the UUID= of the filesystem for {}", spec, mnt);
      r.Report(P::kFstabDeviceAbsent, f);
      continue;
    }
    if (RawKernelName(spec)) {
      fs = g.ByKernelName(spec);
      fsck::Fields f = base;
      f.evidence = spec;
      if (!kBootCritical.count(mnt)) f.severity = fsck::Severity::kWarning;
      if (fs && !fs->uuid.empty()) {
        f.detail = fmt::format(" (in this image it is the {} filesystem UUID={} on {}, while the "
                               "disks keep their order)",
                               fs->type, fs->uuid, GuestName(g, fs->device));
        f.fix = fmt::format("replace {} with UUID={}", spec, fs->uuid);
      } else {
        f.detail = " (and no filesystem is at that position in this image)";
        f.fix = fmt::format("replace {} with the UUID= of the filesystem for {}", spec, mnt);
      }
      r.Report(P::kFstabRawDevice, f);
    } else if (Judgeable(spec)) {
      fs = g.Resolve(spec);
      if (!fs) {
        fsck::Fields f = base;
        f.evidence = spec;
        // GRUB and the firmware read / (found already), /boot and the ESP: never inside a LUKS
        // volume opened from crypttab.
        bool maybe_sealed = !sealed.empty() && mnt != "/" && mnt != "/boot" && mnt != "/boot/efi";
        if (optional || maybe_sealed) f.severity = fsck::Severity::kWarning;
        f.detail = optional ? " (nofail: the VM boots without it)"
                            : ": the VM stops in the emergency shell at boot";
        if (maybe_sealed) {
          f.detail = fmt::format("; it may be the filesystem inside the encrypted LUKS volume on "
                                 "{}, which cannot be opened without its key",
                                 fmt::join(sealed, ", "));
        }
        std::vector<std::string> candidates;
        for (const Filesystem& c : g.filesystems) {
          if (TypeMatches(type, c.type) && !c.uuid.empty()) {
            candidates.push_back(fmt::format("UUID={} ({} on {})", c.uuid, c.type,
                                             GuestName(g, c.device)));
          }
        }
        f.fix = candidates.empty()
                    ? "remove the entry, or add nofail if the device is optional"
                    : fmt::format("use one of the {} filesystems present: {}", type,
                                  fmt::join(candidates, ", "));
        if (maybe_sealed) {
          f.fix = "check the UUID against the filesystem inside the encrypted volume (cryptsetup "
                  "open, then blkid), or mount it by its /dev/mapper name from /etc/crypttab";
        }
        r.Report(P::kFstabUnresolved, f);
        continue;
      }
    }
    if (!fs) continue;
    if (!TypeMatches(type, fs->type)) {
      fsck::Fields f = base;
      f.other = type;
      f.detail = fmt::format("{} ({})", fs->type, GuestName(g, fs->device));
      f.fix = fmt::format("declare {} for {}", fs->type, mnt);
      r.Report(P::kFstabTypeMismatch, f);
    }
    if (mnt != "/" && !g.IsDir(root->device, mnt)) {
      // Under another mount (e.g. /boot/efi inside a separate /boot)?
      bool under_other = false;
      for (const auto& [m, line_no] : seen) {
        if (m != "/" && mnt.starts_with(m + "/")) under_other = true;
      }
      if (!under_other) {
        fsck::Fields f = base;
        f.fix = fmt::format("mkdir {} in the guest", mnt);
        r.Report(P::kFstabMountpointMissing, f);
      }
    }
    std::set<std::string> disks = DisksOf(g, *fs);
    bool other_disk = std::any_of(disks.begin(), disks.end(),
                                  [&](const std::string& d) { return !root_disks.count(d); });
    if (mnt != "/" && other_disk && !optional && !kBootCritical.count(mnt)) {
      fsck::Fields f = base;
      f.fix = fmt::format("add nofail to the options of {}", mnt);
      r.Report(P::kFstabNoNofail, f);
    }
  }
}

}  // namespace imgcheck::guest
