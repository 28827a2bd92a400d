// Fuzzes the snapshot table parser: the first two bytes give the entry count.
#include <cstddef>
#include <cstdint>

#include "qcow2/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint32_t count = static_cast<uint32_t>(data[0] << 8 | data[1]);
  auto t = imgcheck::qcow2::ParseSnapshotTable(imgcheck::qcow2::ByteView(data + 2, size - 2),
                                              count);
  for (const auto& s : t.snapshots) (void)s.VmStateSize();
  return 0;
}
