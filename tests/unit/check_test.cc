// Checks on real images made by qemu-img: the checker never writes, and it finds what a poke
// breaks. The golden test compares with qemu-img check on many more cases.
#include <gtest/gtest.h>

#include <algorithm>

#include "fsck/check.h"
#include "tests/support/qemu_image.h"

namespace imgcheck::fsck {
namespace {

using testing::TempDir;

bool Has(const CheckResult& r, std::string_view slug) {
  return std::any_of(r.findings.begin(), r.findings.end(),
                     [&](const Finding& f) { return f.slug == slug; });
}

class CheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    img_ = dir_.File("a.qcow2");
    ASSERT_EQ(testing::Run("qemu-img create -f qcow2 " + img_ + " 64M"), 0);
    ASSERT_EQ(testing::Run("qemu-io -c 'write -P 0x11 0 256k' " + img_), 0);
  }
  TempDir dir_;
  std::string img_;
};

TEST_F(CheckTest, CleanImageIsClean) {
  CheckResult r = CheckImage(img_, {});
  EXPECT_EQ(r.ExitCode(), 0);
  EXPECT_EQ(r.allocated_clusters, 4u);
  EXPECT_EQ(r.total_clusters, 1024u);
}

TEST_F(CheckTest, CheckNeverModifiesTheImage) {
  // A corrupt image too: nothing may be "fixed" behind the user's back.
  testing::WriteU64(img_, 72, 3);  // dirty + corrupt bits
  auto before = testing::ReadFile(img_);
  CheckResult r = CheckImage(img_, {});
  EXPECT_TRUE(Has(r, "header.corrupt-bit"));
  EXPECT_TRUE(Has(r, "header.dirty-bit"));
  EXPECT_EQ(testing::ReadFile(img_), before);
}

TEST_F(CheckTest, RaisedRefcountIsALeak) {
  uint64_t reftable = testing::ReadU64(img_, 48);
  uint64_t refblock = testing::ReadU64(img_, reftable);
  // Cluster 20 (beyond the image end) gets refcount 1: the file must cover it.
  ASSERT_EQ(testing::Run("truncate -s 2M " + img_), 0);
  testing::WriteU32(img_, refblock + 40, 0x00010000);  // entries 20,21 = 1, 0
  CheckResult r = CheckImage(img_, {});
  EXPECT_EQ(r.ExitCode(), 3);
  EXPECT_EQ(r.leaks, 1u);
  EXPECT_TRUE(Has(r, "refcount.leak"));
}

TEST_F(CheckTest, ClearedCopiedFlagIsAnError) {
  uint64_t l1 = testing::ReadU64(img_, 40);
  uint64_t l2 = testing::ReadU64(img_, l1) & 0x00fffffffffffe00ull;
  uint64_t e = testing::ReadU64(img_, l2);
  testing::WriteU64(img_, l2, e & ~(1ull << 63));
  CheckResult r = CheckImage(img_, {});
  EXPECT_EQ(r.ExitCode(), 2);
  EXPECT_TRUE(Has(r, "l2.copied-mismatch"));
}

TEST(Check, MissingFileIsAnOperationalError) {
  CheckResult r = CheckImage("/nonexistent/x.qcow2", {});
  EXPECT_EQ(r.ExitCode(), 1);
  ASSERT_TRUE(r.failure);
  EXPECT_NE(r.failure->find("No such file"), std::string::npos);
}

TEST(Check, RawImageHasNoChecks) {
  TempDir d;
  ASSERT_EQ(testing::Run("truncate -s 1M " + d.File("r.img")), 0);
  CheckResult r = CheckImage(d.File("r.img"), {});
  EXPECT_EQ(r.ExitCode(), 63);
  EXPECT_EQ(r.format, "raw");
}

}  // namespace
}  // namespace imgcheck::fsck

namespace imgcheck::fsck {
namespace {

// --deep decompresses every compressed cluster: a damaged payload is invisible to qemu-img check
// (and to a plain check) but reported here, for both compression types.
class DeepTest : public ::testing::TestWithParam<const char*> {};

TEST_P(DeepTest, DamagedCompressedPayloadIsFoundOnlyWithDeep) {
  TempDir dir;
  std::string src = dir.File("src.qcow2"), img = dir.File("c.qcow2");
  ASSERT_EQ(testing::Run("qemu-img create -f qcow2 " + src + " 8M"), 0);
  ASSERT_EQ(testing::Run("qemu-io -c 'write -P 0x41 0 1M' " + src), 0);
  ASSERT_EQ(testing::Run(std::string("qemu-img convert -c -O qcow2 -o compression_type=") +
                         GetParam() + " " + src + " " + img),
            0);
  EXPECT_EQ(CheckImage(img, {.deep = true}).ExitCode(), 0);
  uint64_t l1 = testing::ReadU64(img, 40);
  uint64_t l2 = testing::ReadU64(img, l1) & 0x00fffffffffffe00ull;
  uint64_t e = testing::ReadU64(img, l2);
  uint64_t payload = e & ((1ull << 54) - 1);  // 64 KiB clusters: offset in bits 0..53
  testing::WriteU64(img, payload, 0xffffffffffffffffull);
  testing::WriteU64(img, payload + 8, 0xffffffffffffffffull);
  EXPECT_EQ(CheckImage(img, {}).ExitCode(), 0);
  CheckResult deep = CheckImage(img, {.deep = true});
  EXPECT_EQ(deep.ExitCode(), 2);
  EXPECT_TRUE(Has(deep, "l2.compressed.bad-data"));
}

INSTANTIATE_TEST_SUITE_P(Codecs, DeepTest, ::testing::Values("zlib", "zstd"));

}  // namespace
}  // namespace imgcheck::fsck
