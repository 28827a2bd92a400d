// The in-memory reference counts (QEMU's IMRT), stored sparsely: one byte per host cluster, in
// chunks of 64 Ki clusters allocated on first touch, so memory follows the metadata present and
// not the file's length. Each byte holds a 6-bit count (63 = "see the overflow map") and two
// flags recording how active L2 entries referenced the cluster (COPIED set / clear), which the
// compare pass checks against the on-disk refcount without a second walk of the L2 tables.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

namespace imgcheck::fsck {

class RefMap {
 public:
  static constexpr uint32_t kChunkBits = 16;
  static constexpr uint64_t kChunkSize = 1ull << kChunkBits;
  static constexpr uint8_t kCountMask = 0x3f;
  static constexpr uint8_t kBig = 0x3f;  // count lives in big_
  static constexpr uint8_t kCopiedSet = 0x40;
  static constexpr uint8_t kCopiedClear = 0x80;

  // Adds `by` to the count of `cluster`, saturating at `max`. Returns the count before.
  uint64_t Add(uint64_t cluster, uint64_t by, uint64_t max) {
    uint8_t& b = Byte(cluster);
    uint64_t before = (b & kCountMask) == kBig ? big_[cluster] : (b & kCountMask);
    uint64_t after = (max - before < by) ? max : before + by;
    if (after < kBig) {
      b = static_cast<uint8_t>((b & ~kCountMask) | after);
    } else {
      b = static_cast<uint8_t>((b & ~kCountMask) | kBig);
      big_[cluster] = after;
    }
    return before;
  }
  void Flag(uint64_t cluster, uint8_t flag) { Byte(cluster) |= flag; }

  // Reads; absent chunks read as zero without allocating.
  const uint8_t* Chunk(uint64_t chunk) const {
    auto it = chunks_.find(chunk);
    return it == chunks_.end() ? nullptr : it->second.get();
  }
  uint64_t CountOf(uint64_t cluster, uint8_t byte) const {
    if ((byte & kCountMask) != kBig) return byte & kCountMask;
    auto it = big_.find(cluster);
    return it == big_.end() ? 0 : it->second;
  }
  uint64_t Get(uint64_t cluster) const {
    const uint8_t* c = Chunk(cluster >> kChunkBits);
    return c ? CountOf(cluster, c[cluster & (kChunkSize - 1)]) : 0;
  }
  size_t chunks() const { return chunks_.size(); }

 private:
  uint8_t& Byte(uint64_t cluster) {
    uint64_t chunk = cluster >> kChunkBits;
    if (chunk != last_chunk_ || !last_) {
      auto& slot = chunks_[chunk];
      if (!slot) slot = std::make_unique<uint8_t[]>(kChunkSize);  // zeroed
      last_ = slot.get();
      last_chunk_ = chunk;
    }
    return last_[cluster & (kChunkSize - 1)];
  }

  std::unordered_map<uint64_t, std::unique_ptr<uint8_t[]>> chunks_;
  std::unordered_map<uint64_t, uint64_t> big_;
  uint64_t last_chunk_ = 0;
  uint8_t* last_ = nullptr;
};

}  // namespace imgcheck::fsck
