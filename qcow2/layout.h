// The qcow2 on-disk layout (QEMU docs/interop/qcow2.txt) and the limits QEMU 7.2 enforces
// (block/qcow2.h). Every offset, bit and limit used by the reader is named here, once.
#pragma once

#include <cstdint>

namespace imgcheck::qcow2 {

inline constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"

// Header field offsets (bytes). v2 headers end at 72; v3 headers are header_length >= 104 bytes.
namespace hdr {
inline constexpr uint32_t kV2Length = 72;
inline constexpr uint32_t kV3MinLength = 104;
inline constexpr uint32_t kCompressionTypeOffset = 104;  // 1 byte, present if header_length > 104
}  // namespace hdr

// Feature bits.
inline constexpr uint64_t kIncompatDirty = 1ull << 0;
inline constexpr uint64_t kIncompatCorrupt = 1ull << 1;
inline constexpr uint64_t kIncompatDataFile = 1ull << 2;
inline constexpr uint64_t kIncompatCompression = 1ull << 3;
inline constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
inline constexpr uint64_t kIncompatKnown = 0x1f;
inline constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;
inline constexpr uint64_t kCompatKnown = 0x1;
inline constexpr uint64_t kAutoclearBitmaps = 1ull << 0;
inline constexpr uint64_t kAutoclearDataFileRaw = 1ull << 1;
inline constexpr uint64_t kAutoclearKnown = 0x3;

// Header extension types.
inline constexpr uint32_t kExtEnd = 0x00000000;
inline constexpr uint32_t kExtBackingFormat = 0xe2792aca;
inline constexpr uint32_t kExtFeatureTable = 0x6803f857;
inline constexpr uint32_t kExtBitmaps = 0x23852875;
inline constexpr uint32_t kExtCrypto = 0x0537be77;
inline constexpr uint32_t kExtDataFile = 0x44415441;

inline constexpr uint32_t kCryptNone = 0, kCryptAes = 1, kCryptLuks = 2;
inline constexpr uint8_t kCompressionZlib = 0, kCompressionZstd = 1;

// L1 entry (u64):
//   63     COPIED (L2 table refcount is exactly 1; active L1 only)
//   62..56 reserved
//   55..9  L2 table offset (cluster aligned)
//   8..0   reserved
inline constexpr uint64_t kL1Copied = 1ull << 63;
inline constexpr uint64_t kL1OffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kL1ReservedMask = 0x7f000000000001ffull;

// Standard L2 entry (u64):
//   63     COPIED      62  compressed (0 here)
//   61..56 reserved    55..9 host cluster offset (cluster aligned)
//   8..1   reserved    0   reads as zero (v3; unused with extended L2)
// Compressed L2 entry: 62 set; bits 0..x-1 host byte offset, x..61 additional sectors,
//   x = 62 - (cluster_bits - 8).
inline constexpr uint64_t kL2Copied = 1ull << 63;
inline constexpr uint64_t kL2Compressed = 1ull << 62;
inline constexpr uint64_t kL2Zero = 1ull << 0;
inline constexpr uint64_t kL2OffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kL2StdReservedMask = 0x3f000000000001feull;

// Extended L2 subcluster bitmap (second u64): bits 0..31 allocated, 32..63 reads as zero.
inline constexpr uint64_t kSubclusterAllocMask = 0x00000000ffffffffull;

// Refcount table entry (u64): 63..9 refcount block offset, 8..0 reserved.
inline constexpr uint64_t kReftOffsetMask = 0xfffffffffffffe00ull;
inline constexpr uint64_t kReftReservedMask = 0x1ffull;

// Bitmap table entry (u64): 55..9 data cluster offset; 0 "all ones" when offset is 0.
inline constexpr uint64_t kBmeOffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kBmeReservedMask = 0xff000000000001feull;
inline constexpr uint64_t kBmeAllOnes = 1ull;
inline constexpr uint32_t kBmeFlagInUse = 1u << 0;
inline constexpr uint32_t kBmeFlagAuto = 1u << 1;
inline constexpr uint32_t kBmeFlagExtraDataCompatible = 1u << 2;
inline constexpr uint32_t kBmeReservedFlags = ~0x7u;
inline constexpr uint8_t kBitmapTypeDirty = 1;

// Limits (QEMU 7.2 block/qcow2.h, block/qcow2-bitmap.c), each with QEMU's reason.
inline constexpr uint32_t kMinClusterBits = 9;   // 512 B
inline constexpr uint32_t kMaxClusterBits = 21;  // 2 MiB: QEMU's allocation and L2 cache limits
inline constexpr uint32_t kMinExtL2ClusterBits = 14;  // 32 subclusters of >= 512 B
inline constexpr uint32_t kMaxRefcountOrder = 6;      // 64-bit refcounts
inline constexpr uint64_t kMaxL1Bytes = 32ull << 20;  // QCOW_MAX_L1_SIZE
inline constexpr uint64_t kInt64Max = 0x7fffffffffffffffull;  // QEMU bounds file offsets by it
inline constexpr uint64_t kMaxReftableBytes = 8ull << 20;  // QCOW_MAX_REFTABLE_SIZE
inline constexpr uint32_t kMaxSnapshots = 65536;            // QCOW_MAX_SNAPSHOTS
inline constexpr uint64_t kMaxSnapshotTableBytes = 64ull << 20;
inline constexpr uint32_t kMaxSnapshotExtraData = 1024;
inline constexpr uint32_t kSnapshotHeaderBytes = 40;
// The largest snapshot table entry: header, extra data, two u16-length strings, padding.
inline constexpr uint64_t kMaxSnapshotEntryBytes =
    kSnapshotHeaderBytes + kMaxSnapshotExtraData + 2 * 65535 + 8;
inline constexpr uint32_t kMaxBackingNameBytes = 1023;
inline constexpr uint32_t kMaxBackingFormatBytes = 15;  // QEMU: length < 16
inline constexpr uint32_t kMaxBitmaps = 65535;
inline constexpr uint64_t kMaxBitmapDirBytes = 1024ull * 65535;
inline constexpr uint32_t kMaxBitmapNameBytes = 1023;
inline constexpr uint32_t kMinBitmapGranularityBits = 9;
inline constexpr uint32_t kMaxBitmapGranularityBits = 31;
inline constexpr uint64_t kMaxBitmapTableEntries = 0x8000000;  // BME_MAX_TABLE_SIZE
inline constexpr uint64_t kMaxHostOffset = 1ull << 56;

}  // namespace imgcheck::qcow2
