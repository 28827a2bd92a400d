#include "qcow2/header.h"

#include <fmt/format.h>

#include <algorithm>

namespace imgcheck::qcow2 {
namespace {

using Kind = HeaderIssue::Kind;

void Issue(Header& h, Kind kind, bool fatal, std::string msg) {
  h.issues.push_back(HeaderIssue{kind, fatal, std::move(msg)});
}

// A name as QEMU reads it: a C string, ending at the first NUL (or the field's end).
std::string FixedName(ByteView b) {
  auto end = std::find(b.begin(), b.end(), uint8_t{0});
  return std::string(b.begin(), end);
}

void ParseExtensions(ByteView bytes, Header& h) {
  uint64_t cs = h.cluster_size();
  uint64_t end = h.backing_file_offset ? h.backing_file_offset : cs;
  end = std::min<uint64_t>(end, bytes.size());
  uint64_t off = h.header_length;
  std::vector<uint32_t> seen;
  while (off < end) {
    if (end - off < 8) {
      Issue(h, Kind::kExtensionInvalid, true,
            fmt::format("header extension at 0x{:x} is truncated (needs 8 bytes, {} left)", off,
                        end - off));
      return;
    }
    Cursor c(bytes, static_cast<size_t>(off));
    uint32_t type = c.U32();
    uint32_t len = c.U32();
    off += 8;
    if (len > end - off) {
      Issue(h, Kind::kExtensionInvalid, true,
            fmt::format("header extension 0x{:08x} at 0x{:x} has length {} past the end of the "
                        "extension area (0x{:x})",
                        type, off - 8, len, end));
      return;
    }
    if (type == kExtEnd) return;
    h.extensions.push_back(Extension{type, len, off});
    ByteView data = bytes.subspan(static_cast<size_t>(off), len);
    if (std::find(seen.begin(), seen.end(), type) != seen.end()) {
      Issue(h, Kind::kExtensionDuplicate, false,
            fmt::format("header extension 0x{:08x} appears more than once", type));
    }
    seen.push_back(type);
    switch (type) {
      case kExtBackingFormat:
        if (len > kMaxBackingFormatBytes) {
          Issue(h, Kind::kExtensionInvalid, true,
                fmt::format("backing format extension length {} is too large (QEMU allows {})",
                            len, kMaxBackingFormatBytes));
        } else {
          h.backing_format = FixedName(data);
        }
        break;
      case kExtFeatureTable: {
        if (len % 48) {
          Issue(h, Kind::kOddField, false,
                fmt::format("feature name table length {} is not a multiple of 48", len));
        }
        for (size_t i = 0; i + 48 <= len; i += 48) {
          h.feature_names.push_back(
              FeatureName{data[i], data[i + 1], FixedName(data.subspan(i + 2, 46))});
        }
        break;
      }
      case kExtBitmaps: {
        if (len != 24) {
          Issue(h, Kind::kExtensionInvalid, true,
                fmt::format("bitmaps extension has length {} (must be 24)", len));
          break;
        }
        if (!(h.autoclear_features & kAutoclearBitmaps)) {
          Issue(h, Kind::kBitmapsIgnored, false,
                "bitmaps extension present but autoclear bit 0 is clear: a program without bitmap "
                "support modified the image, every bitmap is inconsistent and QEMU ignores them");
          break;
        }
        Cursor e(data);
        BitmapsExtension b{e.U32(), e.U32(), e.U64(), e.U64()};
        bool ok = true;
        auto bad = [&](std::string m) {
          Issue(h, Kind::kExtensionInvalid, true, "bitmaps extension: " + m);
          ok = false;
        };
        if (b.nb_bitmaps == 0) bad("zero bitmaps");
        if (b.nb_bitmaps > kMaxBitmaps)
          bad(fmt::format("{} bitmaps (QEMU allows {})", b.nb_bitmaps, kMaxBitmaps));
        if (b.reserved != 0) bad("reserved field is not zero");
        if (b.directory_size > kMaxBitmapDirBytes)
          bad(fmt::format("directory size {} is too large", b.directory_size));
        if (b.directory_offset % h.cluster_size())
          bad(fmt::format("directory offset 0x{:x} is not cluster aligned", b.directory_offset));
        if (ok) h.bitmaps = b;
        break;
      }
      case kExtCrypto: {
        if (h.crypt_method != kCryptLuks) {
          Issue(h, Kind::kExtensionInvalid, true,
                "encryption header extension without LUKS encryption");
        } else if (len != 16) {
          Issue(h, Kind::kExtensionInvalid, true,
                fmt::format("encryption header extension has length {} (must be 16)", len));
        } else {
          Cursor e(data);
          h.crypto = CryptoExtension{e.U64(), e.U64()};
          if (h.crypto->offset % h.cluster_size()) {
            Issue(h, Kind::kExtensionInvalid, true,
                  fmt::format("encryption header offset 0x{:x} is not cluster aligned",
                              h.crypto->offset));
          }
        }
        break;
      }
      case kExtDataFile:
        h.data_file = FixedName(data);
        break;
      default:
        Issue(h, Kind::kExtensionUnknown, false,
              fmt::format("unknown header extension 0x{:08x} ({} bytes) at 0x{:x}", type, len,
                          off - 8));
        break;
    }
    off += (static_cast<uint64_t>(len) + 7) & ~7ull;
  }
}

void ValidateTables(Header& h) {
  uint64_t cs = h.cluster_size();
  auto invalid = [&](std::string m) { Issue(h, Kind::kInvalidField, true, std::move(m)); };

  // Active L1 table: QEMU's qcow2_validate_table and the "L1 table is too small" rule.
  if (uint64_t{h.l1_size} * 8 > kMaxL1Bytes) {
    invalid(fmt::format("l1_size {} is too large (QEMU allows {} entries)", h.l1_size,
                        kMaxL1Bytes / 8));
  } else {
    uint64_t span = cs * h.l2_entries();  // guest bytes per L1 entry
    uint64_t needed = h.size / span + (h.size % span != 0);
    if (needed > 0x7fffffff) {
      invalid(fmt::format("virtual size {} is too big for this cluster size", h.size));
    } else if (h.l1_size < needed) {
      invalid(fmt::format("l1_size {} is too small for virtual size {} (needs {})", h.l1_size,
                          h.size, needed));
    }
  }
  if (h.l1_table_offset % cs || h.l1_table_offset >= (1ull << 63) - uint64_t{h.l1_size} * 8) {
    invalid(fmt::format("l1_table_offset 0x{:x} is invalid (must be cluster aligned)",
                        h.l1_table_offset));
  }
  // Refcount table.
  if (uint64_t{h.refcount_table_clusters} * cs > kMaxReftableBytes) {
    invalid(fmt::format("refcount_table_clusters {} is too large (QEMU allows {} bytes)",
                        h.refcount_table_clusters, kMaxReftableBytes));
  }
  // As QEMU validates tables: aligned, and offset + size within INT64_MAX. (An offset past the
  // end of the file is not a header error: the table reads as zeros, every refcount is then 0,
  // and the check reports it.)
  uint64_t rt_bytes = uint64_t{h.refcount_table_clusters} * cs;
  if (h.refcount_table_offset % cs || rt_bytes > kInt64Max ||
      h.refcount_table_offset > kInt64Max - rt_bytes) {
    invalid(fmt::format("refcount_table_offset 0x{:x} is invalid (must be cluster aligned, and "
                        "the table must end below 2^63)",
                        h.refcount_table_offset));
  }
  // The snapshot table is validated by the snapshot pass: QEMU defers it in check mode.
}

}  // namespace

bool Header::fatal() const {
  return std::any_of(issues.begin(), issues.end(), [](const HeaderIssue& i) { return i.fatal; });
}

std::string Header::FeatureBitName(uint8_t type, uint8_t bit) const {
  for (const FeatureName& f : feature_names) {
    if (f.type == type && f.bit == bit && !f.name.empty()) return f.name;
  }
  static const char* kIncompat[] = {"dirty", "corrupt", "external data file", "compression type",
                                    "extended L2 entries"};
  if (type == 0 && bit < 5) return kIncompat[bit];
  if (type == 1 && bit == 0) return "lazy refcounts";
  if (type == 2 && bit == 0) return "bitmaps";
  if (type == 2 && bit == 1) return "raw external data";
  return fmt::format("unknown bit {}", bit);
}

Result<Header> ParseHeader(ByteView bytes) {
  Cursor c(bytes);
  if (bytes.size() < 4 || c.U32() != kMagic) {
    return Fail(ErrorKind::kNotQcow2, "not a qcow2 image (no QFI\\xfb magic)");
  }
  Header h;
  h.version = c.U32();
  if (h.version != 2 && h.version != 3) {
    return Fail(ErrorKind::kUnsupported, fmt::format("unsupported qcow2 version {}", h.version));
  }
  h.backing_file_offset = c.U64();
  h.backing_file_size = c.U32();
  h.cluster_bits = c.U32();
  h.size = c.U64();
  h.crypt_method = c.U32();
  h.l1_size = c.U32();
  h.l1_table_offset = c.U64();
  h.refcount_table_offset = c.U64();
  h.refcount_table_clusters = c.U32();
  h.nb_snapshots = c.U32();
  h.snapshots_offset = c.U64();
  if (h.version == 3) {
    h.incompatible_features = c.U64();
    h.compatible_features = c.U64();
    h.autoclear_features = c.U64();
    h.refcount_order = c.U32();
    h.header_length = c.U32();
  }
  if (!c.ok()) {
    return Fail(ErrorKind::kInvalid, "file is shorter than the qcow2 header");
  }

  auto invalid = [&](std::string m) { Issue(h, Kind::kInvalidField, true, std::move(m)); };
  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits) {
    invalid(fmt::format("cluster_bits {} is outside 9..21 (cluster size 2^{})", h.cluster_bits,
                        h.cluster_bits));
    return h;  // every other field depends on the cluster size
  }
  uint64_t cs = h.cluster_size();
  if (h.version == 3) {
    if (h.header_length < hdr::kV3MinLength) {
      invalid(fmt::format("header_length {} is below 104", h.header_length));
      return h;
    }
    if (h.header_length > cs) {
      invalid(fmt::format("header_length {} exceeds the cluster size {}", h.header_length, cs));
      return h;
    }
    if (h.header_length % 8) {
      Issue(h, Kind::kOddField, false,
            fmt::format("header_length {} is not a multiple of 8", h.header_length));
    }
    if (h.refcount_order > kMaxRefcountOrder) {
      invalid(fmt::format("refcount_order {} is above 6 (refcount width 2^{} bits)",
                          h.refcount_order, h.refcount_order));
      return h;
    }
    if (h.header_length > hdr::kCompressionTypeOffset && bytes.size() > hdr::kCompressionTypeOffset) {
      h.compression_type = bytes[hdr::kCompressionTypeOffset];
    }
  }
  if (uint64_t unknown = h.incompatible_features & ~kIncompatKnown) {
    std::string names;
    for (uint8_t bit = 0; bit < 64; ++bit) {
      if (unknown & (1ull << bit)) {
        names += fmt::format("{}bit {}", names.empty() ? "" : ", ", bit);
      }
    }
    // Names from the feature table are filled in below, once extensions are read.
    Issue(h, Kind::kUnsupported, true, "unknown incompatible feature(s): " + names);
  }
  if (h.backing_file_offset > cs) {
    invalid(fmt::format("backing_file_offset 0x{:x} is beyond cluster 0", h.backing_file_offset));
  } else if (h.backing_file_offset &&
             (h.backing_file_size > kMaxBackingNameBytes ||
              h.backing_file_size > cs - h.backing_file_offset)) {
    invalid(fmt::format("backing file name of {} bytes is too long", h.backing_file_size));
  }
  if (h.crypt_method > kCryptLuks) {
    invalid(fmt::format("unsupported encryption method {}", h.crypt_method));
  }
  bool zstd_bit = h.incompatible_features & kIncompatCompression;
  if (h.compression_type > kCompressionZstd) {
    invalid(fmt::format("unknown compression type {}", h.compression_type));
  } else if (h.compression_type != kCompressionZlib && !zstd_bit) {
    invalid("compression type is set but incompatible bit 3 is clear");
  } else if (h.compression_type == kCompressionZlib && zstd_bit) {
    invalid("incompatible bit 3 (compression type) is set with the default zlib type");
  }
  if (h.extended_l2() && h.cluster_bits < kMinExtL2ClusterBits) {
    invalid(fmt::format("extended L2 entries need clusters of at least 16 KiB, not {}", cs));
  }
  if (h.data_file_raw() && !h.has_data_file()) {
    invalid("autoclear bit 1 (raw external data) is set without an external data file");
  }
  ValidateTables(h);

  ParseExtensions(bytes, h);
  for (HeaderIssue& i : h.issues) {  // give unknown incompatible bits their table names
    if (i.kind != Kind::kUnsupported) continue;
    i.message = "unknown incompatible feature(s): ";
    uint64_t unknown = h.incompatible_features & ~kIncompatKnown;
    bool first = true;
    for (uint8_t bit = 0; bit < 64; ++bit) {
      if (!(unknown & (1ull << bit))) continue;
      std::string name = h.FeatureBitName(0, bit);
      i.message += fmt::format("{}bit {}{}", first ? "" : ", ", bit,
                               name.starts_with("unknown") ? "" : " (" + name + ")");
      first = false;
    }
  }
  if ((h.autoclear_features & kAutoclearBitmaps) && !h.bitmaps &&
      std::none_of(h.extensions.begin(), h.extensions.end(),
                   [](const Extension& e) { return e.type == kExtBitmaps; })) {
    Issue(h, Kind::kBitmapsBitWithoutExt, false,
          "autoclear bit 0 (bitmaps) is set but there is no bitmaps extension");
  }
  if (h.has_data_file() && !h.data_file) {
    invalid("incompatible bit 2 (external data file) is set but no data file name is recorded");
  }
  if (h.backing_file_offset && h.backing_file_offset <= cs) {
    size_t n = std::min<size_t>(h.backing_file_size, bytes.size() > h.backing_file_offset
                                                         ? bytes.size() - h.backing_file_offset
                                                         : 0);
    ByteView name = bytes.subspan(static_cast<size_t>(h.backing_file_offset), n);
    // QEMU takes the name as a C string: it ends at the first NUL (all NULs: no backing file).
    h.backing_file = FixedName(name);
    if (h.backing_file.size() < n) {
      Issue(h, Kind::kOddField, false,
            fmt::format("the backing file name ({} bytes) has a NUL byte at {}: QEMU uses {}", n,
                        h.backing_file.size(),
                        h.backing_file.empty() ? std::string("no backing file")
                                               : "the name before it: " + h.backing_file));
    }
  }
  return h;
}

}  // namespace imgcheck::qcow2
