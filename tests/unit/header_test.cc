#include "qcow2/header.h"

#include <gtest/gtest.h>

#include <boost/endian/conversion.hpp>
#include <vector>

namespace imgcheck::qcow2 {
namespace {

// A minimal valid v3 header in a 64 KiB cluster 0.
struct HeaderBytes {
  std::vector<uint8_t> b = std::vector<uint8_t>(65536);
  HeaderBytes() {
    U32(0, kMagic);
    U32(4, 3);
    U32(20, 16);           // cluster_bits
    U64(24, 64ull << 20);  // size
    U32(36, 1);            // l1_size
    U64(40, 0x30000);      // l1_table_offset
    U64(48, 0x10000);      // refcount_table_offset
    U32(56, 1);            // refcount_table_clusters
    U32(96, 4);            // refcount_order
    U32(100, 112);         // header_length
  }
  void U32(size_t off, uint32_t v) { boost::endian::store_big_u32(&b[off], v); }
  void U64(size_t off, uint64_t v) { boost::endian::store_big_u64(&b[off], v); }
  void Ext(size_t off, uint32_t type, std::vector<uint8_t> data) {
    U32(off, type);
    U32(off + 4, static_cast<uint32_t>(data.size()));
    std::copy(data.begin(), data.end(), b.begin() + static_cast<long>(off) + 8);
  }
  Header Parse() const {
    auto h = ParseHeader(b);
    EXPECT_TRUE(h.has_value());
    return *h;
  }
};

bool HasIssue(const Header& h, HeaderIssue::Kind k) {
  for (const auto& i : h.issues) {
    if (i.kind == k) return true;
  }
  return false;
}

TEST(Header, DecodesAValidV3Header) {
  Header h = HeaderBytes().Parse();
  EXPECT_EQ(h.version, 3u);
  EXPECT_EQ(h.cluster_size(), 65536u);
  EXPECT_EQ(h.l2_entries(), 8192u);
  EXPECT_EQ(h.refblock_entries(), 32768u);
  EXPECT_EQ(h.refcount_max(), 0xffffu);
  EXPECT_TRUE(h.issues.empty());
  EXPECT_FALSE(h.fatal());
}

TEST(Header, NoMagicIsAnError) {
  std::vector<uint8_t> b(100);
  auto h = ParseHeader(b);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().kind, ErrorKind::kNotQcow2);
}

TEST(Header, Version4IsUnsupported) {
  HeaderBytes hb;
  hb.U32(4, 4);
  auto h = ParseHeader(hb.b);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().kind, ErrorKind::kUnsupported);
}

TEST(Header, ClusterBitsOutOfRangeIsFatal) {
  for (uint32_t bits : {0u, 8u, 22u, 63u}) {
    HeaderBytes hb;
    hb.U32(20, bits);
    Header h = hb.Parse();
    EXPECT_TRUE(h.fatal()) << bits;
  }
}

TEST(Header, RefcountOrderAbove6IsFatal) {
  HeaderBytes hb;
  hb.U32(96, 7);
  EXPECT_TRUE(hb.Parse().fatal());
}

TEST(Header, L1TooSmallForTheVirtualSizeIsFatal) {
  HeaderBytes hb;
  hb.U64(24, 1ull << 40);  // 1 TiB needs 2048 L1 entries at 64 KiB clusters
  EXPECT_TRUE(hb.Parse().fatal());
}

TEST(Header, UnknownIncompatibleBitIsNamedFromTheFeatureTable) {
  HeaderBytes hb;
  hb.U64(72, 1ull << 5);
  std::vector<uint8_t> entry(48);
  entry[0] = 0;
  entry[1] = 5;
  std::string name = "shiny";
  std::copy(name.begin(), name.end(), entry.begin() + 2);
  hb.Ext(112, kExtFeatureTable, entry);
  Header h = hb.Parse();
  ASSERT_TRUE(HasIssue(h, HeaderIssue::Kind::kUnsupported));
  bool named = false;
  for (const auto& i : h.issues) named |= i.message.find("bit 5 (shiny)") != std::string::npos;
  EXPECT_TRUE(named);
}

TEST(Header, ExtensionsAreDecoded) {
  HeaderBytes hb;
  hb.Ext(112, kExtBackingFormat, {'q', 'c', 'o', 'w', '2'});
  hb.Ext(128, kExtDataFile, {'d', '.', 'r', 'a', 'w'});
  hb.Ext(144, 0x12345678, {1, 2, 3});
  Header h = hb.Parse();
  EXPECT_EQ(h.backing_format, "qcow2");
  EXPECT_EQ(h.data_file, "d.raw");
  EXPECT_TRUE(HasIssue(h, HeaderIssue::Kind::kExtensionUnknown));
  EXPECT_FALSE(h.fatal());
}

TEST(Header, ExtensionLongerThanTheClusterIsFatal) {
  HeaderBytes hb;
  hb.U32(112, kExtFeatureTable);
  hb.U32(116, 0xffffffff);
  EXPECT_TRUE(hb.Parse().fatal());
}

TEST(Header, BitmapsExtensionIgnoredWithoutAutoclearBit) {
  HeaderBytes hb;
  std::vector<uint8_t> ext(24);
  ext[3] = 1;  // one bitmap
  hb.Ext(112, kExtBitmaps, ext);
  Header h = hb.Parse();
  EXPECT_FALSE(h.bitmaps);
  EXPECT_TRUE(HasIssue(h, HeaderIssue::Kind::kBitmapsIgnored));
  hb.U64(88, kAutoclearBitmaps);
  boost::endian::store_big_u64(&hb.b[112 + 8 + 16], 0x40000);  // directory offset
  h = hb.Parse();
  ASSERT_TRUE(h.bitmaps);
  EXPECT_EQ(h.bitmaps->nb_bitmaps, 1u);
}

TEST(Header, ZstdNeedsTheIncompatibleBit) {
  HeaderBytes hb;
  hb.b[104] = 1;
  EXPECT_TRUE(hb.Parse().fatal());
  hb.U64(72, kIncompatCompression);
  Header h = hb.Parse();
  EXPECT_FALSE(h.fatal());
  EXPECT_EQ(h.compression_type, kCompressionZstd);
}

TEST(Header, TruncatedBufferNeverReadsOutOfBounds) {
  HeaderBytes hb;
  for (size_t n = 0; n < 200; ++n) {
    auto h = ParseHeader(ByteView(hb.b).first(n));
    if (n < 4) {
      EXPECT_FALSE(h);
    }
  }
}

}  // namespace
}  // namespace imgcheck::qcow2
