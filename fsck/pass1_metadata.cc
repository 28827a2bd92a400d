// Pass 1: everything referenced from the header except L2 contents. Counts the header cluster,
// the refcount table, the active and snapshot L1 tables, the snapshot table, the encryption
// header and the bitmaps (directory, tables, data), checks their entries, and records how often
// each L2 table is referenced (pass 2 walks each one once, with that multiplicity).
// Deliberately not checked: the contents of bitmap data clusters and of the VM state.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "fsck/context.h"
#include "qcow2/bitmap.h"
#include "qcow2/bytes.h"
#include "qcow2/layout.h"
#include "qcow2/snapshot.h"

namespace imgcheck::fsck {

using namespace qcow2;

namespace {

// One L1 table, referenced `uses` times (snapshots may share one). Counts the table, checks each
// entry and records its L2 table.
void ReadL1(Context& ctx, uint64_t offset, uint32_t size, const Owner& owner, uint64_t uses) {
  uint64_t bytes = uint64_t{size} * 8;
  ctx.Reference(offset, bytes, owner, uses);
  if (size == 0) return;
  auto table = ctx.ReadMetadata(offset, bytes, "an L1 table");
  if (!table) return;
  bool active = owner.kind == Owner::kActiveL1;
  std::string who = active ? "active" : fmt::format("snapshot {}", owner.index);
  for (uint32_t i = 0; i < size; ++i) {
    uint64_t e = TableU64(*table, i);
    if (e == 0) continue;
    if (e & kL1ReservedMask) {
      ctx.sink.Report(P::kL1EntryReservedBits,
                      Fields{.offset = offset + i * 8ull, .index = i, .value = e, .owner = who});
      ctx.bad_refs.push_back(BadRef{BadRef::kL1Reserved, offset + i * 8ull, e, offset, i});
    }
    uint64_t l2 = e & kL1OffsetMask;
    if (l2 == 0) continue;  // only flag bits set: nothing to walk (QEMU would read cluster 0)
    ctx.Reference(l2, ctx.cs, Owner{Owner::kL2}, uses);
    if (active && (l2 % ctx.cs || l2 >= ctx.file_size)) {
      ctx.bad_refs.push_back(BadRef{l2 % ctx.cs ? BadRef::kL1Unaligned : BadRef::kL1BeyondEof,
                                    offset + i * 8ull, e, offset, i});
    }
    if (l2 % ctx.cs) {
      ctx.sink.Report(P::kL1EntryUnaligned, Fields{.offset = l2, .cluster = l2 >> ctx.cluster_bits,
                                                   .index = i, .owner = who});
    }
    L2Use& u = ctx.l2_uses[l2];
    u.total += uses;
    if (active) {
      u.active += 1;
      ctx.RecordCopied(l2, e & kL1Copied);
    }
  }
}

void ReadReftable(Context& ctx) {
  const Header& h = ctx.h;
  uint64_t entries = h.reftable_entries();
  ctx.Reference(h.refcount_table_offset, entries * 8, Owner{Owner::kReftable});
  if (entries == 0) return;
  auto table = ctx.ReadMetadata(h.refcount_table_offset, entries * 8, "the refcount table");
  if (!table) return;
  ctx.reftable.resize(entries);
  for (uint64_t i = 0; i < entries; ++i) ctx.reftable[i] = TableU64(*table, i);
}

void CheckSnapshots(Context& ctx) {
  const Header& h = ctx.h;
  if (h.nb_snapshots == 0) return;
  if (h.nb_snapshots > kMaxSnapshots) {
    ctx.sink.Report(P::kSnapshotTableTooLarge,
                    Fields{.offset = h.snapshots_offset,
                           .detail = fmt::format("the header claims {} snapshots; QEMU handles "
                                                 "at most {}",
                                                 h.nb_snapshots, kMaxSnapshots)});
    ctx.Halt();
    return;
  }
  if (h.snapshots_offset % ctx.cs) {
    ctx.sink.Report(P::kSnapshotTableUnaligned, Fields{.offset = h.snapshots_offset});
    ctx.Halt();
    return;
  }
  // The table is at most 64 MiB (QEMU's limit); read that much plus one maximal entry.
  const uint64_t max_entry = kMaxSnapshotEntryBytes;
  uint64_t want = std::min<uint64_t>(kMaxSnapshotTableBytes + max_entry,
                                     uint64_t{h.nb_snapshots} * max_entry);
  if (h.snapshots_offset < ctx.file_size) {
    want = std::min(want, ctx.file_size - h.snapshots_offset + max_entry);
  } else {
    want = std::min<uint64_t>(want, uint64_t{h.nb_snapshots} * (kSnapshotHeaderBytes + 24));
  }
  auto bytes = ctx.ReadMetadata(h.snapshots_offset, want, "the snapshot table");
  if (!bytes) return;
  SnapshotTable t = ParseSnapshotTable(*bytes, h.nb_snapshots);
  if (t.byte_size > kMaxSnapshotTableBytes) {
    ctx.sink.Report(P::kSnapshotTableTooLarge,
                    Fields{.offset = h.snapshots_offset,
                           .detail = fmt::format("the snapshot table is {} bytes; QEMU allows {}",
                                                 t.byte_size, kMaxSnapshotTableBytes)});
    ctx.Halt();
    return;
  }
  if (t.truncated) {
    ctx.sink.Report(P::kSnapshotEntryTruncated, Fields{.offset = h.snapshots_offset,
                                                       .detail = *t.truncated});
    ctx.Halt();
    return;
  }
  if (h.has_data_file()) {
    ctx.sink.Report(P::kSnapshotWithDataFile, Fields{.count = h.nb_snapshots});
  }
  std::map<std::string, size_t> ids, names;
  std::map<std::pair<uint64_t, uint32_t>, std::vector<size_t>> l1s;  // shared L1 tables
  for (size_t i = 0; i < t.snapshots.size(); ++i) {
    const Snapshot& s = t.snapshots[i];
    Fields f{.offset = h.snapshots_offset + s.entry_offset, .index = i, .name = s.id};
    if (s.extra_data_size > kMaxSnapshotExtraData) {
      f.value = s.extra_data_size;
      ctx.sink.Report(P::kSnapshotExtraDataTooLarge, f);
    } else if (h.version >= 3 && s.extra_data_size < 16) {
      f.value = s.extra_data_size;
      ctx.sink.Report(P::kSnapshotExtraDataTooSmall, f);
    }
    if (auto [it, fresh] = ids.emplace(s.id, i); !fresh) {
      ctx.sink.Report(P::kSnapshotDuplicateId,
                      Fields{.index = i, .expected = it->second, .name = s.id});
    }
    if (auto [it, fresh] = names.emplace(s.name, i); !fresh) {
      ctx.sink.Report(P::kSnapshotDuplicateName,
                      Fields{.index = i, .expected = it->second, .name = s.name});
    }
    if (s.l1_table_offset % ctx.cs) {
      f.offset = s.l1_table_offset;
      ctx.sink.Report(P::kSnapshotL1Unaligned, f);
      continue;
    }
    if (uint64_t{s.l1_size} * 8 > kMaxL1Bytes) {
      f.value = s.l1_size;
      ctx.sink.Report(P::kSnapshotL1TooLarge, f);
      continue;
    }
    uint64_t span = ctx.cs * h.l2_entries();
    if (s.disk_size && *s.disk_size > uint64_t{s.l1_size} * span) {
      ctx.sink.Report(P::kSnapshotDiskSizeMismatch, Fields{.index = i, .value = *s.disk_size,
                                                           .expected = s.l1_size, .name = s.id});
    }
    l1s[{s.l1_table_offset, s.l1_size}].push_back(i);
  }
  for (const auto& [key, users] : l1s) {
    ReadL1(ctx, key.first, key.second, Owner{Owner::kSnapshotL1, users.front()}, users.size());
  }
  ctx.Reference(h.snapshots_offset, t.byte_size, Owner{Owner::kSnapshotTable});
}

// QEMU's check_dir_entry, plus name uniqueness. Returns the reason an entry is unusable.
std::optional<std::string> BadBitmapEntry(const Context& ctx, const BitmapEntry& b) {
  if (b.table_size == 0) return "its bitmap table is empty";
  if (b.table_offset == 0 || b.table_offset % ctx.cs) {
    return fmt::format("bitmap table offset 0x{:x} is not a cluster-aligned offset",
                       b.table_offset);
  }
  if (b.table_size > kMaxBitmapTableEntries) {
    return fmt::format("bitmap table size {} is too large", b.table_size);
  }
  if (b.granularity_bits < kMinBitmapGranularityBits ||
      b.granularity_bits > kMaxBitmapGranularityBits) {
    return fmt::format("granularity 2^{} is outside 2^9..2^31", b.granularity_bits);
  }
  if (b.flags & kBmeReservedFlags) return fmt::format("reserved flags 0x{:x} set", b.flags);
  if (b.type != kBitmapTypeDirty) return fmt::format("unknown bitmap type {}", b.type);
  if (b.name_size == 0 || b.name_size > kMaxBitmapNameBytes) {
    return fmt::format("name length {} is outside 1..1023", b.name_size);
  }
  if (b.extra_data_size && !(b.flags & kBmeFlagExtraDataCompatible)) {
    return fmt::format("{} bytes of extra data it cannot be read without", b.extra_data_size);
  }
  // Bytes of bitmap needed for the virtual size, in whole clusters.
  uint64_t bits = (ctx.h.size >> b.granularity_bits) +
                  ((ctx.h.size & ((1ull << b.granularity_bits) - 1)) != 0);
  uint64_t clusters = ((bits + 7) / 8 + ctx.cs - 1) / ctx.cs;
  if (b.table_size > clusters) {
    return fmt::format("bitmap table has {} entries; the disk needs {}", b.table_size, clusters);
  }
  if (!(b.flags & kBmeFlagInUse) && b.table_size < clusters) {
    return fmt::format("bitmap table has {} entries, too few for the disk ({})", b.table_size,
                       clusters);
  }
  return std::nullopt;
}

void CheckBitmaps(Context& ctx) {
  if (!ctx.h.bitmaps) return;
  const BitmapsExtension& ext = *ctx.h.bitmaps;
  ctx.Reference(ext.directory_offset, ext.directory_size, Owner{Owner::kBitmapDirectory});
  auto dir = ctx.ReadMetadata(ext.directory_offset, ext.directory_size, "the bitmap directory");
  if (!dir) return;
  BitmapDirectory d = ParseBitmapDirectory(*dir, ext.nb_bitmaps);
  if (d.broken) {
    ctx.sink.Report(P::kBitmapDirectoryInvalid,
                    Fields{.offset = ext.directory_offset, .detail = *d.broken});
    return;
  }
  std::set<std::string> names;
  for (const BitmapEntry& b : d.entries) {
    if (auto why = BadBitmapEntry(ctx, b)) {
      ctx.sink.Report(P::kBitmapEntryInvalid,
                      Fields{.offset = ext.directory_offset + b.entry_offset, .name = b.name,
                             .detail = *why});
      return;  // QEMU rejects the whole directory
    }
    if (!names.insert(b.name).second) {
      ctx.sink.Report(P::kBitmapNameDuplicate, Fields{.name = b.name});
    }
  }
  for (size_t n = 0; n < d.entries.size(); ++n) {
    const BitmapEntry& b = d.entries[n];
    if (b.flags & kBmeFlagInUse) ctx.sink.Report(P::kBitmapInUse, Fields{.name = b.name});
    uint64_t bytes = uint64_t{b.table_size} * 8;
    ctx.Reference(b.table_offset, bytes, Owner{Owner::kBitmapTable, n});
    auto table = ctx.ReadMetadata(b.table_offset, bytes, "a bitmap table");
    if (!table) return;
    for (uint32_t i = 0; i < b.table_size; ++i) {
      uint64_t e = TableU64(*table, i);
      uint64_t off = e & kBmeOffsetMask;
      const char* why = nullptr;
      if (e & kBmeReservedMask) {
        why = ": reserved bits set";
      } else if (off && (e & kBmeAllOnes)) {
        why = ": 'all ones' flag set with a data cluster";
      } else if (off % ctx.cs) {
        why = ": data cluster offset not cluster aligned";
      }
      if (why) {
        ctx.sink.Report(P::kBitmapTableEntryInvalid,
                        Fields{.offset = b.table_offset + i * 8ull, .index = i, .value = e,
                               .name = b.name, .detail = why});
        continue;
      }
      if (off) ctx.Reference(off, ctx.cs, Owner{Owner::kBitmapData, n});
    }
  }
}

}  // namespace

void Pass1Metadata(Context& ctx) {
  const Header& h = ctx.h;
  ctx.Reference(0, ctx.cs, Owner{Owner::kHeader});
  ReadReftable(ctx);
  ReadL1(ctx, h.l1_table_offset, h.l1_size, Owner{Owner::kActiveL1}, 1);
  CheckSnapshots(ctx);
  if (ctx.stopped()) return;
  if (h.crypto) ctx.Reference(h.crypto->offset, h.crypto->length, Owner{Owner::kCryptoHeader});
  CheckBitmaps(ctx);
}

}  // namespace imgcheck::fsck
