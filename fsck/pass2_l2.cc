// Pass 2: every distinct L2 table, read once in file order (adjacent tables in one read), its
// entries checked as QEMU's check_refcounts_l2 does and its clusters counted once per L1 entry
// that references the table. Fragmentation statistics come from the active L1's tables.
// COPIED flags of active entries are recorded in the reference map for pass 3.
#include <fmt/format.h>

#include <algorithm>

#include "fsck/context.h"
#include "qcow2/bytes.h"
#include "qcow2/compress.h"
#include "qcow2/entries.h"
#include "qcow2/layout.h"

namespace imgcheck::fsck {

using namespace qcow2;

namespace {

constexpr uint64_t kMaxRunBytes = 4ull << 20;  // one read covers at most this many table bytes

struct TableStats {
  uint64_t allocated = 0, fragmented = 0, compressed = 0;
};

// --deep: the compressed payload must inflate to a whole cluster (qemu-img check never looks).
void VerifyData(Context& ctx, const CompressedRange& r) {
  if (r.offset >= ctx.file_size || r.length > 2 * ctx.cs) return;  // reported elsewhere
  std::vector<uint8_t> stored(r.length);
  if (!ctx.dev.Read(r.offset, stored)) return;
  if (auto why = VerifyCompressed(stored, ctx.h.compression_type, ctx.cs)) {
    ctx.sink.Report(P::kL2CompressedBadData, Fields{.offset = r.offset,
                                                     .cluster = r.offset >> ctx.cluster_bits,
                                                     .value = r.length, .detail = *why});
  }
}

void WalkTable(Context& ctx, uint64_t l2_offset, ByteView table, const L2Use& use) {
  const Header& h = ctx.h;
  const bool ext = h.extended_l2();
  const bool data_file = h.has_data_file();
  const uint32_t eb = h.l2_entry_bytes();
  const uint64_t n = h.l2_entries();
  TableStats st;
  uint64_t next_contiguous = 0;
  uint64_t reserved = 0, first_reserved = 0, first_reserved_value = 0;
  auto at = [&](uint64_t i) { return Fields{.offset = l2_offset, .index = i}; };
  auto bad = [&](BadRef::Kind k, uint64_t i, uint64_t e) {
    ctx.bad_refs.push_back(BadRef{k, l2_offset + i * eb, e, l2_offset, i});
  };

  for (uint64_t i = 0; i < n; ++i) {
    uint64_t e = boost::endian::load_big_u64(&table[i * eb]);
    uint64_t bitmap = ext ? boost::endian::load_big_u64(&table[i * eb + 8]) : 0;
    if (e == 0 && bitmap == 0) continue;
    ClusterType type = ClassifyL2(e, ext, data_file);
    if (type != ClusterType::kCompressed && (e & kL2StdReservedMask)) {
      bad(BadRef::kL2Reserved, i, e);
      if (reserved++ == 0) {
        first_reserved = i;
        first_reserved_value = e;
      }
    }
    switch (type) {
      case ClusterType::kCompressed: {
        if (e & kL2Copied) {
          ctx.sink.Report(P::kL2CompressedCopied, at(i));
          bad(BadRef::kCompressedCopied, i, e);
          e &= ~kL2Copied;
        }
        if (data_file) {
          ctx.sink.Report(P::kL2CompressedWithDataFile, at(i));
          break;
        }
        if (bitmap) {
          Fields f = at(i);
          f.value = bitmap;
          ctx.sink.Report(P::kL2CompressedSubclusterBitmap, f);
          break;
        }
        CompressedRange r = ParseCompressed(e, h.cluster_bits);
        if (r.offset + r.length >= ctx.file_size + ctx.cs) bad(BadRef::kBeyondEof, i, e);
        ctx.Reference(r.offset, r.length, Owner{Owner::kCompressed}, use.total);
        if (ctx.opts.deep) VerifyData(ctx, r);
        st.allocated++;
        st.compressed++;
        st.fragmented++;
        break;
      }
      case ClusterType::kZeroAlloc:
      case ClusterType::kNormal: {
        uint64_t off = e & kL2OffsetMask;
        if ((bitmap >> 32) & bitmap) {
          Fields f = at(i);
          f.value = bitmap;
          ctx.sink.Report(P::kL2SubclusterAllocZeroOverlap, f);
          ctx.bad_refs.push_back(BadRef{BadRef::kSubclusterConflict, l2_offset + i * eb + 8,
                                        bitmap, l2_offset, i});
        }
        if (off % ctx.cs) {
          bool has_data = ext ? (bitmap & kSubclusterAllocMask) : !(e & kL2Zero);
          Fields f = at(i);
          f.value = off;
          f.detail = fmt::format(" (the range covers clusters {} and {})", off >> ctx.cluster_bits,
                                 (off >> ctx.cluster_bits) + 1);
          ctx.sink.Report(has_data ? P::kL2EntryUnalignedData : P::kL2EntryUnalignedPrealloc, f);
          bad(has_data ? BadRef::kUnalignedData : BadRef::kUnalignedPrealloc, i, e);
        } else if (off >= ctx.file_size && !data_file) {
          bad(BadRef::kBeyondEof, i, e);
        }
        st.allocated++;
        if (next_contiguous && off != next_contiguous) st.fragmented++;
        next_contiguous = off + ctx.cs;
        if (data_file) {
          ctx.result.data_file_end = std::max(ctx.result.data_file_end, off + ctx.cs);
          // Data clusters live in the data file and are not refcounted; COPIED must be set.
          if (use.active && !(e & kL2Copied)) {
            ctx.sink.Report(P::kL2CopiedMismatch,
                            Fields{.offset = l2_offset + i * eb, .cluster = off >> ctx.cluster_bits,
                                   .value = 1, .detail = "clear (data file clusters have "
                                                         "refcount 1)"});
          }
          break;
        }
        ctx.Reference(off, ctx.cs, Owner{Owner::kData}, use.total);
        if (use.active) ctx.RecordCopied(off, e & kL2Copied);
        break;
      }
      case ClusterType::kZeroPlain:
        break;
      case ClusterType::kUnallocated:
        if (ext && (bitmap & kSubclusterAllocMask)) {
          Fields f = at(i);
          f.value = bitmap & kSubclusterAllocMask;
          ctx.sink.Report(P::kL2SubclusterUnallocatedAllocBits, f);
          ctx.bad_refs.push_back(BadRef{BadRef::kSubclusterConflict, l2_offset + i * eb + 8,
                                        bitmap, l2_offset, i});
        }
        break;
    }
  }
  if (reserved) {
    ctx.sink.Report(P::kL2EntryReservedBits,
                    Fields{.offset = l2_offset, .count = reserved, .index = first_reserved,
                           .value = first_reserved_value});
  }
  ctx.result.allocated_clusters += st.allocated * use.active;
  ctx.result.fragmented_clusters += st.fragmented * use.active;
  ctx.result.compressed_clusters += st.compressed * use.active;
}

}  // namespace

void Pass2L2Tables(Context& ctx) {
  const uint64_t table_bytes = ctx.cs;  // an L2 table is one cluster
  auto it = ctx.l2_uses.begin();
  while (it != ctx.l2_uses.end() && !ctx.stopped()) {
    uint64_t start = it->first;
    if (start >= ctx.file_size) break;  // tables past EOF read as zeros: nothing to count
    // Gather adjacent tables into one read.
    auto end = std::next(it);
    uint64_t run = table_bytes;
    while (end != ctx.l2_uses.end() && end->first == start + run && run < kMaxRunBytes) {
      run += table_bytes;
      ++end;
    }
    auto bytes = ctx.ReadMetadata(start, run, "L2 tables");
    if (!bytes) return;
    for (auto t = it; t != end; ++t) {
      WalkTable(ctx, t->first, ByteView(*bytes).subspan(t->first - start, table_bytes),
                t->second);
    }
    it = end;
  }
}

}  // namespace imgcheck::fsck
