// The default kernel's initramfs, read natively: an uncompressed early-microcode cpio may come
// first, then the main cpio compressed with gzip, xz, zstd, lz4, bzip2 or lzma (libarchive).
// It must carry the virtio disk and PCI drivers and the root filesystem's driver, unless the
// kernel builds them in (modules.builtin, /boot/config-KVER).
#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>

#include "guestfs/bootconfig.h"
#include "guestfs/rules.h"

namespace imgcheck::guest {
namespace {

using fsck::P;

// Names in an uncompressed newc/crc cpio at `pos`; returns the offset after its trailer.
std::optional<size_t> ReadPlainCpio(const std::string& d, size_t pos, std::set<std::string>& names) {
  auto hex = [&](size_t at) { return std::strtoul(d.substr(at, 8).c_str(), nullptr, 16); };
  while (pos + 110 <= d.size()) {
    if (d.compare(pos, 6, "070701") != 0 && d.compare(pos, 6, "070702") != 0) return std::nullopt;
    size_t filesize = hex(pos + 54), namesize = hex(pos + 94);
    if (pos + 110 + namesize > d.size()) return std::nullopt;
    std::string name = d.substr(pos + 110, namesize ? namesize - 1 : 0);
    pos = (pos + 110 + namesize + 3) & ~size_t{3};
    pos = (pos + filesize + 3) & ~size_t{3};
    if (name == "TRAILER!!!") return pos;
    names.insert(name);
  }
  return std::nullopt;
}

std::optional<std::string> ReadCompressed(const std::string& d, size_t pos, std::set<std::string>& names) {
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_cpio(a);
  std::optional<std::string> err;
  if (archive_read_open_memory(a, d.data() + pos, d.size() - pos) != ARCHIVE_OK) {
    err = archive_error_string(a) ? archive_error_string(a) : "unknown format";
  } else {
    archive_entry* e;
    int rc;
    while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
      if (const char* p = archive_entry_pathname(e)) names.insert(p);
      archive_read_data_skip(a);
    }
    if (rc != ARCHIVE_EOF) err = archive_error_string(a) ? archive_error_string(a) : "read error";
  }
  archive_read_free(a);
  return err;
}

bool HasModule(const std::set<std::string>& names, const std::string& mod) {
  std::string dash = mod;
  for (char& c : dash) c = c == '_' ? '-' : c;
  for (const std::string& n : names) {
    size_t slash = n.rfind('/');
    std::string base = n.substr(slash == std::string::npos ? 0 : slash + 1);
    if (base.starts_with(mod + ".ko") || base.starts_with(dash + ".ko")) return true;
  }
  return false;
}

}  // namespace

void CheckInitramfs(const Guest& g, Reporter& r) {
  auto bc = ReadBootConfig(g);
  if (!bc) return;
  const BootEntry* e = bc->Default();
  if (!e || !e->fs || e->initrds.empty() || e->kernel.empty()) return;
  std::string initrd = e->initrds.back();  // the main one; microcode images come first
  auto size = g.Size(e->fs->device, initrd);
  if (!size || *size <= 0) return;  // grub.initrd-missing says so
  std::string kernel_file = e->kernel.substr(e->kernel.rfind('/') + 1);
  std::string kver = kernel_file.starts_with("vmlinuz-") ? kernel_file.substr(8) : "";
  char tmpl[] = "/tmp/imgcheck-initrd-XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) return;
  ::close(fd);
  std::string local = tmpl;
  fsck::Fields base{.name = kver.empty() ? kernel_file : kver, .file = initrd};
  bool got = g.Download(e->fs->device, initrd, local);
  std::ifstream in(local, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), {});
  ::unlink(local.c_str());
  if (!got) return;
  // Concatenated archives: plain cpio parts, then a compressed one.
  std::set<std::string> names;
  size_t pos = 0;
  std::optional<std::string> err;
  while (pos < data.size()) {
    while (pos < data.size() && data[pos] == '\0') ++pos;
    if (pos >= data.size()) break;
    if (data.compare(pos, 5, "07070") == 0) {
      auto next = ReadPlainCpio(data, pos, names);
      if (!next) {
        err = "a truncated cpio archive";
        break;
      }
      pos = *next;
    } else {
      err = ReadCompressed(data, pos, names);
      break;
    }
  }
  if (err || names.empty()) {
    base.detail = err.value_or("no files in it");
    base.fix = "rebuild it (dracut -f / update-initramfs -u)";
    r.Report(P::kInitramfsUnreadable, base);
    return;
  }
  // Built-in drivers, from modules.builtin and the kernel config.
  std::string builtin, config;
  const Filesystem* root = g.RootFs();
  for (const char* dir : {"/lib/modules/", "/usr/lib/modules/"}) {
    if (auto t = g.Read(root->device, dir + kver + "/modules.builtin")) builtin += *t;
  }
  std::string kdir = e->kernel.substr(0, e->kernel.rfind('/') + 1);
  if (auto t = g.Read(e->fs->device, kdir + "config-" + kver)) config = *t;
  auto available = [&](const std::string& mod, const std::string& option) {
    return HasModule(names, mod) || builtin.find("/" + mod + ".ko") != std::string::npos ||
           config.find(option + "=y\n") != std::string::npos;
  };
  std::vector<std::string> missing;
  if (!available("virtio_blk", "CONFIG_VIRTIO_BLK") && !available("virtio_scsi", "CONFIG_SCSI_VIRTIO")) {
    missing.push_back("virtio_blk (or virtio_scsi)");
  }
  if (!available("virtio_pci", "CONFIG_VIRTIO_PCI")) missing.push_back("virtio_pci");
  if (!missing.empty()) {
    base.detail = fmt::format("{}", fmt::join(missing, " and "));
    base.fix = fmt::format("dracut -f --add-drivers \"virtio_blk virtio_scsi virtio_pci\" {}{} {} "
                           "(or update-initramfs -u -k {} with the modules listed in "
                           "/etc/initramfs-tools/modules)",
                           kdir, initrd.substr(initrd.rfind('/') + 1), kver, kver);
    r.Report(P::kInitramfsNoVirtio, base);
  }
  static const std::map<std::string, std::pair<std::string, std::string>> kFsDrivers = {
      {"xfs", {"xfs", "CONFIG_XFS_FS"}}, {"ext4", {"ext4", "CONFIG_EXT4_FS"}},
      {"ext3", {"ext4", "CONFIG_EXT4_FS"}}, {"btrfs", {"btrfs", "CONFIG_BTRFS_FS"}}};
  if (auto it = kFsDrivers.find(root->type); it != kFsDrivers.end() &&
                                             !available(it->second.first, it->second.second)) {
    fsck::Fields f = base;
    f.other = it->second.first;
    r.Report(P::kInitramfsNoRootfsDriver, f);
  }
}

}  // namespace imgcheck::guest
