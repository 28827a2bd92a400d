// Bounds-checked big-endian decoding of on-disk bytes. Every integer read from an image goes
// through this file (Boost.Endian); no struct casting anywhere else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include <boost/endian/conversion.hpp>

namespace imgcheck::qcow2 {

using ByteView = std::span<const uint8_t>;

// Reads fields in order. A read past the end sets a sticky failure and yields zeros, so a parser
// reads a whole record and then checks ok() once.
class Cursor {
 public:
  // A start past the end is a cursor that has already failed.
  explicit Cursor(ByteView bytes, size_t pos = 0)
      : bytes_(bytes), pos_(pos), ok_(pos <= bytes.size()) {}

  uint8_t U8() { return Take(1) ? bytes_[pos_ - 1] : 0; }
  uint16_t U16() { return Take(2) ? boost::endian::load_big_u16(&bytes_[pos_ - 2]) : 0; }
  uint32_t U32() { return Take(4) ? boost::endian::load_big_u32(&bytes_[pos_ - 4]) : 0; }
  uint64_t U64() { return Take(8) ? boost::endian::load_big_u64(&bytes_[pos_ - 8]) : 0; }
  ByteView Bytes(size_t n) { return Take(n) ? bytes_.subspan(pos_ - n, n) : ByteView{}; }
  std::string String(size_t n) {
    ByteView b = Bytes(n);
    return std::string(b.begin(), b.end());
  }
  void Skip(size_t n) { Take(n); }

  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }
  size_t remaining() const { return ok_ ? bytes_.size() - pos_ : 0; }

 private:
  bool Take(size_t n) {
    if (!ok_ || n > bytes_.size() - pos_) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }

  ByteView bytes_;
  size_t pos_;
  bool ok_;
};

// Entry i of a table of big-endian u64; the caller guarantees (i + 1) * 8 <= bytes.size(),
// which every table loop does by construction (the loop bound is bytes.size() / 8).
inline uint64_t TableU64(ByteView bytes, size_t i) {
  return boost::endian::load_big_u64(&bytes[i * 8]);
}

// Checked arithmetic on values from the file.
inline std::optional<uint64_t> CheckedAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
inline std::optional<uint64_t> CheckedMul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

}  // namespace imgcheck::qcow2
