// Refcount block entries for every refcount_order 0..6 (widths 1..64 bits). Sub-byte widths
// are packed from the least significant bit of each byte; wider ones are big-endian.
#pragma once

#include <cstdint>
#include <span>

#include "qcow2/bytes.h"

namespace imgcheck::qcow2 {

// Entry `index` of a refcount block; the caller keeps index < block.size() * 8 >> order.
inline uint64_t RefcountAt(ByteView block, uint32_t order, uint64_t index) {
  switch (order) {
    case 0: case 1: case 2: {
      uint32_t bits = 1u << order;
      uint64_t bit = index * bits;
      return (block[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    case 3: return block[index];
    case 4: return boost::endian::load_big_u16(&block[index * 2]);
    case 5: return boost::endian::load_big_u32(&block[index * 4]);
    default: return boost::endian::load_big_u64(&block[index * 8]);
  }
}

// Sets entry `index` of a refcount block buffer (the inverse of RefcountAt); `value` must fit.
inline void SetRefcountAt(std::span<uint8_t> block, uint32_t order, uint64_t index,
                          uint64_t value) {
  switch (order) {
    case 0: case 1: case 2: {
      uint32_t bits = 1u << order;
      uint64_t bit = index * bits;
      uint8_t mask = static_cast<uint8_t>(((1u << bits) - 1) << (bit % 8));
      block[bit / 8] = static_cast<uint8_t>((block[bit / 8] & ~mask) | ((value << (bit % 8)) & mask));
      return;
    }
    case 3: block[index] = static_cast<uint8_t>(value); return;
    case 4: boost::endian::store_big_u16(&block[index * 2], static_cast<uint16_t>(value)); return;
    case 5: boost::endian::store_big_u32(&block[index * 4], static_cast<uint32_t>(value)); return;
    default: boost::endian::store_big_u64(&block[index * 8], value); return;
  }
}

}  // namespace imgcheck::qcow2
