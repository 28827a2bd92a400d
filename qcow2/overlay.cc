#include "qcow2/overlay.h"

#include <algorithm>
#include <cstring>

namespace imgcheck::qcow2 {

void OverlayDevice::Write(uint64_t offset, std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  uint64_t end = offset + bytes.size();
  // Trim or split every patch that overlaps [offset, end).
  auto it = patches_.upper_bound(offset);
  if (it != patches_.begin()) --it;
  while (it != patches_.end() && it->first < end) {
    uint64_t s = it->first, e = s + it->second.size();
    if (e <= offset) {
      ++it;
      continue;
    }
    std::vector<uint8_t> old = std::move(it->second);
    it = patches_.erase(it);
    if (s < offset) patches_.emplace(s, std::vector<uint8_t>(old.begin(), old.begin() + (offset - s)));
    if (e > end) {
      it = patches_.emplace(end, std::vector<uint8_t>(old.begin() + (end - s), old.end())).first;
      ++it;
    }
  }
  patches_.emplace(offset, std::vector<uint8_t>(bytes.begin(), bytes.end()));
  size_ = std::max(size_, end);
}

Result<void> OverlayDevice::Read(uint64_t offset, std::span<uint8_t> out) const {
  if (out.empty()) return {};
  if (offset < base_.Size()) {
    if (auto r = base_.Read(offset, out); !r) return r;
  } else {
    std::memset(out.data(), 0, out.size());
  }
  uint64_t end = offset + out.size();
  auto it = patches_.upper_bound(offset);
  if (it != patches_.begin()) --it;
  for (; it != patches_.end() && it->first < end; ++it) {
    uint64_t s = it->first, e = s + it->second.size();
    uint64_t from = std::max(s, offset), to = std::min(e, end);
    if (from >= to) continue;
    std::memcpy(out.data() + (from - offset), it->second.data() + (from - s), to - from);
  }
  return {};
}

}  // namespace imgcheck::qcow2
