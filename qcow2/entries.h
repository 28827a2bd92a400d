// Typed views of L1, L2 and compressed-cluster entries. Pure functions of the raw u64 values;
// the bit diagrams are in layout.h.
#pragma once

#include <cstdint>

#include "qcow2/layout.h"

namespace imgcheck::qcow2 {

// QEMU's cluster classes (qcow2_get_cluster_type).
enum class ClusterType { kUnallocated, kZeroPlain, kZeroAlloc, kNormal, kCompressed };

inline ClusterType ClassifyL2(uint64_t entry, bool extended_l2, bool data_file) {
  if (entry & kL2Compressed) return ClusterType::kCompressed;
  if ((entry & kL2Zero) && !extended_l2) {
    return (entry & kL2OffsetMask) ? ClusterType::kZeroAlloc : ClusterType::kZeroPlain;
  }
  if (!(entry & kL2OffsetMask)) {
    // Offset 0 is a valid data-file offset; COPIED tells the two apart there.
    return (data_file && (entry & kL2Copied)) ? ClusterType::kNormal : ClusterType::kUnallocated;
  }
  return ClusterType::kNormal;
}

struct CompressedRange {
  uint64_t offset;  // host byte offset, not aligned
  uint64_t length;  // stored bytes, may cross into the next cluster
};

// Compressed descriptor: bits 0..x-1 host offset, x..61 additional 512-byte sectors,
// x = 62 - (cluster_bits - 8).
inline CompressedRange ParseCompressed(uint64_t entry, uint32_t cluster_bits) {
  uint32_t shift = 62 - (cluster_bits - 8);
  uint64_t offset = entry & ((1ull << shift) - 1);
  uint64_t sectors = ((entry >> shift) & ((1ull << (cluster_bits - 8)) - 1)) + 1;
  return CompressedRange{offset, sectors * 512 - (offset & 511)};
}

inline const char* ClusterTypeName(ClusterType t) {
  switch (t) {
    case ClusterType::kUnallocated: return "unallocated";
    case ClusterType::kZeroPlain: return "zero";
    case ClusterType::kZeroAlloc: return "zero (allocated)";
    case ClusterType::kNormal: return "data";
    case ClusterType::kCompressed: return "compressed";
  }
  return "?";
}

}  // namespace imgcheck::qcow2
