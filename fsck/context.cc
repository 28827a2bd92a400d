#include "fsck/context.h"

#include <fmt/format.h>

#include "qcow2/bytes.h"
#include "qcow2/layout.h"
#include "qcow2/refcount.h"

namespace imgcheck::fsck {

using namespace qcow2;

std::string OwnerName(const Owner& o) {
  switch (o.kind) {
    case Owner::kHeader: return "the header";
    case Owner::kActiveL1: return "the active L1 table";
    case Owner::kSnapshotL1: return fmt::format("the L1 table of snapshot {}", o.index);
    case Owner::kL2: return "an L2 table";
    case Owner::kReftable: return "the refcount table";
    case Owner::kRefblock: return fmt::format("refcount block {}", o.index);
    case Owner::kSnapshotTable: return "the snapshot table";
    case Owner::kBitmapDirectory: return "the bitmap directory";
    case Owner::kBitmapTable: return fmt::format("the table of bitmap {}", o.index);
    case Owner::kBitmapData: return fmt::format("a data cluster of bitmap {}", o.index);
    case Owner::kCryptoHeader: return "the encryption header";
    case Owner::kData: return "a guest data cluster";
    case Owner::kCompressed: return "a compressed guest cluster";
  }
  return "?";
}

Context::Context(const Device& d, const Header& hdr, CheckResult& r, Sink& s, CheckOptions o)
    : dev(d), h(hdr), result(r), sink(s), opts(o), cs(hdr.cluster_size()),
      cluster_bits(hdr.cluster_bits), file_size(d.Size()),
      file_clusters((d.Size() + hdr.cluster_size() - 1) >> hdr.cluster_bits),
      domain_end(file_clusters), budget_(2 * d.Size() + (256ull << 20)) {}

void Context::Stop(const std::string& why) {
  if (stopped_) return;
  stopped_ = true;
  sink.Report(P::kMetadataLimit, Fields{.detail = why});
}

std::optional<std::vector<uint8_t>> Context::ReadMetadata(uint64_t offset, uint64_t length,
                                                          const char* what) {
  if (stopped_) return std::nullopt;
  if (length > budget_) {
    Stop(fmt::format("metadata to read ({}) exceeds what a {}-byte file can hold; the check "
                     "stopped early",
                     what, file_size));
    return std::nullopt;
  }
  budget_ -= length;
  std::vector<uint8_t> buf(length);
  if (offset < file_size) {  // past EOF reads as zeros without I/O
    if (auto r = dev.Read(offset, buf); !r) {
      result.failure = r.error().message;
      stopped_ = true;
      return std::nullopt;
    }
  }
  return buf;
}

void Context::Reference(uint64_t offset, uint64_t size, const Owner& owner, uint64_t by) {
  if (size == 0 || by == 0) return;
  auto end = CheckedAdd(offset, size);
  if (!end || *end >= file_size + cs) {
    sink.Report(P::kRefBeyondEof, Fields{.offset = offset,
                                         .cluster = offset >> cluster_bits,
                                         .value = size,
                                         .expected = file_size,
                                         .owner = OwnerName(owner)});
    return;
  }
  bool is_meta = owner.kind != Owner::kData && owner.kind != Owner::kCompressed;
  uint64_t max = h.refcount_max();
  for (uint64_t c = offset >> cluster_bits; c <= (*end - 1) >> cluster_bits; ++c) {
    if (c >= domain_end) domain_end = c + 1;
    uint64_t before = refs.Add(c, by, max);
    if (max - before < by) {
      sink.Report(P::kRefcountOverflow, Fields{.offset = c << cluster_bits, .cluster = c,
                                               .value = max});
    }
    if (before == 0 && !is_meta) continue;  // the common case: first use of a data cluster
    auto it = meta.find(c);
    if (it == meta.end()) {
      if (is_meta) {
        meta.emplace(c, owner);
        if (before > 0) {
          sink.Report(P::kOverlapMetadata, Fields{.offset = c << cluster_bits, .cluster = c,
                                                  .owner = OwnerName(owner),
                                                  .other = "guest data"});
        }
      }
      continue;
    }
    const Owner& first = it->second;
    bool shareable = first.kind == owner.kind && owner.kind == Owner::kL2;
    if (!shareable) {
      sink.Report(P::kOverlapMetadata, Fields{.offset = c << cluster_bits, .cluster = c,
                                              .owner = OwnerName(first),
                                              .other = OwnerName(owner)});
    }
  }
}

void Context::RecordCopied(uint64_t offset, bool copied) {
  uint64_t c = offset >> cluster_bits;
  if (c < domain_end) {  // the compare pass reads its refcount anyway
    refs.Flag(c, copied ? RefMap::kCopiedSet : RefMap::kCopiedClear);
    return;
  }
  // Past the end of the file: look the refcount up now (QEMU reads 0 there, usually).
  if (auto r = OnDiskRefcount(c); r && (*r == 1) != copied) {
    auto it = meta.find(c);
    bool l2 = it != meta.end() && it->second.kind == Owner::kL2;
    sink.Report(l2 ? P::kL1CopiedMismatch : P::kL2CopiedMismatch,
                Fields{.offset = offset, .cluster = c, .value = *r,
                       .detail = copied ? "set" : "clear"});
  }
}

std::optional<uint64_t> Context::OnDiskRefcount(uint64_t cluster) {
  uint64_t per_block = h.refblock_entries();
  uint64_t rt = cluster / per_block;
  if (rt >= reftable.size()) return 0;
  uint64_t off = reftable[rt] & kReftOffsetMask;
  if (off == 0) return 0;
  if (off % cs) return std::nullopt;
  if (rt != cached_rt_index_) {
    auto block = ReadMetadata(off, cs, "a refcount block");  // budgeted: no thrashing
    if (!block) return std::nullopt;
    cached_block_ = std::move(*block);
    cached_rt_index_ = rt;
  }
  return RefcountAt(cached_block_, h.refcount_order, cluster % per_block);
}

}  // namespace imgcheck::fsck
