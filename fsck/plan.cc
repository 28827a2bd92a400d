// Repair planning, in stages, each checked on an in-memory overlay of the image:
//   A. entry-level fixes: misaligned preallocated zero entries, COPIED on compressed entries,
//      the snapshot table (garbage entries dropped), the ignored bitmaps extension, and with
//      --allow-data-loss the entries and snapshots that point nowhere;
//   B. re-check the overlay: its reference counts are now the target refcounts;
//   C. refcounts: fixed in place, or rebuilt into new blocks appended past the end of the file
//      when the refcount structure itself is broken (the header is switched last);
//   D. COPIED flags of the active L1/L2 tables, from the new refcounts;
//   E. the dirty bit once refcounts are right, the corrupt bit once the image is clean;
//   F. re-check everything and refuse a plan that would leave the image worse.
// Clusters touched by a reference that stays broken are "tainted": their refcounts and flags
// are left alone (QEMU's repair raises a neighbour's refcount for a misaligned entry).
#include "fsck/plan.h"

#include <fmt/format.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_set>

#include "fsck/chain.h"
#include "fsck/check.h"
#include "qcow2/bytes.h"
#include "qcow2/entries.h"
#include "qcow2/image.h"
#include "qcow2/layout.h"
#include "qcow2/overlay.h"
#include "qcow2/refcount.h"
#include "qcow2/snapshot.h"

namespace imgcheck::fsck {

using namespace qcow2;

namespace {

enum Phase { kAppended, kRefblocks, kTables, kHeader, kPhases };

bool Has(const CheckResult& r, P code) {
  return std::any_of(r.findings.begin(), r.findings.end(),
                     [&](const Finding& f) { return f.code == code; });
}

bool HasAny(const CheckResult& r, std::initializer_list<P> codes) {
  return std::any_of(codes.begin(), codes.end(), [&](P c) { return Has(r, c); });
}

// Slugs whose fix discards guest data.
bool NeedsDataLoss(P code) {
  switch (code) {
    case P::kL2EntryUnalignedData:
    case P::kRefBeyondEof:
    case P::kL1EntryUnaligned:
    case P::kSnapshotL1Unaligned:
    case P::kSnapshotL1TooLarge:
    case P::kL2SubclusterAllocZeroOverlap:
    case P::kL2SubclusterUnallocatedAllocBits:
      return true;
    default:
      return false;
  }
}

class Planner {
 public:
  Planner(const Device& dev, const std::string& name, const RepairOptions& opts, Plan& plan)
      : dev_(dev), name_(name), opts_(opts), plan_(plan), ov_(dev) {}

  void Run();

 private:
  // --- staging ---
  void Stage(Phase phase, uint64_t offset, std::vector<uint8_t> bytes, std::string kind,
             std::string description) {
    ov_.Write(offset, bytes);
    plan_.actions.push_back(PlanAction{std::move(kind), std::move(description), offset});
    writes_[phase].push_back(PlannedWrite{offset, std::move(bytes)});
  }
  void SetHeader64(size_t off, uint64_t v) {
    boost::endian::store_big_u64(&header_[off], v);
    ov_.Write(off, std::span<const uint8_t>(&header_[off], 8));
  }
  void SetHeader32(size_t off, uint32_t v) {
    boost::endian::store_big_u32(&header_[off], v);
    ov_.Write(off, std::span<const uint8_t>(&header_[off], 4));
  }
  void HeaderAction(std::string description) {
    plan_.actions.push_back(PlanAction{"header", std::move(description), 0});
  }

  // --- stage A ---
  void FixEntries(const Checked& c);
  void FixSnapshots();
  void DropIgnoredBitmapsExtension();
  void Rebase(const std::string& path);
  // Rewrites the extension area of cluster 0: drops extensions of the given types, appends the
  // given records, and places a new backing file name after them when one is given.
  void RewriteExtensions(std::initializer_list<uint32_t> drop,
                         std::vector<std::pair<uint32_t, std::string>> add,
                         const std::optional<std::string>& backing);
  std::vector<uint64_t> GuestOffsetsOf(uint64_t l2_table, uint64_t index) const;

  // --- stage C ---
  uint64_t Target(uint64_t cluster);
  bool RefcountsInPlace();
  void RebuildRefcounts();

  // --- stage D ---
  void FixCopied();

  const Device& dev_;
  std::string name_;
  const RepairOptions& opts_;
  Plan& plan_;
  OverlayDevice ov_;
  Header h_;
  uint64_t cs_ = 0;
  std::vector<uint8_t> header_, original_header_;
  std::vector<PlannedWrite> writes_[kPhases];
  std::map<uint64_t, std::vector<uint64_t>> active_l2_;  // L2 table -> active L1 indexes

  std::unique_ptr<Checked> mid_;                 // the overlay after stage A
  std::unordered_set<uint64_t> tainted_;         // clusters whose refcounts stay as they are
  std::optional<std::string> keep_refcounts_up_; // why no refcount may be lowered
  std::map<uint64_t, uint64_t> dropped_refs_;    // rebuild: references of the old structure
  std::set<uint64_t> area_;                      // rebuild: clusters of the new structure
  bool rebuilt_ = false;
};

std::vector<uint64_t> Planner::GuestOffsetsOf(uint64_t l2_table, uint64_t index) const {
  std::vector<uint64_t> out;
  auto it = active_l2_.find(l2_table);
  if (it == active_l2_.end()) return out;
  for (uint64_t l1 : it->second) out.push_back((l1 * h_.l2_entries() + index) * cs_);
  return out;
}

void Planner::FixEntries(const Checked& c) {
  const bool all = opts_.mode == RepairMode::kAll;
  for (const BadRef& b : c.ctx->bad_refs) {
    bool l1 = b.kind == BadRef::kL1Unaligned || b.kind == BadRef::kL1BeyondEof;
    std::vector<uint8_t> entry(h_.extended_l2() && !l1 ? 16 : 8, 0);
    switch (b.kind) {
      case BadRef::kUnalignedPrealloc:
        if (!all) break;
        // A plain zero cluster reads as zeros, as the preallocated one did.
        if (h_.extended_l2()) {
          boost::endian::store_big_u64(&entry[8], 0xffffffff00000000ull);
        } else {
          boost::endian::store_big_u64(&entry[0], kL2Zero);
        }
        Stage(kTables, b.entry_offset, entry, "l2-entry",
              fmt::format("make L2 entry {} of the table at 0x{:x} a plain zero cluster (its "
                          "preallocated offset 0x{:x} is misaligned; it reads as zeros either way)",
                          b.index, b.table, b.entry & kL2OffsetMask));
        break;
      case BadRef::kL1Reserved:
      case BadRef::kL2Reserved: {
        if (!all) break;
        // QEMU masks the reserved bits off when it reads the offset: clearing them leaves the
        // guest's view of the data exactly as it is.
        uint64_t mask = l1 || b.kind == BadRef::kL1Reserved ? kL1ReservedMask : kL2StdReservedMask;
        std::vector<uint8_t> v(8);
        boost::endian::store_big_u64(v.data(), b.entry & ~mask);
        Stage(kTables, b.entry_offset, v, b.kind == BadRef::kL1Reserved ? "l1-entry" : "l2-entry",
              fmt::format("clear reserved bits 0x{:x} of {} entry {} of the table at 0x{:x}",
                          b.entry & mask, b.kind == BadRef::kL1Reserved ? "L1" : "L2", b.index,
                          b.table));
        break;
      }
      case BadRef::kSubclusterConflict: {
        if (!all || !opts_.allow_data_loss) break;
        // Allocated wins over zero where both are set; with no cluster, nothing is allocated.
        uint64_t entry = 0;
        ov_.Read(b.entry_offset - 8, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&entry), 8));
        bool has_cluster = boost::endian::big_to_native(entry) & kL2OffsetMask;
        uint64_t alloc = has_cluster ? b.entry & kSubclusterAllocMask : 0;
        uint64_t zero = (b.entry >> 32) & ~alloc;
        std::vector<uint8_t> v(8);
        boost::endian::store_big_u64(v.data(), (zero << 32) | alloc);
        for (uint64_t g : GuestOffsetsOf(b.table, b.index)) {
          plan_.data_loss.push_back(DataLoss{g, cs_, has_cluster
              ? "subclusters marked both allocated and zero (QEMU returned I/O errors) now read "
                "the stored data"
              : "subclusters marked allocated without a cluster (QEMU returned I/O errors) now "
                "read from the backing file or as zeros"});
        }
        Stage(kTables, b.entry_offset, v, "l2-entry",
              fmt::format("set the subcluster bitmap of L2 entry {} of the table at 0x{:x} from "
                          "0x{:016x} to 0x{:016x}",
                          b.index, b.table, b.entry, (zero << 32) | alloc));
        break;
      }
      case BadRef::kCompressedCopied: {
        if (!all) break;
        std::vector<uint8_t> v(8);
        boost::endian::store_big_u64(v.data(), b.entry & ~kL2Copied);
        Stage(kTables, b.entry_offset, v, "copied",
              fmt::format("clear the COPIED flag of compressed L2 entry {} of the table at 0x{:x}",
                          b.index, b.table));
        break;
      }
      case BadRef::kUnalignedData:
      case BadRef::kBeyondEof:
      case BadRef::kL1Unaligned:
      case BadRef::kL1BeyondEof: {
        if (!all || !opts_.allow_data_loss) {
          // Leave the reference, and every cluster it touches, exactly as they are.
          uint64_t off = l1 ? (b.entry & kL1OffsetMask) : (b.entry & kL2OffsetMask);
          tainted_.insert(off / cs_);
          tainted_.insert(off / cs_ + 1);
          keep_refcounts_up_ = "a broken reference remains, and the leaked clusters may be the "
                               "data it should point at: freeing them would make recovery "
                               "impossible (--allow-data-loss unmaps the reference and frees them)";
          break;
        }
        std::string what = b.kind == BadRef::kUnalignedData || b.kind == BadRef::kL1Unaligned
                               ? "misaligned"
                               : "past the end of the file";
        if (l1) {
          uint64_t span = h_.l2_entries() * cs_;
          plan_.data_loss.push_back(DataLoss{b.index * span, span,
                                             fmt::format("L1 entry {} points at an L2 table {}: "
                                                         "the range becomes unallocated",
                                                         b.index, what)});
          Stage(kTables, b.entry_offset, entry, "l1-entry",
                fmt::format("unmap active L1 entry {} (L2 table 0x{:x} is {})", b.index,
                            b.entry & kL1OffsetMask, what));
        } else {
          for (uint64_t g : GuestOffsetsOf(b.table, b.index)) {
            plan_.data_loss.push_back(DataLoss{g, cs_, fmt::format("its cluster is {}: now reads "
                                                                   "from the backing file or as "
                                                                   "zeros",
                                                                   what)});
          }
          Stage(kTables, b.entry_offset, entry, "l2-entry",
                fmt::format("unmap L2 entry {} of the table at 0x{:x} (data cluster 0x{:x} is {})",
                            b.index, b.table, b.entry & kL2OffsetMask, what));
        }
        break;
      }
    }
  }
}

void Planner::FixSnapshots() {
  if (h_.nb_snapshots == 0) return;
  if (h_.snapshots_offset % cs_) {
    keep_refcounts_up_ = "the snapshot table offset is corrupt: snapshot clusters cannot be "
                         "told from leaks";
    return;
  }
  uint32_t n = std::min(h_.nb_snapshots, kMaxSnapshots);
  auto bytes = ReadSnapshotArea(dev_, h_, n);
  if (!bytes) return;
  SnapshotTable t = ParseSnapshotTable(*bytes, n);
  auto valid = [&](const Snapshot& s) {
    return !s.id.empty() && s.l1_table_offset % cs_ == 0 &&
           uint64_t{s.l1_size} * 8 <= kMaxL1Bytes && s.extra_data_size <= kMaxSnapshotExtraData &&
           (s.l1_size == 0 || s.l1_table_offset + uint64_t{s.l1_size} * 8 <= dev_.Size());
  };
  std::vector<size_t> keep, dropped_real;
  for (size_t i = 0; i < t.snapshots.size(); ++i) {
    if (valid(t.snapshots[i])) {
      keep.push_back(i);
    } else if (!t.snapshots[i].id.empty()) {
      dropped_real.push_back(i);  // a named snapshot whose tables are broken
    }
  }
  bool damaged = keep.size() != t.snapshots.size() || t.truncated || h_.nb_snapshots > n;
  if (!damaged) return;
  if (!dropped_real.empty() && !(opts_.allow_data_loss && opts_.mode == RepairMode::kAll)) {
    keep_refcounts_up_ = "a snapshot's L1 table is broken: its clusters cannot be told from "
                         "leaks, and freeing them would destroy the snapshot";
    return;
  }
  if (opts_.mode != RepairMode::kAll) return;
  for (size_t i : dropped_real) {
    const Snapshot& s = t.snapshots[i];
    plan_.data_loss.push_back(DataLoss{0, s.disk_size.value_or(h_.size),
                                       fmt::format("snapshot '{}' (id {}) is deleted: its L1 "
                                                   "table is broken",
                                                   s.name, s.id)});
  }
  std::vector<uint8_t> table;
  for (size_t i : keep) {
    uint64_t from = t.snapshots[i].entry_offset;
    uint64_t to = i + 1 < t.snapshots.size() ? t.snapshots[i + 1].entry_offset : t.byte_size;
    table.insert(table.end(), bytes->begin() + static_cast<long>(from),
                 bytes->begin() + static_cast<long>(to));
  }
  if (!table.empty()) {
    Stage(kTables, h_.snapshots_offset, table, "snapshot-table",
          fmt::format("rewrite the snapshot table with its {} valid entries", keep.size()));
  }
  SetHeader32(60, static_cast<uint32_t>(keep.size()));
  if (keep.empty()) SetHeader64(64, 0);
  HeaderAction(fmt::format("set nb_snapshots from {} to {}", h_.nb_snapshots, keep.size()));
}

void Planner::RewriteExtensions(std::initializer_list<uint32_t> drop,
                                std::vector<std::pair<uint32_t, std::string>> add,
                                const std::optional<std::string>& backing) {
  uint64_t start = h_.header_length;
  uint64_t end = backing || !h_.backing_file_offset ? cs_ : h_.backing_file_offset;
  std::vector<uint8_t> area;
  auto record = [&](uint32_t type, const uint8_t* data, size_t len) {
    uint8_t rec[8];
    boost::endian::store_big_u32(rec, type);
    boost::endian::store_big_u32(rec + 4, static_cast<uint32_t>(len));
    area.insert(area.end(), rec, rec + 8);
    area.insert(area.end(), data, data + len);
    area.resize((area.size() + 7) & ~size_t{7}, 0);
  };
  // Extensions as they are in the current header (which an earlier rewrite may have changed).
  auto current = ParseHeader(header_);
  for (const Extension& e : current ? current->extensions : h_.extensions) {
    if (std::find(drop.begin(), drop.end(), e.type) != drop.end()) continue;
    record(e.type, &header_[e.offset], e.length);
  }
  for (const auto& [type, data] : add) {
    record(type, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  area.resize(area.size() + 8, 0);  // end-of-extensions marker
  if (backing) {
    uint64_t name_at = start + area.size();
    area.insert(area.end(), backing->begin(), backing->end());
    SetHeader64(8, name_at);
    SetHeader32(16, static_cast<uint32_t>(backing->size()));
  }
  area.resize(end - start, 0);
  std::copy(area.begin(), area.end(), header_.begin() + static_cast<long>(start));
  ov_.Write(start, area);
}

void Planner::DropIgnoredBitmapsExtension() {
  bool ignored = !h_.bitmaps && std::any_of(h_.extensions.begin(), h_.extensions.end(),
                                            [](const Extension& e) { return e.type == kExtBitmaps; });
  if (!ignored) return;
  RewriteExtensions({kExtBitmaps}, {}, std::nullopt);
  HeaderAction("remove the bitmaps extension that QEMU ignores (autoclear bit 0 is clear: "
               "every bitmap in it is inconsistent) so that its clusters can be freed");
}

void Planner::Rebase(const std::string& path) {
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) {
    plan_.refused = fmt::format("new backing file {}: {}", path, std::strerror(errno));
    return;
  }
  auto base = FileDevice::Open(real);
  if (!base) {
    plan_.refused = "new backing file: " + base.error().message;
    return;
  }
  Probe probe = ProbeFormat(**base);
  uint64_t size = (*base)->Size();
  if (probe.format == Format::kQcow2) {
    auto bh = ReadHeader(**base);
    if (!bh || bh->fatal()) {
      plan_.refused = fmt::format("new backing file {} is a qcow2 image QEMU cannot open", real);
      return;
    }
    size = bh->size;
  } else if (probe.format == Format::kRaw) {
    if (auto why = NotDiskData(**base)) {
      plan_.refused = fmt::format("new backing file {} is not a disk image: {}", real, *why);
      return;
    }
  } else {
    plan_.refused = fmt::format("new backing file {} is a {} image; imgcheck rebases onto qcow2 "
                                "or raw bases only",
                                real, probe.name);
    return;
  }
  if (size > h_.size) {
    plan_.refused = fmt::format("new backing file {} has virtual size {}, larger than this "
                                "image's {}: it is not this image's base",
                                real, size, h_.size);
    return;
  }
  if (auto loop = ChainReaches(real, dev_)) {
    plan_.refused = fmt::format("new backing file {} would make a loop: {}", real, *loop);
    return;
  }
  std::string name = real;
  if (name.size() > kMaxBackingNameBytes) {
    plan_.refused = "the new backing file path is longer than 1023 bytes";
    return;
  }
  RewriteExtensions({kExtBackingFormat}, {{kExtBackingFormat, probe.name}}, name);
  if (ParseHeader(header_).value_or(Header{}).backing_file != name) {
    plan_.refused = "the new backing file name does not fit in the header cluster";
    return;
  }
  HeaderAction(fmt::format("set the backing file to {} (format {}, was '{}'{})", name, probe.name,
                           h_.backing_file,
                           h_.backing_format ? " format " + *h_.backing_format : ""));
}

uint64_t Planner::Target(uint64_t c) {
  Context& ctx = *mid_->ctx;
  if (area_.count(c)) return 1;
  uint64_t counted = ctx.refs.Get(c);
  if (auto d = dropped_refs_.find(c); d != dropped_refs_.end()) counted -= std::min(counted, d->second);
  auto disk = ctx.OnDiskRefcount(c);
  if (tainted_.count(c)) return disk && !rebuilt_ ? *disk : std::max(counted, disk.value_or(0));
  uint64_t d = disk.value_or(0);
  if (opts_.mode == RepairMode::kLeaks) return std::min(counted, d);
  if (keep_refcounts_up_) return std::max(counted, d);
  return std::min(counted, h_.refcount_max());
}

bool Planner::RefcountsInPlace() {
  Context& ctx = *mid_->ctx;
  const uint64_t per = h_.refblock_entries();
  const uint64_t nb = ctx.domain_end;
  struct Change {
    uint64_t rt, offset;
    std::vector<uint8_t> block;
    std::vector<std::string> notes;
    size_t count = 0;
  };
  std::vector<Change> changes;
  for (uint64_t rt = 0; rt * per < nb; ++rt) {
    uint64_t first = rt * per, last = std::min(first + per, nb);
    uint64_t off = rt < ctx.reftable.size() ? ctx.reftable[rt] & kReftOffsetMask : 0;
    if (off == 0) {
      for (uint64_t c = first; c < last; ++c) {
        if (Target(c)) return false;  // needs a refcount block that does not exist
      }
      continue;
    }
    std::vector<uint8_t> block(cs_);
    if (!ov_.Read(off, block)) return false;
    Change ch{rt, off, block, {}, 0};
    for (uint64_t c = first; c < last; ++c) {
      uint64_t want = Target(c), have = RefcountAt(block, h_.refcount_order, c - first);
      if (want == have) continue;
      SetRefcountAt(ch.block, h_.refcount_order, c - first, want);
      if (ch.count++ < 4) {
        ch.notes.push_back(fmt::format("cluster {} (0x{:x}) from {} to {}", c, c * cs_, have, want));
      }
    }
    if (ch.count) changes.push_back(std::move(ch));
  }
  for (Change& ch : changes) {
    std::string more = ch.count > ch.notes.size()
                           ? fmt::format(" and {} more", ch.count - ch.notes.size())
                           : "";
    Stage(kRefblocks, ch.offset, std::move(ch.block), "refcount",
          fmt::format("set refcount of {}{}", fmt::join(ch.notes, ", "), more));
  }
  return true;
}

void Planner::RebuildRefcounts() {
  Context& ctx = *mid_->ctx;
  const uint64_t per = h_.refblock_entries();
  // The old structure is dropped: its references go.
  uint64_t rt_clusters = h_.refcount_table_clusters;
  for (uint64_t k = 0; k < rt_clusters; ++k) dropped_refs_[h_.refcount_table_offset / cs_ + k]++;
  for (uint64_t e : ctx.reftable) {
    uint64_t off = e & kReftOffsetMask;
    if ((e & kReftReservedMask) || off % cs_ || off == 0 || off / cs_ >= ctx.domain_end) continue;
    dropped_refs_[off / cs_]++;
  }
  rebuilt_ = true;
  const uint64_t n0 = (ov_.Size() + cs_ - 1) / cs_;  // the new structure goes past the end
  const uint64_t domain = std::max(ctx.domain_end, n0);
  std::set<uint64_t> blocks;  // refcount block indexes that hold a non-zero refcount
  for (uint64_t c = 0; c < domain; ++c) {
    if (blocks.count(c / per)) {
      c = (c / per + 1) * per - 1;
      continue;
    }
    if (Target(c)) blocks.insert(c / per);
  }
  uint64_t added = 0, rb = 0, rt = 0;
  for (;;) {  // the new blocks and table need refcounts too: iterate to a fixed point
    std::set<uint64_t> all = blocks;
    for (uint64_t c = n0; c < n0 + added; ++c) all.insert(c / per);
    uint64_t max_index = all.empty() ? 0 : *all.rbegin();
    rb = all.size();
    rt = ((max_index + 1) * 8 + cs_ - 1) / cs_;
    if (rb + rt == added) {
      blocks = std::move(all);
      break;
    }
    added = rb + rt;
  }
  for (uint64_t c = n0; c < n0 + added; ++c) area_.insert(c);
  std::vector<uint8_t> table(rt * cs_, 0);
  uint64_t at = n0;
  for (uint64_t b : blocks) {
    std::vector<uint8_t> block(cs_, 0);
    for (uint64_t i = 0; i < per; ++i) {
      uint64_t v = Target(b * per + i);
      if (v) SetRefcountAt(block, h_.refcount_order, i, v);
    }
    boost::endian::store_big_u64(&table[b * 8], at * cs_);
    Stage(kAppended, at * cs_, std::move(block), "refcount",
          fmt::format("write new refcount block {} at 0x{:x}", b, at * cs_));
    ++at;
  }
  Stage(kAppended, at * cs_, std::move(table), "refcount",
        fmt::format("write a new refcount table of {} cluster(s) at 0x{:x}", rt, at * cs_));
  SetHeader64(48, at * cs_);
  SetHeader32(56, static_cast<uint32_t>(rt));
  HeaderAction(fmt::format("switch the header to the new refcount table at 0x{:x} (the old "
                           "refcount structure at 0x{:x} is freed)",
                           at * cs_, h_.refcount_table_offset));
}

void Planner::FixCopied() {
  const bool data_file = h_.has_data_file();
  auto l1 = ov_.ReadVec(h_.l1_table_offset, uint64_t{h_.l1_size} * 8);
  if (!l1) return;
  for (uint32_t i = 0; i < h_.l1_size; ++i) {
    uint64_t e = TableU64(*l1, i);
    uint64_t off = e & kL1OffsetMask;
    if (!off || off % cs_ || off >= ov_.Size() || tainted_.count(off / cs_)) continue;
    bool want = Target(off / cs_) == 1;
    if (want != bool(e & kL1Copied)) {
      std::vector<uint8_t> v(8);
      boost::endian::store_big_u64(v.data(), want ? e | kL1Copied : e & ~kL1Copied);
      Stage(kTables, h_.l1_table_offset + i * 8ull, v, "copied",
            fmt::format("{} the COPIED flag of active L1 entry {} (L2 table 0x{:x} will have "
                        "refcount {})",
                        want ? "set" : "clear", i, off, Target(off / cs_)));
    }
  }
  const uint32_t eb = h_.l2_entry_bytes();
  for (const auto& [table_off, l1s] : active_l2_) {
    if (table_off % cs_ || table_off >= ov_.Size() || tainted_.count(table_off / cs_)) continue;
    auto table = ov_.ReadVec(table_off, cs_);
    if (!table) continue;
    size_t changed = 0;
    for (uint64_t i = 0; i < h_.l2_entries(); ++i) {
      uint64_t e = boost::endian::load_big_u64(&(*table)[i * eb]);
      ClusterType t = ClassifyL2(e, h_.extended_l2(), data_file);
      if (t != ClusterType::kNormal && t != ClusterType::kZeroAlloc) continue;
      uint64_t off = e & kL2OffsetMask;
      bool want;
      if (data_file) {
        want = true;
      } else {
        if (off % cs_ || off >= ov_.Size() || tainted_.count(off / cs_)) continue;
        want = Target(off / cs_) == 1;
      }
      if (want == bool(e & kL2Copied)) continue;
      boost::endian::store_big_u64(&(*table)[i * eb], want ? e | kL2Copied : e & ~kL2Copied);
      ++changed;
    }
    if (changed) {
      Stage(kTables, table_off, std::move(*table), "copied",
            fmt::format("correct the COPIED flag of {} entries of the L2 table at 0x{:x}", changed,
                        table_off));
    }
  }
}

void Planner::Run() {
  auto before = RunCheck(dev_, name_, {});
  plan_.before = before->result;
  plan_.original_size = dev_.Size();
  if (before->result.failure) {
    plan_.refused = *before->result.failure;
    return;
  }
  if (!before->result.format_has_checks) {
    plan_.refused = "not a qcow2 image";
    return;
  }
  if (!before->ctx) {
    plan_.refused = "the header is invalid; imgcheck does not rewrite it";
    return;
  }
  h_ = *before->header;
  cs_ = h_.cluster_size();
  auto hdr = dev_.ReadVec(0, cs_);
  if (!hdr) {
    plan_.refused = hdr.error().message;
    return;
  }
  header_ = original_header_ = std::move(*hdr);
  if (auto l1 = dev_.ReadVec(h_.l1_table_offset, uint64_t{h_.l1_size} * 8)) {
    for (uint32_t i = 0; i < h_.l1_size; ++i) {
      if (uint64_t off = TableU64(*l1, i) & kL1OffsetMask) active_l2_[off].push_back(i);
    }
  }
  // A. Entry-level fixes.
  FixEntries(*before);
  FixSnapshots();
  DropIgnoredBitmapsExtension();
  if (opts_.rebase_backing) {
    Rebase(*opts_.rebase_backing);
    if (plan_.refused) return;
  }
  if (HasAny(before->result, {P::kBitmapDirectoryInvalid, P::kBitmapEntryInvalid})) {
    keep_refcounts_up_ = "the bitmap directory is unreadable: bitmap clusters cannot be told "
                         "from leaks";
  }
  // B. The overlay's references are the target refcounts.
  mid_ = RunCheck(ov_, name_, {});
  if (mid_->result.failure || !mid_->ctx || mid_->ctx->stopped()) {
    plan_.refused = "the image cannot be checked completely even after the entry fixes; "
                    "nothing is safe to change";
    return;
  }
  // C. Refcounts.
  bool broken_structure =
      HasAny(mid_->result, {P::kReftableEntryReservedBits, P::kReftableEntryUnaligned,
                            P::kRefblockBeyondEof, P::kRefblockRefcountNotOne,
                            P::kRefcountUnreadable});
  if (broken_structure || !RefcountsInPlace()) {
    if (opts_.mode == RepairMode::kAll) {
      writes_[kRefblocks].clear();
      std::erase_if(plan_.actions, [](const PlanAction& a) { return a.kind == "refcount"; });
      RebuildRefcounts();
    } else {
      plan_.not_repaired.push_back(NotRepaired{"refcount", "the refcount structure is broken",
                                               "a refcount rebuild needs --all"});
    }
  }
  // D. COPIED flags from the new refcounts.
  if (opts_.mode == RepairMode::kAll || !broken_structure) FixCopied();
  // E. Header state bits, decided on the repaired overlay.
  auto after = RunCheck(ov_, name_, {});
  bool refcounts_ok = !HasAny(after->result, {P::kRefcountLeak, P::kRefcountTooLow,
                                              P::kRefcountOverflow, P::kRefcountUnreadable});
  uint64_t incompat = h_.incompatible_features;
  if ((incompat & kIncompatDirty) && refcounts_ok) {
    incompat &= ~kIncompatDirty;
    HeaderAction("clear the dirty bit: the refcounts are verified");
  }
  bool clean = std::none_of(after->result.findings.begin(), after->result.findings.end(),
                            [](const Finding& f) {
                              return f.severity >= Severity::kLeak &&
                                     f.code != P::kHeaderCorruptBit &&
                                     f.code != P::kHeaderDirtyBit;
                            });
  if ((incompat & kIncompatCorrupt) && clean && opts_.mode == RepairMode::kAll) {
    incompat &= ~kIncompatCorrupt;
    HeaderAction("clear the corrupt bit: the repaired image checks clean");
  }
  if (incompat != h_.incompatible_features) SetHeader64(72, incompat);
  // The header is written last, as one write of the bytes that changed.
  auto diff = std::mismatch(header_.begin(), header_.end(), original_header_.begin());
  if (diff.first != header_.end()) {
    auto last = std::mismatch(header_.rbegin(), header_.rend(), original_header_.rbegin());
    uint64_t from = static_cast<uint64_t>(diff.first - header_.begin());
    uint64_t to = header_.size() - static_cast<uint64_t>(last.first - header_.rbegin());
    writes_[kHeader].push_back(PlannedWrite{
        from, std::vector<uint8_t>(header_.begin() + static_cast<long>(from),
                                   header_.begin() + static_cast<long>(to))});
  }
  // F. The repaired image, checked in memory, must not be worse.
  auto final_check = RunCheck(ov_, name_, {});
  plan_.expected = final_check->result;
  plan_.final_size = ov_.Size();
  std::set<P> had;
  for (const Finding& f : plan_.before.findings) had.insert(f.code);
  std::vector<std::string> worse;
  for (const Finding& f : plan_.expected.findings) {
    if (f.severity == Severity::kError && !had.count(f.code)) worse.push_back(f.message);
  }
  const CheckResult& b = plan_.before;
  const CheckResult& e = plan_.expected;
  if (e.corruptions > b.corruptions || e.leaks > b.leaks || e.check_errors > b.check_errors ||
      !worse.empty()) {
    plan_.refused = fmt::format("the planned repair would not improve the image ({} errors and "
                                "{} leaks before, {} and {} after{}{}); nothing was written",
                                b.corruptions, b.leaks, e.corruptions, e.leaks,
                                worse.empty() ? "" : ": ", worse.empty() ? "" : worse.front());
    return;
  }
  for (const Finding& f : plan_.expected.findings) {
    if (f.severity < Severity::kLeak) continue;
    std::string reason;
    if (NeedsDataLoss(f.code) && !opts_.allow_data_loss) {
      reason = "the fix discards guest data: needs --allow-data-loss";
    } else if (opts_.mode == RepairMode::kLeaks && f.severity == Severity::kError) {
      reason = "needs --all";
    } else if (keep_refcounts_up_ && f.code == P::kRefcountLeak) {
      reason = *keep_refcounts_up_;
    } else if (tainted_.count(f.cluster.value_or(~0ull))) {
      reason = "left as it is: a broken reference points at this cluster";
    } else {
      reason = "no automatic fix: " + std::string(Def(f.code).fix);
    }
    plan_.not_repaired.push_back(NotRepaired{f.slug, f.message, std::move(reason)});
  }
  // Disjoint writes holding the final bytes, so every region is either old, new or torn by a
  // crash: never a mix of two planned versions. A merged range goes with its latest phase.
  struct Range {
    uint64_t from, to;
    int phase;
  };
  std::vector<Range> ranges;
  for (int p = 0; p < kPhases; ++p) {
    for (const PlannedWrite& w : writes_[p]) ranges.push_back({w.offset, w.offset + w.bytes.size(), p});
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.from < b.from; });
  std::vector<Range> merged;
  for (const Range& r : ranges) {
    if (!merged.empty() && r.from <= merged.back().to) {
      merged.back().to = std::max(merged.back().to, r.to);
      merged.back().phase = std::max(merged.back().phase, r.phase);
    } else {
      merged.push_back(r);
    }
  }
  std::stable_sort(merged.begin(), merged.end(),
                   [](const Range& a, const Range& b) { return a.phase < b.phase; });
  for (const Range& r : merged) {
    auto bytes = ov_.ReadVec(r.from, r.to - r.from);
    if (!bytes) {
      plan_.refused = bytes.error().message;
      return;
    }
    plan_.writes.push_back(PlannedWrite{r.from, std::move(*bytes)});
  }
}

}  // namespace

Plan PlanRepair(const Device& dev, const std::string& name, const RepairOptions& opts) {
  Plan plan;
  Planner(dev, name, opts, plan).Run();
  return plan;
}

}  // namespace imgcheck::fsck
