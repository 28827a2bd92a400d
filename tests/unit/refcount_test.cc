#include "qcow2/refcount.h"

#include <gtest/gtest.h>

#include <vector>

#include "qcow2/entries.h"

namespace imgcheck::qcow2 {
namespace {

TEST(RefcountAt, SubByteWidthsPackFromTheLeastSignificantBit) {
  std::vector<uint8_t> b = {0b10110100, 0xff};
  EXPECT_EQ(RefcountAt(b, 0, 0), 0u);  // 1-bit
  EXPECT_EQ(RefcountAt(b, 0, 2), 1u);
  EXPECT_EQ(RefcountAt(b, 0, 7), 1u);
  EXPECT_EQ(RefcountAt(b, 1, 0), 0u);  // 2-bit: 00
  EXPECT_EQ(RefcountAt(b, 1, 1), 1u);  // 01
  EXPECT_EQ(RefcountAt(b, 1, 2), 3u);  // 11
  EXPECT_EQ(RefcountAt(b, 1, 3), 2u);  // 10
  EXPECT_EQ(RefcountAt(b, 2, 0), 4u);  // 4-bit: 0100
  EXPECT_EQ(RefcountAt(b, 2, 1), 0xbu);
}

TEST(RefcountAt, WideWidthsAreBigEndian) {
  std::vector<uint8_t> b = {0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4};
  EXPECT_EQ(RefcountAt(b, 3, 1), 1u);
  EXPECT_EQ(RefcountAt(b, 4, 0), 1u);
  EXPECT_EQ(RefcountAt(b, 4, 1), 2u);
  EXPECT_EQ(RefcountAt(b, 5, 1), 3u);
  EXPECT_EQ(RefcountAt(b, 6, 1), 4u);
}

TEST(Entries, ClassifiesL2AsQemuDoes) {
  EXPECT_EQ(ClassifyL2(0, false, false), ClusterType::kUnallocated);
  EXPECT_EQ(ClassifyL2(1, false, false), ClusterType::kZeroPlain);
  EXPECT_EQ(ClassifyL2(0x50000 | 1, false, false), ClusterType::kZeroAlloc);
  EXPECT_EQ(ClassifyL2(0x50000 | 1, true, false), ClusterType::kNormal);  // no zero flag in ext L2
  EXPECT_EQ(ClassifyL2(kL2Copied | 0x50000, false, false), ClusterType::kNormal);
  EXPECT_EQ(ClassifyL2(kL2Copied, false, true), ClusterType::kNormal);  // data file offset 0
  EXPECT_EQ(ClassifyL2(kL2Copied, false, false), ClusterType::kUnallocated);
  EXPECT_EQ(ClassifyL2(kL2Compressed | 0x1234, false, false), ClusterType::kCompressed);
}

TEST(Entries, CompressedDescriptorAt64KiB) {
  // x = 62 - (16 - 8) = 54: offset in bits 0..53, additional sectors in 54..61.
  uint64_t e = kL2Compressed | (3ull << 54) | 0x10200;
  CompressedRange r = ParseCompressed(e, 16);
  EXPECT_EQ(r.offset, 0x10200u);
  EXPECT_EQ(r.length, 4u * 512);
  r = ParseCompressed(kL2Compressed | 0x10210, 16);  // unaligned start shortens the range
  EXPECT_EQ(r.length, 512u - 0x10);
}

}  // namespace
}  // namespace imgcheck::qcow2

namespace imgcheck::qcow2 {
namespace {

TEST(SetRefcountAt, RoundTripsEveryWidth) {
  for (uint32_t order = 0; order <= 6; ++order) {
    std::vector<uint8_t> block(64, 0x5a);
    uint64_t max = order == 6 ? ~0ull : (1ull << (1u << order)) - 1;
    uint64_t n = block.size() * 8 >> order;
    for (uint64_t i = 0; i < n; ++i) SetRefcountAt(block, order, i, (i * 7) & max);
    for (uint64_t i = 0; i < n; ++i) EXPECT_EQ(RefcountAt(block, order, i), (i * 7) & max) << order;
  }
}

}  // namespace
}  // namespace imgcheck::qcow2
