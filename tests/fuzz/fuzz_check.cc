// Fuzzes the whole checker on an in-memory image: header, tables, snapshots, bitmaps and the
// refcount comparison. Seeds are small real images (run_fuzzers.sh makes them).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fsck/check.h"
#include "qcow2/device.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  imgcheck::qcow2::MemDevice dev(std::vector<uint8_t>(data, data + size), "fuzz.qcow2");
  auto r = imgcheck::fsck::CheckDevice(dev, "fuzz.qcow2", {});
  (void)r.ExitCode();
  return 0;
}
