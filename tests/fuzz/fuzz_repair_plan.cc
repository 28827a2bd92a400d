// Fuzzes repair planning on an in-memory image: the planner reads damaged metadata, stages
// writes on an overlay and re-checks it. Nothing is written (planning never opens a file).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fsck/plan.h"
#include "qcow2/device.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  imgcheck::qcow2::MemDevice dev(std::vector<uint8_t>(data, data + size), "fuzz.qcow2");
  for (bool loss : {false, true}) {
    auto plan = imgcheck::fsck::PlanRepair(dev, "fuzz.qcow2", {.allow_data_loss = loss});
    (void)plan.writes.size();
  }
  return 0;
}
