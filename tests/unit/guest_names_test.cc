// Appliance device name translation (guestfs/model.h): the kernel may enumerate the disks in
// another order than libguestfs's API names, with the appliance's own disk among them.
#include <gtest/gtest.h>

#include "guestfs/model.h"

namespace imgcheck::guest {
namespace {

TEST(TranslateDiskName, FollowsTheKernelOrder) {
  // The appliance disk came up as sda: the VM's first disk is the kernel's sdb.
  const std::vector<std::string> kernel = {"/dev/sdb", "/dev/sdc"};
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/sda"), "/dev/sdb");
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/sda2"), "/dev/sdb2");
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/sdb15"), "/dev/sdc15");
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/vdb1"), "/dev/sdc1");
}

TEST(TranslateDiskName, UnknownDisksAreNotGuessed) {
  const std::vector<std::string> kernel = {"/dev/sda"};
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/sdb"), std::nullopt);
  EXPECT_EQ(TranslateDiskName({}, "/dev/sda1"), std::nullopt);
}

TEST(TranslateDiskName, TwoLetterDisks) {
  std::vector<std::string> kernel;
  for (int i = 0; i < 28; ++i) kernel.push_back("/dev/k" + std::to_string(i) + "-");
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/sdz"), "/dev/k25-");
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/sdaa"), "/dev/k26-");
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/sdab3"), "/dev/k27-3");
}

TEST(TranslateDiskName, OtherNamesPassUnchanged) {
  const std::vector<std::string> kernel = {"/dev/sdb"};
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/rhel/root"), "/dev/rhel/root");
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/mapper/vg-lv"), "/dev/mapper/vg-lv");
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/md0"), "/dev/md0");
  EXPECT_EQ(TranslateDiskName(kernel, "/dev/dm-0"), "/dev/dm-0");
}

}  // namespace
}  // namespace imgcheck::guest
