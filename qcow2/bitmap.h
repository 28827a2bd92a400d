// The persistent bitmap directory (header extension 0x23852875): variable-length, 8-byte
// aligned entries. Parsing only decodes; fsck/pass_bitmaps checks each field against QEMU's rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qcow2/bytes.h"

namespace imgcheck::qcow2 {

struct BitmapEntry {
  uint64_t entry_offset = 0;  // relative to the directory start
  uint64_t table_offset = 0;
  uint32_t table_size = 0;
  uint32_t flags = 0;
  uint8_t type = 0;
  uint8_t granularity_bits = 0;
  uint16_t name_size = 0;
  uint32_t extra_data_size = 0;
  std::string name;
};

struct BitmapDirectory {
  std::vector<BitmapEntry> entries;
  std::optional<std::string> broken;  // why the directory could not be read entirely
};

BitmapDirectory ParseBitmapDirectory(ByteView bytes, uint32_t count);

}  // namespace imgcheck::qcow2
