// The default kernel's initramfs, read natively: an uncompressed early-microcode cpio may come
// first, then the main cpio compressed with gzip, xz, zstd, lz4, bzip2 or lzma (libarchive).
// It must carry the driver of the bus the root disk is really attached by (virtio_blk for
// virtio, virtio_scsi for virtio-scsi, ahci for SATA, the SCSI controller's driver, nvme,
// with virtio_pci and sd_mod where they are needed) and the root filesystem's driver, unless
// the kernel builds them in (modules.builtin, /boot/config-KVER). Without a domain the bus is
// libvirt's default, virtio-blk: virtio_scsi alone does not make a virtio-blk disk appear.
#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
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

struct Driver {
  std::string module;  // as modprobe names it
  std::string option;  // the kernel config option that builds it in
};

// What the guest needs in its initramfs to see a disk on this bus (the drivers' own
// dependencies come with them: dracut and initramfs-tools follow modules.dep).
std::vector<Driver> BusDrivers(vm::Bus bus, const std::string& controller_model) {
  const Driver sd{"sd_mod", "CONFIG_BLK_DEV_SD"}, pci{"virtio_pci", "CONFIG_VIRTIO_PCI"};
  switch (bus) {
    case vm::Bus::kVirtio: return {{"virtio_blk", "CONFIG_VIRTIO_BLK"}, pci};
    case vm::Bus::kVirtioScsi: return {{"virtio_scsi", "CONFIG_SCSI_VIRTIO"}, pci, sd};
    case vm::Bus::kSata: return {{"ahci", "CONFIG_SATA_AHCI"}, sd};
    case vm::Bus::kIde: return {{"ata_piix", "CONFIG_ATA_PIIX"}, sd};
    case vm::Bus::kNvme: return {{"nvme", "CONFIG_BLK_DEV_NVME"}};
    case vm::Bus::kUsb: return {{"usb_storage", "CONFIG_USB_STORAGE"}, sd};
    case vm::Bus::kScsi: {
      static const std::map<std::string, Driver> kModels = {
          {"lsilogic", {"sym53c8xx", "CONFIG_SCSI_SYM53C8XX_2"}},
          {"lsisas1068", {"mptsas", "CONFIG_FUSION_SAS"}},
          {"lsisas1078", {"megaraid_sas", "CONFIG_MEGARAID_SAS"}},
          {"vmpvscsi", {"vmw_pvscsi", "CONFIG_VMWARE_PVSCSI"}},
          {"am53c974", {"am53c974", "CONFIG_SCSI_AM53C974"}},
          {"dc390", {"am53c974", "CONFIG_SCSI_AM53C974"}}};
      auto it = kModels.find(controller_model);
      if (it == kModels.end()) return {sd};
      return {it->second, sd};
    }
  }
  return {};
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
  // The buses of the disks that hold the root filesystem (an LV: every PV's disk).
  std::set<std::string> root_disks = DisksOf(g, *root);
  std::set<std::pair<vm::Bus, std::string>> seen;
  for (const DiskInfo& d : g.disks) {
    if (!root_disks.count(d.device)) continue;
    std::string model = d.bus == vm::Bus::kScsi ? d.controller_model : "";
    if (!seen.insert({d.bus, model}).second) continue;
    std::vector<std::string> missing;
    for (const Driver& drv : BusDrivers(d.bus, model)) {
      if (!available(drv.module, drv.option)) missing.push_back(drv.module);
    }
    if (missing.empty()) continue;
    fsck::Fields f = base;
    f.detail = fmt::format("{}", fmt::join(missing, " and "));
    f.other = fmt::format("/dev/{} on {}{}", d.guest_name,
                          d.bus == vm::Bus::kVirtio ? "virtio-blk" : vm::BusName(d.bus),
                          model.empty() ? "" : " (" + model + ")");
    f.fix = fmt::format("dracut -f --add-drivers \"{}\" {}{} {} (or update-initramfs -u -k {} "
                        "with the modules listed in /etc/initramfs-tools/modules)",
                        fmt::join(missing, " "), kdir, initrd.substr(initrd.rfind('/') + 1), kver,
                        kver);
    bool virtio = d.bus == vm::Bus::kVirtio || d.bus == vm::Bus::kVirtioScsi;
    r.Report(virtio ? P::kInitramfsNoVirtio : P::kInitramfsNoBusDriver, f);
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
