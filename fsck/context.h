// State shared by the passes of one check: the image, the sink, the reference map, the owner
// of every metadata cluster (to name both sides of an overlap) and the L2 tables still to walk.
// What is deliberately not here: any notion of repair mode. No pass reads the mode.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "fsck/refmap.h"
#include "fsck/report.h"
#include "qcow2/device.h"
#include "qcow2/header.h"

namespace imgcheck::fsck {

struct Owner {
  enum Kind : uint8_t {
    kHeader, kActiveL1, kSnapshotL1, kL2, kReftable, kRefblock, kSnapshotTable, kBitmapDirectory,
    kBitmapTable, kBitmapData, kCryptoHeader, kData, kCompressed,
  };
  Kind kind;
  uint64_t index = 0;  // snapshot, refblock or bitmap number where it matters
};
std::string OwnerName(const Owner& o);

struct CheckOptions {
  bool deep = false;  // decompress every compressed cluster
};

// A format declared for an image (--format, or a libvirt domain's <driver type>): used as
// declared, never probed, as QEMU uses it. A file that is not what was declared is a finding
// that says what it really is.
struct DeclaredFormat {
  std::string name;        // "qcow2", "raw", ...
  bool by_domain = false;  // declared by a libvirt domain (the VM will boot it this way)
};

// A reference that a repair cannot keep as it is, recorded for the planner.
struct BadRef {
  enum Kind : uint8_t {
    kUnalignedData,      // L2 entry: misaligned data cluster (guest data lost)
    kUnalignedPrealloc,  // L2 entry: misaligned preallocated zero cluster (reads zero anyway)
    kBeyondEof,          // L2 entry: data or compressed cluster a cluster or more past EOF
    kCompressedCopied,   // L2 entry: compressed with COPIED set
    kL1Unaligned,        // active L1 entry: misaligned L2 table
    kL1BeyondEof,        // active L1 entry: L2 table past EOF
    kL1Reserved,         // L1 entry (any L1 table): reserved bits set
    kL2Reserved,         // L2 entry: reserved bits set (QEMU masks them: data is unaffected)
    kSubclusterConflict, // extended L2: subclusters allocated and zero, or allocated with no
                         // cluster (QEMU returns I/O errors for them); `entry` is the bitmap
  };
  Kind kind;
  uint64_t entry_offset;  // file offset of the entry
  uint64_t entry;         // its raw value (first u64)
  uint64_t table;         // the L2 table (L2 entries) or the L1 table (L1 entries)
  uint64_t index;         // entry index in that table
};

// How often an L2 table is referenced: by all L1 tables, and by the active one.
struct L2Use {
  uint64_t total = 0;
  uint64_t active = 0;
};

class Context {
 public:
  Context(const qcow2::Device& dev, const qcow2::Header& h, CheckResult& result, Sink& sink,
          CheckOptions opts);

  // QEMU's qcow2_inc_refcounts_imrt: counts every cluster of [offset, offset+size) `by` times,
  // unless the range reaches a cluster or more past EOF (then one ref.beyond-eof finding).
  void Reference(uint64_t offset, uint64_t size, const Owner& owner, uint64_t by = 1);

  // Reads metadata within the budget (twice the file plus 256 MiB: valid metadata is disjoint
  // and lies inside the file, so only a hostile or broken image reaches it).
  std::optional<std::vector<uint8_t>> ReadMetadata(uint64_t offset, uint64_t length,
                                                   const char* what);
  bool stopped() const { return stopped_; }
  void Stop(const std::string& why);  // reports metadata.limit and stops reading
  void Halt() { stopped_ = true; }     // stops reading; the finding was already reported

  // An active L1 or L2 entry with COPIED set or clear points at host `offset`: pass 3 checks the
  // flag against the on-disk refcount (== 1).
  void RecordCopied(uint64_t offset, bool copied);

  // The on-disk refcount of one cluster, as qcow2_get_refcount reads it; nullopt when the
  // refcount block pointer is unusable.
  std::optional<uint64_t> OnDiskRefcount(uint64_t cluster);

  const qcow2::Device& dev;
  const qcow2::Header& h;
  CheckResult& result;
  Sink& sink;
  CheckOptions opts;
  uint64_t cs;
  uint32_t cluster_bits;
  uint64_t file_size;
  uint64_t file_clusters;  // ceil(file_size / cs)
  uint64_t domain_end;     // one past the highest cluster counted (QEMU's grown IMRT size)
  RefMap refs;
  std::unordered_map<uint64_t, Owner> meta;  // metadata cluster -> its owner
  std::map<uint64_t, L2Use> l2_uses;          // L2 table offset -> uses, sorted for reading
  std::vector<uint64_t> reftable;             // raw refcount table entries
  std::vector<BadRef> bad_refs;               // for repair planning

 private:
  uint64_t budget_;
  bool stopped_ = false;
  uint64_t cached_rt_index_ = ~0ull;
  std::vector<uint8_t> cached_block_;
};

// The passes, in order. Each reports to ctx.sink and keeps going after a finding.
// Header fields, feature bits, extensions. Runs before a Context exists: nothing may derive sizes
// from a header it rejects (false).
bool Pass0Header(const qcow2::Header& h, CheckResult& result, Sink& sink);
void Pass1Metadata(Context& ctx);     // L1 tables, snapshots, refcount table, bitmaps, crypto
void Pass2L2Tables(Context& ctx);     // every distinct L2 table once, with its multiplicity
void Pass3Refcounts(Context& ctx);    // compare with the on-disk refcounts; COPIED; end offset

}  // namespace imgcheck::fsck
