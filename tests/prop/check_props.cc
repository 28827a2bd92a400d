// Property tests (RapidCheck) on real images made by qemu-img and qemu-io:
//  - any valid image, whatever its cluster size, refcount width, version, subclusters,
//    snapshots and writes, checks clean;
//  - one random corruption of one field is reported (non-zero exit), never a crash.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "fsck/apply.h"
#include "fsck/check.h"
#include "fsck/undo.h"
#include "qcow2/device.h"
#include "qcow2/entries.h"
#include "qcow2/image.h"
#include "qcow2/refcount.h"
#include "tests/support/qemu_image.h"

namespace imgcheck {
namespace {

using testing::TempDir;

struct Write {
  uint64_t offset;
  uint64_t length;
  bool zero;
  bool snapshot_before;
};

struct Recipe {
  uint32_t cluster_bits;
  uint32_t refcount_bits;
  bool v2;
  bool extended_l2;
  uint64_t size;
  std::vector<Write> writes;
};

void showValue(const Recipe& r, std::ostream& os) {
  os << fmt::format("cluster_bits={} refcount_bits={} v2={} extl2={} size={} writes={}",
                    r.cluster_bits, r.refcount_bits, r.v2, r.extended_l2, r.size,
                    r.writes.size());
}

rc::Gen<Recipe> GenRecipe() {
  return rc::gen::exec([] {
    Recipe r;
    r.cluster_bits = *rc::gen::element(9u, 12u, 14u, 16u, 21u);
    r.v2 = *rc::gen::element(false, false, true);
    r.refcount_bits = r.v2 ? 16 : *rc::gen::element(1u, 2u, 4u, 8u, 16u, 32u, 64u);
    r.extended_l2 = !r.v2 && r.cluster_bits >= 14 && *rc::gen::arbitrary<bool>();
    r.size = (*rc::gen::inRange<uint64_t>(1, 65)) << 20;
    int n = *rc::gen::inRange(0, 8);
    for (int i = 0; i < n; ++i) {
      Write w;
      w.offset = (*rc::gen::inRange<uint64_t>(0, r.size / 512)) * 512;
      w.length = std::min<uint64_t>((*rc::gen::inRange<uint64_t>(1, 512)) * 512, r.size - w.offset);
      w.zero = !r.v2 && *rc::gen::element(false, false, false, true);
      // Snapshots share clusters: impossible with 1-bit refcounts.
      w.snapshot_before = r.refcount_bits > 1 && *rc::gen::element(false, false, false, true);
      r.writes.push_back(w);
    }
    return r;
  });
}

std::string Build(const TempDir& dir, const Recipe& r) {
  std::string img = dir.File("p.qcow2");
  std::string opts = fmt::format("cluster_size={},compat={}", 1u << r.cluster_bits,
                                 r.v2 ? "0.10" : "1.1");
  if (!r.v2) opts += fmt::format(",refcount_bits={}", r.refcount_bits);
  if (r.extended_l2) opts += ",extended_l2=on";
  RC_ASSERT(testing::Run(fmt::format("qemu-img create -f qcow2 -o {} {} {}", opts, img, r.size)) ==
            0);
  int snap = 0;
  for (const Write& w : r.writes) {
    // Each snapshot adds a reference to shared clusters: stay within the refcount width.
    uint64_t max = r.refcount_bits >= 64 ? ~0ull : (1ull << r.refcount_bits) - 1;
    if (w.snapshot_before && snap + 2u <= max) {
      RC_ASSERT(testing::Run(fmt::format("qemu-img snapshot -c s{} {}", snap++, img)) == 0);
    }
    std::string op = w.zero ? "write -z" : "write -P 0x5a";
    RC_ASSERT(testing::Run(fmt::format("qemu-io -c '{} {} {}' {}", op, w.offset, w.length,
                                       img)) == 0);
  }
  return img;
}

RC_GTEST_PROP(CheckProps, ValidImagesCheckClean, ()) {
  Recipe r = *GenRecipe();
  TempDir dir;
  std::string img = Build(dir, r);
  fsck::CheckResult res = fsck::CheckImage(img, {});
  for (const auto& f : res.findings) RC_LOG() << f.slug << ": " << f.message << "\n";
  RC_ASSERT(res.ExitCode() == 0);
  RC_ASSERT(res.corruptions == 0u);
  RC_ASSERT(res.leaks == 0u);
}

// Where things are in an image, read with our own reader.
struct Layout {
  qcow2::Header h;
  std::vector<uint64_t> l2_entry_offsets;  // file offsets of allocated, uncompressed L2 entries
  std::vector<uint64_t> data_clusters;
  std::vector<uint64_t> l1_entry_offsets;  // non-zero active L1 entries
};

Layout Locate(const std::string& img) {
  auto dev = qcow2::FileDevice::Open(img);
  RC_ASSERT(dev.has_value());
  auto h = qcow2::ReadHeader(**dev);
  RC_ASSERT(h.has_value());
  Layout l{*h, {}, {}, {}};
  for (uint32_t i = 0; i < h->l1_size; ++i) {
    uint64_t at = h->l1_table_offset + i * 8ull;
    uint64_t e = testing::ReadU64(img, at) & qcow2::kL1OffsetMask;
    if (!e) continue;
    l.l1_entry_offsets.push_back(at);
    for (uint64_t j = 0; j < h->l2_entries(); ++j) {
      uint64_t eat = e + j * h->l2_entry_bytes();
      uint64_t v = testing::ReadU64(img, eat);
      auto type = qcow2::ClassifyL2(v, h->extended_l2(), false);
      if (type == qcow2::ClusterType::kNormal) {
        l.l2_entry_offsets.push_back(eat);
        l.data_clusters.push_back(v & qcow2::kL2OffsetMask);
      }
    }
  }
  return l;
}

// Replaces the on-disk refcount of the cluster at host offset `off` with change(old).
template <class F>
void ChangeRefcount(const std::string& img, const qcow2::Header& h, uint64_t off, F change) {
  uint64_t c = off >> h.cluster_bits;
  uint64_t block = testing::ReadU64(img, h.refcount_table_offset + c / h.refblock_entries() * 8) &
                   qcow2::kReftOffsetMask;
  RC_ASSERT(block != 0u);
  uint64_t idx = c % h.refblock_entries();
  uint32_t bits = h.refcount_bits();
  auto bytes = testing::ReadFile(img);
  uint64_t value = change(qcow2::RefcountAt(qcow2::ByteView(bytes).subspan(block, 1u << h.cluster_bits),
                                            h.refcount_order, idx));
  if (bits < 8) {
    uint64_t bit = idx * bits;
    uint8_t& b = bytes[block + bit / 8];
    b = static_cast<uint8_t>((b & ~(((1u << bits) - 1) << (bit % 8))) | (value << (bit % 8)));
  } else {
    for (uint32_t k = 0; k < bits / 8; ++k) {
      bytes[block + idx * (bits / 8) + k] =
          static_cast<uint8_t>(value >> (8 * (bits / 8 - 1 - k)));
    }
  }
  FILE* f = std::fopen(img.c_str(), "r+b");
  std::fseek(f, 0, SEEK_SET);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

// The corruptions the properties apply, one field each.
enum class Corruption {
  kRefcountZero,      // a data cluster's refcount set to 0
  kRefcountRaised,    // one more than its references: a leak (and COPIED at 1 -> 2)
  kL2Reserved,        // a reserved bit in an L2 entry
  kL2CopiedFlipped,   // COPIED flipped on an active L2 entry
  kL1Reserved,        // a reserved bit in an active L1 entry
  kDirtyCorruptBits,  // the dirty and corrupt bits on a consistent image
  kL2Misaligned,      // a data L2 entry moved by 512 bytes
  kUnknownIncompat,   // an unknown incompatible feature bit
};

// A random valid v3 image with at least one data cluster, then `c` applied to one random
// allocated entry (or its cluster).
std::string CorruptImage(const TempDir& dir, Corruption c) {
  Recipe r = *GenRecipe();
  r.v2 = false;
  if (r.refcount_bits < 2) r.refcount_bits = 16;  // room for refcount 2
  for (auto& w : r.writes) w.zero = false;
  r.writes.push_back(Write{0, 1 << 16, false, false});
  std::string img = Build(dir, r);
  Layout l = Locate(img);
  RC_PRE(!l.l2_entry_offsets.empty());
  size_t pick = *rc::gen::inRange<size_t>(0, l.l2_entry_offsets.size());
  uint64_t entry_at = l.l2_entry_offsets[pick];
  uint64_t entry = testing::ReadU64(img, entry_at);
  uint64_t cluster = l.data_clusters[pick];
  RC_LOG() << fmt::format("corruption {} entry 0x{:x} at 0x{:x} cluster 0x{:x}\n",
                          static_cast<int>(c), entry, entry_at, cluster);
  switch (c) {
    case Corruption::kRefcountZero:
      ChangeRefcount(img, l.h, cluster, [](uint64_t) { return 0; });
      break;
    case Corruption::kRefcountRaised:
      ChangeRefcount(img, l.h, cluster, [&](uint64_t old) {
        RC_PRE(old < l.h.refcount_max());
        return old + 1;
      });
      break;
    case Corruption::kL2Reserved: testing::WriteU64(img, entry_at, entry | (1ull << 57)); break;
    case Corruption::kL2CopiedFlipped: testing::WriteU64(img, entry_at, entry ^ qcow2::kL2Copied); break;
    case Corruption::kL1Reserved: {
      uint64_t at = l.l1_entry_offsets.front();
      testing::WriteU64(img, at, testing::ReadU64(img, at) | (1ull << 1));
      break;
    }
    case Corruption::kDirtyCorruptBits:
      testing::WriteU64(img, 72, l.h.incompatible_features | 3);
      break;
    case Corruption::kL2Misaligned: testing::WriteU64(img, entry_at, entry + 512); break;
    case Corruption::kUnknownIncompat:
      testing::WriteU64(img, 72, l.h.incompatible_features | (1ull << 9));
      break;
  }
  return img;
}

RC_GTEST_PROP(CheckProps, OneCorruptionIsReportedNeverACrash, ()) {
  // Every corruption but the header bits (a consistent image with them set is reported, but the
  // dirty bit alone is only a warning).
  Corruption c = *rc::gen::element(Corruption::kRefcountZero, Corruption::kRefcountRaised,
                                   Corruption::kL2Reserved, Corruption::kL2CopiedFlipped,
                                   Corruption::kL1Reserved, Corruption::kL2Misaligned,
                                   Corruption::kUnknownIncompat);
  RC_TAG(static_cast<int>(c));
  TempDir dir;
  std::string img = CorruptImage(dir, c);
  fsck::CheckResult res = fsck::CheckImage(img, {});
  for (const auto& f : res.findings) RC_LOG() << f.slug << ": " << f.message << "\n";
  RC_ASSERT(res.ExitCode() != 0);
  RC_ASSERT(res.ExitCode() != 63);
}

}  // namespace
}  // namespace imgcheck

namespace imgcheck {
namespace {

// Random valid image, one random corruption, repair: the image checks clean of errors, guest
// data is unchanged (without --allow-data-loss), and undo restores the corrupted bytes exactly.
RC_GTEST_PROP(RepairProps, RepairCleansAndUndoRestores, ()) {
  // The corruptions a repair fixes without --allow-data-loss.
  Corruption c = *rc::gen::element(Corruption::kRefcountZero, Corruption::kRefcountRaised,
                                   Corruption::kL2Reserved, Corruption::kL2CopiedFlipped,
                                   Corruption::kL1Reserved, Corruption::kDirtyCorruptBits);
  RC_TAG(static_cast<int>(c));
  TempDir dir;
  std::string img = CorruptImage(dir, c);
  std::string corrupted = dir.File("corrupted.qcow2");
  RC_ASSERT(testing::Run("cp --sparse=always " + img + " " + corrupted) == 0);
  std::string journal = dir.File("j");
  fsck::RepairOutcome o = fsck::Repair(img, {}, fsck::ApplyOptions{.journal_path = journal});
  for (const auto& a : o.plan.actions) RC_LOG() << a.description << "\n";
  RC_ASSERT(!o.refused);
  RC_ASSERT(!o.failed);
  fsck::CheckResult after = fsck::CheckImage(img, {});
  for (const auto& f : after.findings) RC_LOG() << "after: " << f.slug << ": " << f.message << "\n";
  RC_ASSERT(after.corruptions == 0u);
  RC_ASSERT(after.check_errors == 0u);
  // Guest data, as QEMU reads it, is unchanged.
  RC_ASSERT(testing::Run("qemu-img compare -q -f qcow2 -F qcow2 " + corrupted + " " + img) == 0);
  if (o.journal) {
    auto j = fsck::ReadJournal(journal);
    RC_ASSERT(j.has_value());
    int fd = ::open(img.c_str(), O_RDWR);
    auto u = fsck::Undo(fd, *j, false);
    ::close(fd);
    RC_ASSERT(u.has_value());
  }
  RC_ASSERT(testing::ReadFile(img) == testing::ReadFile(corrupted));
}

}  // namespace
}  // namespace imgcheck
