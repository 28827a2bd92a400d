#include "qcow2/overlay.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace imgcheck::qcow2 {
namespace {

std::vector<uint8_t> ReadAll(const Device& d) {
  std::vector<uint8_t> b(d.Size());
  EXPECT_TRUE(d.Read(0, b));
  return b;
}

TEST(Device, EmptyReadsAreNoOps) {
  // An empty table (l1_size 0, no snapshots) is read as an empty span with no storage; the
  // devices must not hand its null pointer to memcpy/memset (UBSan, found by fuzz_check).
  MemDevice dev(std::vector<uint8_t>(16, 7));
  OverlayDevice o(dev);
  o.Write(20, std::vector<uint8_t>(4, 1));
  for (uint64_t off : {uint64_t{0}, uint64_t{8}, uint64_t{22}, uint64_t{1} << 40}) {
    EXPECT_TRUE(dev.Read(off, std::span<uint8_t>()));
    EXPECT_TRUE(o.Read(off, std::span<uint8_t>()));
  }
}

TEST(Overlay, OverlappingWritesLatestWinsAndMatchesAFlatModel) {
  std::vector<uint8_t> base(64);
  std::iota(base.begin(), base.end(), uint8_t{0});
  MemDevice dev(base);
  OverlayDevice o(dev);
  std::vector<uint8_t> model = base;
  auto write = [&](uint64_t off, std::vector<uint8_t> b) {
    o.Write(off, b);
    if (model.size() < off + b.size()) model.resize(off + b.size());
    std::copy(b.begin(), b.end(), model.begin() + static_cast<long>(off));
  };
  write(10, std::vector<uint8_t>(10, 0xaa));
  write(15, std::vector<uint8_t>(3, 0xbb));  // inside
  write(5, std::vector<uint8_t>(8, 0xcc));   // over the start
  write(18, std::vector<uint8_t>(6, 0xdd));  // over the end
  write(0, std::vector<uint8_t>(2, 0xee));
  write(60, std::vector<uint8_t>(10, 0x11));  // grows the device
  EXPECT_EQ(o.Size(), 70u);
  EXPECT_EQ(ReadAll(o), model);
  std::vector<uint8_t> part(7);
  ASSERT_TRUE(o.Read(14, part));
  EXPECT_EQ(part, std::vector<uint8_t>(model.begin() + 14, model.begin() + 21));
}

}  // namespace
}  // namespace imgcheck::qcow2
