// A read-only device seen through a set of pending writes, kept in memory. Repair plans are
// applied here first and re-checked, so an image is only written once its repaired form has
// been verified. Writes may overlap; the latest wins. Writes past the end grow the device.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "qcow2/device.h"

namespace imgcheck::qcow2 {

class OverlayDevice final : public Device {
 public:
  explicit OverlayDevice(const Device& base) : base_(base), size_(base.Size()) {}
  uint64_t Size() const override { return size_; }
  Result<void> Read(uint64_t offset, std::span<uint8_t> out) const override;
  const std::string& Name() const override { return base_.Name(); }

  void Write(uint64_t offset, std::span<const uint8_t> bytes);

 private:
  const Device& base_;
  uint64_t size_;
  std::map<uint64_t, std::vector<uint8_t>> patches_;  // disjoint ranges by start offset
};

}  // namespace imgcheck::qcow2
