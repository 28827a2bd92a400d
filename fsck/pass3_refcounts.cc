// Pass 3: the refcount structure itself (QEMU's check_refblocks), then the comparison of every
// cluster's on-disk refcount with the references counted by passes 1 and 2 (compare_refcounts),
// the COPIED flags (check_oflag_copied) and the image end offset. Mismatches are reported as
// runs of clusters with the same values, so a large leak is one finding with a count.
#include <fmt/format.h>

#include "fsck/context.h"
#include "qcow2/bytes.h"
#include "qcow2/layout.h"
#include "qcow2/refcount.h"

namespace imgcheck::fsck {

using namespace qcow2;

namespace {

void CheckRefblocks(Context& ctx) {
  for (uint64_t i = 0; i < ctx.reftable.size(); ++i) {
    uint64_t e = ctx.reftable[i];
    uint64_t off = e & kReftOffsetMask;
    if (e & kReftReservedMask) {
      ctx.sink.Report(P::kReftableEntryReservedBits, Fields{.index = i, .value = e});
      continue;
    }
    if (off % ctx.cs) {
      ctx.sink.Report(P::kReftableEntryUnaligned, Fields{.offset = off, .index = i});
      continue;
    }
    if (off == 0) continue;
    uint64_t c = off >> ctx.cluster_bits;
    if (c >= ctx.domain_end) {
      ctx.sink.Report(P::kRefblockBeyondEof, Fields{.offset = off, .cluster = c, .index = i});
      continue;
    }
    ctx.Reference(off, ctx.cs, Owner{Owner::kRefblock, i});
    if (uint64_t n = ctx.refs.Get(c); n != 1) {
      ctx.sink.Report(P::kRefblockRefcountNotOne,
                      Fields{.offset = off, .cluster = c, .index = i, .value = n});
    }
  }
}

// Accumulates consecutive clusters with the same (on-disk, counted) pair into one finding.
class RunReporter {
 public:
  explicit RunReporter(Context& ctx) : ctx_(ctx) {}
  void Add(uint64_t cluster, uint64_t disk, uint64_t counted) {
    if (count_ && cluster == start_ + count_ && disk == disk_ && counted == counted_) {
      ++count_;
      return;
    }
    Flush();
    start_ = cluster;
    disk_ = disk;
    counted_ = counted;
    count_ = 1;
  }
  void Flush() {
    if (!count_) return;
    Fields f{.offset = start_ << ctx_.cluster_bits, .cluster = start_, .count = count_,
             .value = disk_, .expected = counted_};
    if (disk_ > counted_) {
      ctx_.sink.Report(P::kRefcountLeak, f);
    } else {
      if (disk_ == 0) f.detail = ": the clusters are free and may be overwritten by new data";
      ctx_.sink.Report(P::kRefcountTooLow, f);
    }
    count_ = 0;
  }

 private:
  Context& ctx_;
  uint64_t start_ = 0, disk_ = 0, counted_ = 0, count_ = 0;
};

void CompareRefcounts(Context& ctx, uint64_t& highest) {
  const Header& h = ctx.h;
  const uint64_t per_block = h.refblock_entries();
  const uint64_t nb = ctx.domain_end;
  RunReporter runs(ctx);
  std::vector<uint8_t> block;
  for (uint64_t rt = 0; rt * per_block < nb && !ctx.stopped(); ++rt) {
    uint64_t first = rt * per_block;
    uint64_t last = std::min(first + per_block, nb);
    bool have_block = false;
    if (rt < ctx.reftable.size()) {
      uint64_t off = ctx.reftable[rt] & kReftOffsetMask;
      if (off % ctx.cs) {
        ctx.sink.Report(P::kRefcountUnreadable,
                        Fields{.cluster = first, .count = last - first,
                               .detail = fmt::format("refcount block offset 0x{:x} is not "
                                                     "cluster aligned",
                                                     off)});
        continue;
      }
      if (off) {
        auto b = ctx.ReadMetadata(off, ctx.cs, "a refcount block");
        if (!b) return;
        block = std::move(*b);
        have_block = true;
      }
    }
    for (uint64_t c = first; c < last;) {
      uint64_t chunk_end = std::min(last, ((c >> RefMap::kChunkBits) + 1) << RefMap::kChunkBits);
      const uint8_t* chunk = ctx.refs.Chunk(c >> RefMap::kChunkBits);
      if (!chunk && !have_block) {
        c = chunk_end;
        continue;
      }
      for (; c < chunk_end; ++c) {
        uint64_t disk = have_block ? RefcountAt(block, h.refcount_order, c - first) : 0;
        uint8_t byte = chunk ? chunk[c & (RefMap::kChunkSize - 1)] : 0;
        uint64_t counted = ctx.refs.CountOf(c, byte);
        if (disk == 0 && byte == 0) continue;
        if (disk || counted) highest = c;
        if (disk != counted) runs.Add(c, disk, counted);
        bool copied_set = byte & RefMap::kCopiedSet, copied_clear = byte & RefMap::kCopiedClear;
        if ((copied_set && disk != 1) || (copied_clear && disk == 1)) {
          auto it = ctx.meta.find(c);  // an L2 table: the flag is in the L1 entry
          bool l2 = it != ctx.meta.end() && it->second.kind == Owner::kL2;
          ctx.sink.Report(l2 ? P::kL1CopiedMismatch : P::kL2CopiedMismatch,
                          Fields{.offset = c << ctx.cluster_bits, .cluster = c, .value = disk,
                                 .detail = copied_set ? "set" : "clear"});
        }
      }
    }
  }
  runs.Flush();
}

}  // namespace

void Pass3Refcounts(Context& ctx) {
  CheckRefblocks(ctx);
  uint64_t highest = 0;
  CompareRefcounts(ctx, highest);
  ctx.result.image_end_offset = (highest + 1) * ctx.cs;
  if (ctx.file_size > ctx.result.image_end_offset) {
    ctx.sink.Report(P::kImageDataAfterEnd,
                    Fields{.offset = ctx.result.image_end_offset,
                           .value = ctx.file_size,
                           .expected = ctx.file_size - ctx.result.image_end_offset});
  }
}

}  // namespace imgcheck::fsck
