// Fuzzes the bitmap directory parser: the first two bytes give the entry count.
#include <cstddef>
#include <cstdint>

#include "qcow2/bitmap.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint32_t count = static_cast<uint32_t>(data[0] << 8 | data[1]);
  (void)imgcheck::qcow2::ParseBitmapDirectory(imgcheck::qcow2::ByteView(data + 2, size - 2),
                                              count);
  return 0;
}
