// The qcow2 header (v2 and v3) and its extensions, decoded from the bytes of cluster 0.
// ParseHeader is a pure function: it never fails on an inconsistent header, it records each
// problem as a HeaderIssue (fatal where QEMU 7.2 refuses to open the image) and decodes what it
// can. Only a missing magic is an error. What is not checked here: anything outside cluster 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qcow2/bytes.h"
#include "qcow2/layout.h"
#include "qcow2/result.h"

namespace imgcheck::qcow2 {

struct FeatureName {
  uint8_t type;  // 0 incompatible, 1 compatible, 2 autoclear
  uint8_t bit;
  std::string name;
};

struct BitmapsExtension {
  uint32_t nb_bitmaps;
  uint32_t reserved;
  uint64_t directory_size;
  uint64_t directory_offset;
};

struct CryptoExtension {
  uint64_t offset;
  uint64_t length;
};

struct Extension {
  uint32_t type;
  uint32_t length;
  uint64_t offset;  // of the data, in the file
};

struct HeaderIssue {
  enum class Kind {
    kInvalidField,         // a field QEMU rejects
    kExtensionInvalid,     // a known extension QEMU rejects
    kUnsupported,          // an incompatible feature we cannot read
    kExtensionUnknown,     // info: listed, not fatal
    kExtensionDuplicate,   // warning
    kBitmapsIgnored,       // bitmaps extension present, autoclear bit 0 clear
    kBitmapsBitWithoutExt, // autoclear bit 0 set, no extension
    kOddField,             // spec violation QEMU tolerates
  };
  Kind kind;
  bool fatal;  // QEMU refuses to open the image: checks that depend on it cannot run
  std::string message;
};

struct Header {
  uint32_t version = 0;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = 0;
  uint64_t size = 0;
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible_features = 0;
  uint64_t compatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = hdr::kV2Length;
  uint8_t compression_type = kCompressionZlib;

  std::string backing_file;
  std::optional<std::string> backing_format;
  std::optional<std::string> data_file;
  std::vector<FeatureName> feature_names;
  std::optional<BitmapsExtension> bitmaps;  // only when autoclear bit 0 is set (as QEMU)
  std::optional<CryptoExtension> crypto;
  std::vector<Extension> extensions;  // every extension, in file order
  std::vector<HeaderIssue> issues;

  bool fatal() const;
  uint64_t cluster_size() const { return 1ull << cluster_bits; }
  bool extended_l2() const { return incompatible_features & kIncompatExtendedL2; }
  bool has_data_file() const { return incompatible_features & kIncompatDataFile; }
  bool data_file_raw() const { return autoclear_features & kAutoclearDataFileRaw; }
  uint32_t l2_entry_bytes() const { return extended_l2() ? 16 : 8; }
  uint64_t l2_entries() const { return cluster_size() / l2_entry_bytes(); }
  uint32_t refcount_bits() const { return 1u << refcount_order; }
  uint64_t refblock_entries() const { return cluster_size() * 8 / refcount_bits(); }
  uint64_t refcount_max() const {
    return refcount_order == 6 ? ~0ull : (1ull << refcount_bits()) - 1;
  }
  uint64_t reftable_entries() const {
    return static_cast<uint64_t>(refcount_table_clusters) << (cluster_bits - 3);
  }
  // Name of a feature bit: the image's own feature table first, then QEMU's names.
  std::string FeatureBitName(uint8_t type, uint8_t bit) const;
};

// bytes: cluster 0 of the image (at least the first 4 bytes; shorter than a cluster only when
// the caller could not know the cluster size). Fails only when the magic is missing.
Result<Header> ParseHeader(ByteView bytes);

// The bytes the header needs before cluster_bits is known.
inline constexpr size_t kHeaderProbeBytes = 4096;

}  // namespace imgcheck::qcow2
