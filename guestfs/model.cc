#include "guestfs/model.h"

#include <guestfs.h>

#include <boost/endian/conversion.hpp>
#include <cstring>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <tuple>

namespace imgcheck::guest {
namespace {

// libguestfs returns malloc'd strings and NULL-terminated string lists.
std::vector<std::string> Take(char** v) {
  std::vector<std::string> out;
  if (!v) return out;
  for (char** p = v; *p; ++p) {
    out.emplace_back(*p);
    std::free(*p);
  }
  std::free(v);
  return out;
}

std::optional<std::string> Take(char* s) {
  if (!s) return std::nullopt;
  std::string out(s);
  std::free(s);
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) {
    s = s.substr(1, s.size() - 2);
  }
  return s;
}

// fstab and udev escape spaces as \040 / \x20.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x') {
      out += static_cast<char>(std::strtol(s.substr(i + 2, 2).c_str(), nullptr, 16));
      i += 3;
    } else if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The VG name and id in a PV's metadata text area: the first "NAME {" line followed by its id.
std::pair<std::string, std::string> VgFromMetadata(const std::string& raw) {
  static const std::regex kVg(R"re(([A-Za-z0-9_.+-]+) \{\nid = "([A-Za-z0-9-]+)")re");
  std::smatch m;
  if (std::regex_search(raw, m, kVg)) return {m[1], m[2]};
  return {"", ""};
}

Filesystem FsFromTags(const std::string& dev, std::map<std::string, std::string>& tags) {
  Filesystem f;
  f.device = dev;
  f.type = tags["TYPE"];
  f.uuid = tags["UUID"];
  f.label = tags["LABEL"];
  f.partuuid = tags.count("PART_ENTRY_UUID") ? tags["PART_ENTRY_UUID"] : tags["PARTUUID"];
  f.partlabel = tags["PART_ENTRY_NAME"];
  return f;
}

// GPT GUIDs are stored mixed-endian: the first three fields little-endian.
std::string Guid(const uint8_t* b) {
  return fmt::format("{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
                     boost::endian::load_little_u32(b), boost::endian::load_little_u16(b + 4),
                     boost::endian::load_little_u16(b + 6), b[8], b[9], b[10], b[11], b[12],
                     b[13], b[14], b[15]);
}

// The partition table from the raw sectors: GPT entries (from LBA 2), or the four MBR entries.
void ReadPartitionTable(DiskInfo& d) {
  if (d.head.size() < 34 * 512) return;
  if (std::memcmp(&d.head[512], "EFI PART", 8) == 0) {
    d.parttype = "gpt";
    uint64_t lba = boost::endian::load_little_u64(&d.head[512 + 72]);
    uint32_t count = boost::endian::load_little_u32(&d.head[512 + 80]);
    uint32_t size = boost::endian::load_little_u32(&d.head[512 + 84]);
    if (lba != 2 || size < 128 || uint64_t{count} * size > 32 * 512) return;
    for (uint32_t i = 0; i < count; ++i) {
      const uint8_t* e = &d.head[2 * 512 + uint64_t{i} * size];
      if (std::all_of(e, e + 16, [](uint8_t b) { return b == 0; })) continue;
      Partition p;
      p.number = static_cast<int>(i + 1);
      p.device = d.device + std::to_string(p.number);
      p.gpt_type = Guid(e);
      p.gpt_guid = Guid(e + 16);
      p.start = boost::endian::load_little_u64(e + 32) * 512;
      p.end = boost::endian::load_little_u64(e + 40) * 512 + 511;
      p.size = p.end + 1 - p.start;
      d.partitions.push_back(p);
    }
  } else if (d.head[510] == 0x55 && d.head[511] == 0xaa) {
    for (int i = 0; i < 4; ++i) {
      const uint8_t* e = &d.head[446 + 16 * i];
      uint32_t start = boost::endian::load_little_u32(e + 8), sectors = boost::endian::load_little_u32(e + 12);
      if (e[4] == 0 || sectors == 0) continue;
      d.parttype = "msdos";
      Partition p;
      p.number = i + 1;
      p.device = d.device + std::to_string(p.number);
      p.mbr_id = e[4];
      p.start = uint64_t{start} * 512;
      p.size = uint64_t{sectors} * 512;
      p.end = p.start + p.size - 1;
      d.partitions.push_back(p);
    }
  }
}

}  // namespace

Guest Guest::Collect(Appliance& app, const std::vector<Disk>& vm_disks) {
  guestfs_h* g = app.g();
  Guest guest(app);
  std::vector<std::string> devices = Take(guestfs_list_devices(g));
  for (size_t i = 0; i < devices.size(); ++i) {
    DiskInfo d;
    d.device = devices[i];
    d.image = i < vm_disks.size() ? vm_disks[i].path : "";
    d.guest_name = i < vm_disks.size() ? vm_disks[i].guest_name : "";
    int64_t size = guestfs_blockdev_getsize64(g, d.device.c_str());
    d.size = size > 0 ? static_cast<uint64_t>(size) : 0;
    size_t n = 0;
    if (char* head = guestfs_pread_device(g, d.device.c_str(), 34 * 512, 0, &n)) {
      d.head.assign(head, head + n);
      std::free(head);
    }
    if (d.size >= 66 * 512) {
      if (char* tail = guestfs_pread_device(g, d.device.c_str(), 33 * 512,
                                            static_cast<int64_t>(d.size - 33 * 512), &n)) {
        d.tail.assign(tail, tail + n);
        std::free(tail);
      }
    }
    ReadPartitionTable(d);
    guest.disks.push_back(std::move(d));
  }
  guest.MapKernelNames(devices.size());
  // Block devices and their blkid tags: partitions, whole disks (a filesystem without a
  // partition table) and logical volumes. (list_filesystems costs seconds under TCG.)
  std::vector<std::string> blockdevs = Take(guestfs_list_partitions(g));
  blockdevs.insert(blockdevs.end(), devices.begin(), devices.end());
  std::map<std::string, std::map<std::string, std::string>> all_tags = guest.Probe(blockdevs);
  for (const std::string& dev : blockdevs) {
    auto& tags = all_tags[dev];
    const std::string type = tags["TYPE"];
    if (type == "LVM2_member") {
      // PV labels straight from the disk: the appliance ignores the guest's LVM config and
      // hides duplicates.
      PvLabel pv{dev, tags["UUID"], "", ""};
      size_t n = 0;
      if (char* raw = guestfs_pread_device(g, dev.c_str(), 1 << 20, 0, &n)) {
        std::tie(pv.vg, pv.vg_id) = VgFromMetadata(std::string(raw, n));
        std::free(raw);
      }
      guest.pvs.push_back(pv);
    } else if (!type.empty()) {
      guest.filesystems.push_back(FsFromTags(dev, tags));
    }
  }
  if (guest.pvs.empty()) return guest;
  if (guestfs_lvm_vg_list* vl = guestfs_vgs_full(g)) {
    for (uint32_t k = 0; k < vl->len; ++k) {
      VolumeGroup vg;
      vg.name = vl->val[k].vg_name;
      std::string attr = vl->val[k].vg_attr ? vl->val[k].vg_attr : "";
      vg.partial = attr.size() > 3 && attr[3] == 'p';
      vg.pv_count = vl->val[k].pv_count;
      vg.pv_found = std::count_if(guest.pvs.begin(), guest.pvs.end(),
                                  [&](const PvLabel& p) { return p.vg == vg.name; });
      guest.vgs.push_back(vg);
    }
    guestfs_free_lvm_vg_list(vl);
  }
  guest.lvs = Take(guestfs_lvs(g));
  auto lv_tags = guest.Probe(guest.lvs);
  // Under load the LV device nodes can lag behind activation: wait for udev, then look again.
  if (std::any_of(guest.lvs.begin(), guest.lvs.end(), [&](const std::string& lv) {
        return lv_tags[lv]["TYPE"].empty();
      })) {
    guest.Shell("udevadm settle --timeout=60");
    lv_tags = guest.Probe(guest.lvs);
  }
  for (const std::string& lv : guest.lvs) {
    if (!lv_tags[lv]["TYPE"].empty()) guest.filesystems.push_back(FsFromTags(lv, lv_tags[lv]));
  }
  return guest;
}

void Guest::DetectOs() {
  // A root filesystem has /etc with fstab, os-release or hosts, and /bin (a directory or a
  // symlink to usr/bin); one with /etc/fstab wins. On btrfs the root may be a subvolume below
  // the top level (mounting without subvol= shows the top level): look one level down too.
  auto has = [&](const Filesystem& f, const std::string& prefix, const char* path) {
    return Exists(f.device, prefix + path);
  };
  // (Each test is an appliance round trip: none is asked twice.)
  Filesystem* best = nullptr;
  std::string best_prefix;
  bool best_fstab = false;
  for (Filesystem& f : filesystems) {
    if (f.mount.empty()) continue;
    std::vector<std::string> prefixes = {""};
    if (f.type == "btrfs" && !IsDir(f.device, "/etc")) {
      for (const std::string& e : List(f.device, "/")) prefixes.push_back("/" + e);
    }
    for (const std::string& prefix : prefixes) {
      if (!IsDir(f.device, prefix + "/etc")) continue;
      bool fstab = has(f, prefix, "/etc/fstab");
      bool etc_files = fstab || has(f, prefix, "/etc/os-release") || has(f, prefix, "/etc/hosts");
      if (!etc_files || !has(f, prefix, "/bin")) continue;
      if (!best || (fstab && !best_fstab)) {
        best = &f;
        best_prefix = prefix;
        best_fstab = fstab;
      }
    }
  }
  if (!best) {
    for (const Filesystem& f : filesystems) {
      if (!f.mount.empty() && IsDir(f.device, "/Windows/System32")) {
        os = OsInfo{f.device, "windows", "windows", "Windows", 0, 0};
        return;
      }
    }
    return;
  }
  best->subvol = best_prefix;
  OsInfo info{best->device, "linux", "", "", 0, 0};
  std::map<std::string, std::string> rel;
  if (auto text = Read(best->device, "/etc/os-release")) {
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) rel[line.substr(0, eq)] = Unquote(line.substr(eq + 1));
    }
  }
  info.distro = rel.count("ID") ? rel["ID"] : Exists(best->device, "/etc/redhat-release") ? "rhel"
                                            : Exists(best->device, "/etc/debian_version") ? "debian"
                                                                                          : "unknown";
  info.product = rel.count("PRETTY_NAME") ? rel["PRETTY_NAME"]
                                          : Read(best->device, "/etc/redhat-release").value_or("");
  if (!info.product.empty() && info.product.back() == '\n') info.product.pop_back();
  std::string version = rel["VERSION_ID"];
  // os-release often has only the major version (CentOS "7", Debian "12"): the release files
  // carry the rest ("7.9.2009", "12.2").
  static const std::regex kVer(R"((\d+)\.(\d+))");
  for (const char* f : {"/etc/redhat-release", "/etc/centos-release", "/etc/debian_version"}) {
    auto text = Read(best->device, f);
    std::smatch m;
    if (text && std::regex_search(*text, m, kVer) &&
        (version.empty() || version == m.str(1) || version.starts_with(m.str(1) + "."))) {
      version = m.str(0);
      break;
    }
  }
  info.major = std::atoi(version.c_str());
  if (size_t dot = version.find('.'); dot != std::string::npos) info.minor = std::atoi(version.c_str() + dot + 1);
  os = info;
}

void Guest::MountAll() {
  guestfs_h* g = app_->g();
  size_t k = 0;
  for (Filesystem& f : filesystems) {
    static const std::vector<std::string> kMountable = {"ext2", "ext3", "ext4", "xfs", "vfat",
                                                        "btrfs"};
    if (std::find(kMountable.begin(), kMountable.end(), f.type) == kMountable.end()) continue;
    std::string mp = fmt::format("/imgcheck{}", k++);
    if (guestfs_mkmountpoint(g, mp.c_str()) != 0) continue;
    const char* opts = f.type == "xfs"                         ? "ro,norecovery"
                       : f.type.starts_with("ext") && f.type != "ext2" ? "ro,noload"
                                                                       : "ro";
    if (guestfs_mount_options(g, opts, f.device.c_str(), mp.c_str()) == 0) {
      f.mount = mp;
    } else {
      notes.push_back(fmt::format("{} ({}) does not mount: {}", f.device, f.type, app_->Error()));
    }
  }
}

const Filesystem* Guest::FindFs(const std::string& device) const {
  for (const Filesystem& f : filesystems) {
    if (f.device == device) return &f;
  }
  return nullptr;
}

std::string Guest::MountPath(const std::string& fs, const std::string& path) const {
  const Filesystem* f = FindFs(fs);
  if (!f || f->mount.empty()) return "";
  return f->mount + f->subvol + (path.starts_with("/") ? path : "/" + path);
}

std::optional<std::string> Guest::Read(const std::string& fs, const std::string& path) const {
  std::string p = MountPath(fs, path);
  if (p.empty() || guestfs_is_file_opts(app_->g(), p.c_str(), GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) != 1) {
    return std::nullopt;
  }
  size_t n = 0;
  char* data = guestfs_read_file(app_->g(), p.c_str(), &n);
  if (!data) return std::nullopt;
  std::string out(data, n);
  std::free(data);
  return out;
}

bool Guest::Exists(const std::string& fs, const std::string& path) const {
  std::string p = MountPath(fs, path);
  return !p.empty() && guestfs_exists(app_->g(), p.c_str()) == 1;
}

bool Guest::IsDir(const std::string& fs, const std::string& path) const {
  std::string p = MountPath(fs, path);
  return !p.empty() &&
         guestfs_is_dir_opts(app_->g(), p.c_str(), GUESTFS_IS_DIR_OPTS_FOLLOWSYMLINKS, 1, -1) == 1;
}

std::optional<int64_t> Guest::Size(const std::string& fs, const std::string& path) const {
  std::string p = MountPath(fs, path);
  if (p.empty() || guestfs_exists(app_->g(), p.c_str()) != 1) return std::nullopt;
  int64_t n = guestfs_filesize(app_->g(), p.c_str());
  return n < 0 ? std::nullopt : std::optional<int64_t>(n);
}

std::vector<std::string> Guest::List(const std::string& fs, const std::string& dir) const {
  std::string p = MountPath(fs, dir);
  if (p.empty() || !IsDir(fs, dir)) return {};
  return Take(guestfs_ls(app_->g(), p.c_str()));
}

bool Guest::Download(const std::string& fs, const std::string& path,
                     const std::string& local) const {
  std::string p = MountPath(fs, path);
  return !p.empty() && guestfs_download(app_->g(), p.c_str(), local.c_str()) == 0;
}

std::map<std::string, std::map<std::string, std::string>> Guest::Probe(
    const std::vector<std::string>& devices) const {
  // One appliance round trip for all devices (each call costs a round trip under TCG): the same
  // low-level probe as guestfs_blkid, devices separated by a marker line.
  std::map<std::string, std::map<std::string, std::string>> out;
  auto one_by_one = [&](const std::string& d) {  // the daemon translates the name itself
    std::vector<std::string> kv = Take(guestfs_blkid(app_->g(), d.c_str()));
    for (size_t i = 0; i + 1 < kv.size(); i += 2) out[d][kv[i]] = kv[i + 1];
  };
  std::string script;
  for (const std::string& d : devices) {
    if (auto k = KernelName(d)) {
      script += fmt::format("echo imgcheck-dev={}; blkid -c /dev/null -p -i -o export {} 2>/dev/null; ",
                            d, *k);
    } else {
      one_by_one(d);
    }
  }
  if (script.empty()) return out;
  auto [text, rc] = Shell(script);
  if (rc < 0) {  // the batched probe failed: one call per device
    for (const std::string& d : devices) one_by_one(d);
    return out;
  }
  std::istringstream in(text);
  std::string current;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("imgcheck-dev=")) {
      current = line.substr(13);
      out[current];
      continue;
    }
    size_t eq = line.find('=');
    if (!current.empty() && eq != std::string::npos) out[current][line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

void Guest::MapKernelNames(size_t disk_count) {
  // As the daemon does at start: whole disks of /dev/disk/by-path in `ls -v` order, without the
  // appliance's own root disk.
  auto [text, rc] = Shell(
      "root=$(mountpoint -d /); for p in $(ls -1v /dev/disk/by-path); do "
      "case $p in *-part*) continue;; esac; k=$(readlink -f /dev/disk/by-path/$p); "
      "[ \"$(cat /sys/class/block/${k##*/}/dev)\" = \"$root\" ] || echo imgcheck-disk=$k; done");
  std::vector<std::string> names;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("imgcheck-disk=/dev/")) names.push_back(line.substr(14));
  }
  // A map that does not cover exactly the API's disks is not trusted: names then go through
  // the daemon one call at a time.
  if (rc == 0 && names.size() == disk_count) kernel_disks_ = std::move(names);
}

std::optional<std::string> TranslateDiskName(const std::vector<std::string>& kernel_disks,
                                             const std::string& device) {
  static const std::regex kDisk(R"(^/dev/(?:sd|vd|hd|xvd)([a-z]+)(\d*)$)");
  std::smatch m;
  if (!std::regex_match(device, m, kDisk)) return device;
  size_t index = 0;  // a=0 ... z=25, aa=26
  for (char c : m.str(1)) index = index * 26 + static_cast<size_t>(c - 'a' + 1);
  if (index - 1 >= kernel_disks.size()) return std::nullopt;
  return kernel_disks[index - 1] + m.str(2);
}

std::optional<std::string> Guest::KernelName(const std::string& device) const {
  return TranslateDiskName(kernel_disks_, device);
}

std::pair<std::string, int> Guest::Shell(const std::string& command) const {
  std::string cmd = command + " 2>&1; echo \"imgcheck-exit=$?\"";
  const char* args[] = {cmd.c_str(), nullptr};
  auto out = Take(guestfs_debug(app_->g(), "sh", const_cast<char**>(args)));
  if (!out) return {app_->Error(), -1};
  size_t at = out->rfind("imgcheck-exit=");
  if (at == std::string::npos) return {*out, -1};
  return {out->substr(0, at), std::atoi(out->c_str() + at + 14)};
}

std::optional<KernelName> ParseKernelName(const std::string& spec) {
  static const std::regex kClassic(R"(^/dev/((?:[shv]d|xvd)([a-z]{1,3}))(\d{0,4})$)");
  static const std::regex kNvme(R"(^/dev/(nvme(\d{1,4})n\d{1,4})(?:p(\d{1,4}))?$)");
  std::smatch m;
  KernelName k;
  if (std::regex_match(spec, m, kClassic)) {
    k.disk = m[1];
    k.position = vm::DiskLetterIndex(m.str(2)).value_or(0);
    if (m[3].length()) k.partition = static_cast<unsigned>(std::stoul(m[3]));
    return k;
  }
  if (std::regex_match(spec, m, kNvme)) {
    k.disk = m[1];
    k.position = std::stoul(m[2]);
    if (m[3].matched) k.partition = static_cast<unsigned>(std::stoul(m[3]));
    return k;
  }
  return std::nullopt;
}

const DiskInfo* Guest::DiskByGuestName(const std::string& name) const {
  for (const DiskInfo& d : disks) {
    if (d.guest_name == name) return &d;
  }
  return nullptr;
}

const Filesystem* Guest::ByKernelName(const std::string& spec) const {
  auto k = ParseKernelName(spec);
  if (!k) return nullptr;
  const DiskInfo* d = DiskByGuestName(k->disk);
  if (!d) return nullptr;
  return FindFs(d->device + (k->partition ? std::to_string(*k->partition) : ""));
}

bool Guest::LvExists(const std::string& vg, const std::string& lv) const {
  return std::find(lvs.begin(), lvs.end(), "/dev/" + vg + "/" + lv) != lvs.end();
}

const Filesystem* Guest::Resolve(const std::string& raw_spec) const {
  std::string spec = Unquote(raw_spec);
  auto tag = [&](const char* prefix, auto member) -> const Filesystem* {
    std::string want = Unescape(spec.substr(std::string(prefix).size()));
    for (const Filesystem& f : filesystems) {
      std::string have = f.*member;
      if (!have.empty() && (have == want || Lower(have) == Lower(want))) return &f;
    }
    return nullptr;
  };
  if (spec.starts_with("UUID=")) return tag("UUID=", &Filesystem::uuid);
  if (spec.starts_with("LABEL=")) return tag("LABEL=", &Filesystem::label);
  if (spec.starts_with("PARTUUID=")) return tag("PARTUUID=", &Filesystem::partuuid);
  if (spec.starts_with("PARTLABEL=")) return tag("PARTLABEL=", &Filesystem::partlabel);
  if (spec.starts_with("/dev/disk/by-uuid/")) return tag("/dev/disk/by-uuid/", &Filesystem::uuid);
  if (spec.starts_with("/dev/disk/by-label/")) return tag("/dev/disk/by-label/", &Filesystem::label);
  if (spec.starts_with("/dev/disk/by-partuuid/")) {
    return tag("/dev/disk/by-partuuid/", &Filesystem::partuuid);
  }
  if (spec.starts_with("/dev/disk/by-partlabel/")) {
    return tag("/dev/disk/by-partlabel/", &Filesystem::partlabel);
  }
  if (spec.starts_with("/dev/mapper/")) {
    // VG-LV, with '-' inside names doubled.
    std::string name = spec.substr(12);
    for (size_t i = 0; i < name.size(); ++i) {
      if (name[i] == '-' && (i + 1 >= name.size() || name[i + 1] != '-') &&
          (i == 0 || name[i - 1] != '-')) {
        auto undouble = [](std::string s) {
          for (size_t p; (p = s.find("--")) != std::string::npos;) s.erase(p, 1);
          return s;
        };
        return FindFs("/dev/" + undouble(name.substr(0, i)) + "/" + undouble(name.substr(i + 1)));
      }
    }
    return nullptr;
  }
  if (const Filesystem* f = FindFs(spec)) return f;  // /dev/VG/LV
  return ByKernelName(spec);
}

}  // namespace imgcheck::guest
