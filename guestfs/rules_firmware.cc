// Firmware against the disks. UEFI (OVMF) boots a Boot#### entry of the NVRAM file whose loader
// exists on a FAT partition, or else the removable path \EFI\BOOT\BOOTX64.EFI of any EFI system
// partition; with neither, BdsDxe finds nothing to boot. BIOS (SeaBIOS) runs the boot disk's MBR
// code: a zeroed boot code area (a protective MBR written for UEFI only) or a missing 0x55AA
// signature is "not a bootable disk", and GRUB on a GPT disk needs a BIOS boot partition for its
// core image. Not checked: Secure Boot signatures, other architectures' removable paths.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "guestfs/rules.h"
#include "vm/nvram.h"
#include "vm/resolve.h"

namespace imgcheck::guest {
namespace {

using fsck::P;

const char kEspGuid[] = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const char kBiosBootGuid[] = "21686148-6449-6E6F-744E-656564454649";
constexpr int kMbrEsp = 0xef;

bool IsEsp(const Partition& p) { return p.gpt_type == kEspGuid || p.mbr_id == kMbrEsp; }

// "\EFI\debian\shimx64.efi" as a path in the mounted FAT filesystem.
std::string FatPath(std::string p) {
  std::replace(p.begin(), p.end(), '\\', '/');
  return p.starts_with("/") ? p : "/" + p;
}

void CheckUefi(const Guest& g, const vm::Machine& m, Reporter& r, fsck::Fields base) {
  std::vector<std::string> notes;
  bool any_esp = false;
  for (const DiskInfo& d : g.disks) {
    for (const Partition& p : d.partitions) {
      if (!IsEsp(p)) continue;
      any_esp = true;
      std::string name = GuestName(g, p.device);
      const Filesystem* fs = g.FindFs(p.device);
      if (!fs || fs->type != "vfat") {
        notes.push_back(fmt::format("the ESP {} holds {}, not FAT", name,
                                    fs ? fs->type : "no filesystem"));
        continue;
      }
      // FAT lookups ignore case, as the firmware's do.
      if (g.Exists(fs->device, "/EFI/BOOT/BOOTX64.EFI")) return;
      notes.push_back(fmt::format("the ESP {} has no EFI/BOOT/BOOTX64.EFI", name));
    }
  }
  if (m.nvram) {
    auto bytes = vm::ReadBounded(*m.nvram, vm::kMaxNvram, "NVRAM file");
    if (bytes) {
      std::span<const uint8_t> b(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
      auto entries = vm::ParseNvram(b);
      size_t with_file = 0;
      for (const vm::UefiBootEntry& e : entries ? *entries : std::vector<vm::UefiBootEntry>{}) {
        if (!e.active || !e.file) continue;
        ++with_file;
        for (const DiskInfo& d : g.disks) {
          for (const Partition& p : d.partitions) {
            if (e.partition_guid ? p.gpt_guid != *e.partition_guid : !IsEsp(p)) continue;
            const Filesystem* fs = g.FindFs(p.device);
            if (fs && fs->type == "vfat" && g.Exists(fs->device, FatPath(*e.file))) return;
          }
        }
      }
      notes.push_back(entries ? fmt::format("none of the {} active Boot#### entries with a loader "
                                            "in the NVRAM file {} names a file on the disks",
                                            with_file, *m.nvram)
                              : fmt::format("the NVRAM file {} cannot be read: {}", *m.nvram,
                                            entries.error().message));
    }
  }
  base.detail = any_esp ? fmt::format("no EFI system partition holds a loader it can find ({})",
                                      fmt::join(notes, "; "))
                        : "no disk has an EFI system partition (a BIOS-only disk)";
  if (!notes.empty() && !any_esp) base.detail += " (" + fmt::format("{}", fmt::join(notes, "; ")) + ")";
  r.Report(P::kVmUefiNoBootloader, base);
}

void CheckBios(const Guest& g, const vm::Machine& m, Reporter& r, fsck::Fields base) {
  const vm::Disk* boot = m.BootDisk();
  const DiskInfo* d = boot ? g.DiskByGuestName(boot->guest_name) : nullptr;
  if (!d && !g.disks.empty()) d = &g.disks.front();
  if (!d || d->head.size() < 1024) return;
  base.name = "/dev/" + d->guest_name;
  base.disk = d->image;
  bool code = std::any_of(d->head.begin(), d->head.begin() + 440, [](uint8_t b) { return b != 0; });
  bool signature = d->head[510] == 0x55 && d->head[511] == 0xaa;
  bool gpt = std::memcmp(&d->head[512], "EFI PART", 8) == 0;
  bool bios_boot = std::any_of(d->partitions.begin(), d->partitions.end(),
                               [](const Partition& p) { return p.gpt_type == kBiosBootGuid; });
  if (!signature) {
    base.detail = "its first sector has no boot signature (0x55AA)";
  } else if (!code) {
    base.detail = gpt ? "its protective MBR has no boot code (the disk was set up for UEFI only)"
                      : "its MBR has no boot code";
  } else if (gpt && !bios_boot) {
    base.detail = "it is a GPT disk without a BIOS boot partition, where GRUB's core image lives";
  } else {
    return;
  }
  r.Report(P::kVmBiosNoBootCode, base);
}

}  // namespace

void CheckFirmware(const Guest& g, const vm::Machine& m, Reporter& r) {
  fsck::Fields base;
  if (m.assumed) {  // the firmware is only libvirt's default: a warning, not a verdict
    base.severity = fsck::Severity::kWarning;
  }
  if (m.firmware == vm::Firmware::kUefi) {
    CheckUefi(g, m, r, base);
  } else {
    CheckBios(g, m, r, base);
  }
}

}  // namespace imgcheck::guest
