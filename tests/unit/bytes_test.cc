#include "qcow2/bytes.h"

#include <gtest/gtest.h>

#include <vector>

namespace imgcheck::qcow2 {
namespace {

TEST(Cursor, ReadsBigEndianFieldsInOrder) {
  std::vector<uint8_t> b = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
                            0x0c, 0x0d, 0x0e, 0x0f};
  Cursor c(b);
  EXPECT_EQ(c.U8(), 0x01);
  EXPECT_EQ(c.U16(), 0x0203);
  EXPECT_EQ(c.U32(), 0x04050607u);
  EXPECT_EQ(c.U64(), 0x08090a0b0c0d0e0full);
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.remaining(), 0u);
}

TEST(Cursor, ReadPastEndIsStickyAndYieldsZero) {
  std::vector<uint8_t> b = {1, 2, 3};
  Cursor c(b);
  EXPECT_EQ(c.U32(), 0u);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.U8(), 0u);  // still failed, even though one byte would fit
  EXPECT_FALSE(c.ok());
}

TEST(Cursor, HugeLengthDoesNotWrap) {
  std::vector<uint8_t> b(16);
  Cursor c(b, 8);
  EXPECT_TRUE(c.Bytes(SIZE_MAX).empty());
  EXPECT_FALSE(c.ok());
}

TEST(Cursor, StartPastTheEndHasFailed) {
  // Found by fuzz_snapshot_table: padding moved the next entry's start past the buffer.
  std::vector<uint8_t> b(5);
  Cursor c(b, 8);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.U8(), 0u);
  EXPECT_EQ(c.remaining(), 0u);
}

TEST(Checked, DetectsOverflow) {
  EXPECT_FALSE(CheckedAdd(UINT64_MAX, 1));
  EXPECT_EQ(CheckedAdd(1, 2), 3u);
  EXPECT_FALSE(CheckedMul(1ull << 63, 2));
  EXPECT_EQ(CheckedMul(3, 4), 12u);
}

}  // namespace
}  // namespace imgcheck::qcow2
