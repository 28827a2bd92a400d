// Files that are not images: a FIFO named as an image, journal or policy must be refused at
// once (opening a FIFO for reading waits for a writer: a hang), and an oversized journal must
// not be read into memory.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli/policy.h"
#include "fsck/undo.h"
#include "qcow2/device.h"

namespace imgcheck {
namespace {

class SpecialFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgcheck-special-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fifo_ = dir_ + "/fifo";
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, fifo_;
};

TEST_F(SpecialFiles, FifoImageIsRefusedWithoutWaiting) {
  auto dev = qcow2::FileDevice::Open(fifo_);
  ASSERT_FALSE(dev);
  EXPECT_NE(dev.error().message.find("not a regular file"), std::string::npos);
}

TEST_F(SpecialFiles, FifoJournalIsRefusedWithoutWaiting) {
  auto j = fsck::ReadJournal(fifo_);
  ASSERT_FALSE(j);
  EXPECT_NE(j.error().message.find("not a regular file"), std::string::npos);
}

TEST_F(SpecialFiles, FifoPolicyIsRefusedWithoutWaiting) {
  auto p = cli::LoadPolicy(fifo_);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().find("not a regular file"), std::string::npos);
}

TEST_F(SpecialFiles, OversizedJournalIsNotRead) {
  std::string big = dir_ + "/big.journal";
  { std::ofstream(big) << "x"; }
  std::filesystem::resize_file(big, (uint64_t{4} << 30) + 1);  // sparse: no disk space used
  auto j = fsck::ReadJournal(big);
  ASSERT_FALSE(j);
  EXPECT_NE(j.error().message.find("more than any journal"), std::string::npos);
}

}  // namespace
}  // namespace imgcheck
