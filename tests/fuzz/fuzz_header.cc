// Fuzzes the header and extension parser: any bytes as cluster 0.
#include <cstddef>
#include <cstdint>

#include "qcow2/header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto h = imgcheck::qcow2::ParseHeader(imgcheck::qcow2::ByteView(data, size));
  if (h) (void)h->FeatureBitName(0, 7);
  return 0;
}
