// Partition tables, from the raw sectors: MBR signature; GPT header and entry CRCs, the backup
// header at the last sector (a qcow2 resize leaves it behind), partitions past the end of the
// disk or overlapping; an ESP for UEFI boot and a BIOS boot partition for GPT with BIOS GRUB.
#include <zlib.h>

#include <boost/endian/conversion.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "guestfs/rules.h"

namespace imgcheck::guest {
namespace {

using fsck::P;

constexpr uint64_t kSector = 512;
const char kEspGuid[] = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const char kBiosBootGuid[] = "21686148-6449-6E6F-744E-656564454649";

uint32_t Le32(const std::vector<uint8_t>& b, size_t o) { return boost::endian::load_little_u32(&b[o]); }
uint64_t Le64(const std::vector<uint8_t>& b, size_t o) { return boost::endian::load_little_u64(&b[o]); }

struct Range {
  uint64_t first, last;
  int number;
};

void CheckOverlaps(const DiskInfo& d, std::vector<Range> parts, uint64_t last_sector, Reporter& r) {
  std::sort(parts.begin(), parts.end(), [](const Range& a, const Range& b) { return a.first < b.first; });
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].last > last_sector) {
      r.Report(P::kPartBeyondDisk, fsck::Fields{.index = static_cast<uint64_t>(parts[i].number),
                                                .value = parts[i].last, .expected = last_sector + 1,
                                                .name = d.image, .disk = d.image});
    }
    if (i && parts[i].first <= parts[i - 1].last) {
      r.Report(P::kPartOverlap, fsck::Fields{.index = static_cast<uint64_t>(parts[i - 1].number),
                                             .value = static_cast<uint64_t>(parts[i].number),
                                             .name = d.image, .disk = d.image});
    }
  }
}

}  // namespace

void CheckPartitions(const Guest& g, Reporter& r) {
  for (const DiskInfo& d : g.disks) {
    if (d.head.size() < 34 * kSector || d.size < 34 * kSector) continue;
    uint64_t last = d.size / kSector - 1;
    bool mbr_sig = d.head[510] == 0x55 && d.head[511] == 0xaa;
    bool gpt = std::memcmp(&d.head[kSector], "EFI PART", 8) == 0;
    if (d.parttype == "msdos" && !mbr_sig) {
      r.Report(P::kPartMbrSignature, fsck::Fields{.name = d.image, .disk = d.image});
    }
    if (d.parttype == "msdos") {
      std::vector<Range> parts;
      for (const Partition& p : d.partitions) {
        parts.push_back({p.start / kSector, p.end / kSector, p.number});
      }
      CheckOverlaps(d, parts, last, r);
    }
    if (!gpt) continue;
    std::vector<uint8_t> hdr(d.head.begin() + kSector, d.head.begin() + 2 * kSector);
    uint32_t hsize = Le32(hdr, 12);
    uint32_t stored = Le32(hdr, 16);
    bool bad = hsize < 92 || hsize > kSector;
    if (!bad) {  // the CRC covers the header with its own CRC field zeroed
      std::vector<uint8_t> zeroed(hdr.begin(), hdr.begin() + hsize);
      std::fill(zeroed.begin() + 16, zeroed.begin() + 20, uint8_t{0});
      bad = crc32(0, zeroed.data(), hsize) != stored;
    }
    if (bad) {
      r.Report(P::kPartGptHeaderCrc, fsck::Fields{.name = d.image, .other = "primary",
                                                  .detail = fmt::format(" (stored 0x{:08x})", stored),
                                                  .disk = d.image});
      continue;
    }
    uint64_t alternate = Le64(hdr, 32);
    uint64_t entries_lba = Le64(hdr, 72);
    uint32_t count = Le32(hdr, 80), esize = Le32(hdr, 84), ecrc = Le32(hdr, 88);
    uint64_t ebytes = uint64_t{count} * esize;
    if (entries_lba == 2 && esize >= 128 && ebytes <= 32 * kSector) {
      const uint8_t* e = &d.head[2 * kSector];
      if (crc32(0, e, static_cast<uInt>(ebytes)) != ecrc) {
        r.Report(P::kPartGptEntriesCrc, fsck::Fields{.name = d.image, .other = "primary", .disk = d.image});
      }
      std::vector<Range> parts;
      for (uint32_t i = 0; i < count; ++i) {
        const uint8_t* p = e + uint64_t{i} * esize;
        if (std::all_of(p, p + 16, [](uint8_t b) { return b == 0; })) continue;
        parts.push_back({boost::endian::load_little_u64(p + 32), boost::endian::load_little_u64(p + 40),
                         static_cast<int>(i + 1)});
      }
      CheckOverlaps(d, parts, last, r);
    }
    if (alternate != last) {
      r.Report(P::kPartGptBackupMisplaced,
               fsck::Fields{.value = alternate, .expected = last, .name = d.image,
                            .fix = fmt::format("sgdisk -e /dev/{} in the guest (or virt-resize)",
                                               d.guest_name),
                            .disk = d.image});
    }
    // Boot partitions, on the disk that holds them: ESP and BIOS boot by type GUID.
    bool esp = false, bios_boot = false;
    for (const Partition& p : d.partitions) {
      esp |= p.gpt_type == kEspGuid;
      bios_boot |= p.gpt_type == kBiosBootGuid;
    }
    constexpr std::string_view kGrub = "GRUB";  // GRUB's BIOS boot code names itself
    bool grub_bios = std::search(d.head.begin(), d.head.begin() + 440, kGrub.begin(), kGrub.end()) !=
                     d.head.begin() + 440;
    if (&d == &g.disks.front() && !esp && !bios_boot) {
      r.Report(P::kPartNoEsp, fsck::Fields{.name = d.image, .disk = d.image});
      r.Report(P::kPartNoBiosBoot, fsck::Fields{.name = d.image, .disk = d.image});
    } else if (grub_bios && !bios_boot) {
      r.Report(P::kPartNoBiosBoot, fsck::Fields{.name = d.image,
                                                .detail = " although GRUB's BIOS boot code is in the MBR",
                                                .disk = d.image});
    }
  }
}

}  // namespace imgcheck::guest
