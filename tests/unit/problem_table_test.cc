#include <gtest/gtest.h>

#include <set>
#include <string>

#include "fsck/problem.h"

namespace imgcheck::fsck {
namespace {

TEST(ProblemTable, EveryRowRendersWithEveryField) {
  Fields f{.offset = 0x10000, .cluster = 1, .count = 2, .index = 3, .value = 4, .expected = 5,
           .name = "n", .owner = "o", .other = "x", .detail = "d", .file = "/etc/fstab",
           .line = 3, .evidence = "e"};
  for (const ProblemDef& d : ProblemTable()) {
    EXPECT_NO_THROW({
      std::string m = Render(d, f);
      EXPECT_FALSE(m.empty()) << d.slug;
    }) << d.slug;
    EXPECT_FALSE(d.fix.empty()) << d.slug;
  }
}

TEST(ProblemTable, SlugsAreUniqueAndLowerCase) {
  std::set<std::string_view> slugs;
  for (const ProblemDef& d : ProblemTable()) {
    EXPECT_TRUE(slugs.insert(d.slug).second) << d.slug;
    for (char c : d.slug) EXPECT_FALSE(c >= 'A' && c <= 'Z') << d.slug;
    EXPECT_EQ(&Def(d.code), &d);
  }
}

TEST(ProblemTable, MessagesStartLowerCase) {
  for (const ProblemDef& d : ProblemTable()) {
    // Upper case only for a structure name such as "L2 table".
    char c = d.message[0], next = d.message[1];
    EXPECT_FALSE(c >= 'A' && c <= 'Z' && !(next >= '0' && next <= '9')) << d.slug;
  }
}

}  // namespace
}  // namespace imgcheck::fsck
