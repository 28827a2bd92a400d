// The undo journal: round trip, corruption of the journal itself, and refusal to restore an
// image that is not the one the journal was made for.
#include "fsck/undo.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "fsck/apply.h"
#include "tests/support/qemu_image.h"

namespace imgcheck::fsck {
namespace {

using testing::TempDir;

class UndoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    img_ = dir_.File("a.qcow2");
    ASSERT_EQ(testing::Run("qemu-img create -f qcow2 " + img_ + " 16M"), 0);
    ASSERT_EQ(testing::Run("qemu-io -c 'write -P 0x11 0 256k' " + img_), 0);
    // A leak: raise the refcount of an unused cluster past the image end.
    ASSERT_EQ(testing::Run("truncate -s 2M " + img_), 0);
    uint64_t refblock = testing::ReadU64(img_, testing::ReadU64(img_, 48));
    testing::WriteU32(img_, refblock + 40, 0x00010001);
    original_ = testing::ReadFile(img_);
    journal_ = dir_.File("j");
    RepairOutcome o = Repair(img_, {}, ApplyOptions{.journal_path = journal_});
    ASSERT_FALSE(o.refused);
    ASSERT_TRUE(o.journal);
    ASSERT_EQ(o.ExitCode(), 0);
  }
  int Open() { return ::open(img_.c_str(), O_RDWR); }
  TempDir dir_;
  std::string img_, journal_;
  std::vector<uint8_t> original_;
};

TEST_F(UndoTest, RestoresTheOriginalBytes) {
  EXPECT_NE(testing::ReadFile(img_), original_);
  auto j = ReadJournal(journal_);
  ASSERT_TRUE(j);
  int fd = Open();
  auto dry = Undo(fd, *j, true);
  ASSERT_TRUE(dry);
  EXPECT_NE(testing::ReadFile(img_), original_);  // dry run writes nothing
  EXPECT_TRUE(Undo(fd, *j, false));
  ::close(fd);
  EXPECT_EQ(testing::ReadFile(img_), original_);
}

TEST_F(UndoTest, RefusesAnImageChangedSinceTheRepair) {
  auto j = ReadJournal(journal_);
  ASSERT_TRUE(j);
  ASSERT_FALSE(j->regions.empty());
  testing::WriteU64(img_, j->regions.front().offset, 0x0123456789abcdefull);
  auto changed = testing::ReadFile(img_);
  int fd = Open();
  auto r = Undo(fd, *j, false);
  ::close(fd);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("neither"), std::string::npos);
  EXPECT_EQ(testing::ReadFile(img_), changed);  // nothing written
}

TEST_F(UndoTest, RefusesADamagedJournal) {
  auto bytes = testing::ReadFile(journal_);
  testing::WriteU32(journal_, bytes.size() / 2, 0xdeadbeef);
  auto j = ReadJournal(journal_);
  ASSERT_FALSE(j);
  EXPECT_NE(j.error().message.find("checksum"), std::string::npos);
}

TEST_F(UndoTest, RepairRefusesToOverwriteAnExistingJournal) {
  // A second repair with the same journal path must not destroy the first undo record.
  ASSERT_EQ(testing::Run("qemu-io -c 'write -P 0x22 1M 64k' " + img_), 0);
  uint64_t refblock = testing::ReadU64(img_, testing::ReadU64(img_, 48));
  testing::WriteU32(img_, refblock + 60, 0x00010001);
  auto before = testing::ReadFile(img_);
  RepairOutcome o = Repair(img_, {}, ApplyOptions{.journal_path = journal_});
  EXPECT_TRUE(o.refused);
  EXPECT_EQ(testing::ReadFile(img_), before);
}

}  // namespace
}  // namespace imgcheck::fsck

namespace imgcheck::fsck {
namespace {

// QEMU holds OFD read locks on bytes 100+ while it uses an image; another open file description
// conflicts with them, so a lock taken here looks exactly like a running VM's.
TEST(RepairLocks, RefusesAnImageInUseAndWritesNothing) {
  testing::TempDir dir;
  std::string img = dir.File("a.qcow2");
  ASSERT_EQ(testing::Run("qemu-img create -f qcow2 " + img + " 16M"), 0);
  ASSERT_EQ(testing::Run("truncate -s 2M " + img), 0);
  uint64_t refblock = testing::ReadU64(img, testing::ReadU64(img, 48));
  testing::WriteU32(img, refblock + 40, 0x00010001);  // a leak to repair
  auto before = testing::ReadFile(img);
  int holder = ::open(img.c_str(), O_RDONLY);
  struct flock fl {};
  fl.l_type = F_RDLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 101;  // "holds the write permission"
  fl.l_len = 1;
  ASSERT_EQ(::fcntl(holder, F_OFD_SETLK, &fl), 0);
  RepairOutcome o = Repair(img, {}, ApplyOptions{.journal_path = dir.File("j")});
  ASSERT_TRUE(o.refused);
  EXPECT_NE(o.refused->find("in use"), std::string::npos);
  EXPECT_EQ(testing::ReadFile(img), before);
  EXPECT_NE(::access(dir.File("j").c_str(), F_OK), 0);  // no journal either
  ::close(holder);
  EXPECT_FALSE(Repair(img, {}, ApplyOptions{.journal_path = dir.File("j")}).refused);
}

}  // namespace
}  // namespace imgcheck::fsck
