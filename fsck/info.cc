#include "fsck/info.h"

#include "fsck/host.h"
#include "qcow2/device.h"
#include "qcow2/image.h"
#include "qcow2/layout.h"

namespace imgcheck::fsck {

using namespace qcow2;

std::string ExtensionName(uint32_t type) {
  switch (type) {
    case kExtBackingFormat: return "backing format";
    case kExtFeatureTable: return "feature name table";
    case kExtBitmaps: return "bitmaps";
    case kExtCrypto: return "full disk encryption header";
    case kExtDataFile: return "external data file name";
    default: return "unknown";
  }
}

ImageInfo CollectInfo(const std::string& path, const ChainOptions& chain) {
  ImageInfo info;
  info.filename = path;
  auto dev = FileDevice::Open(path);
  if (!dev) {
    info.failure = dev.error().message;
    return info;
  }
  info.file_size = (*dev)->Size();
  Probe probe = ProbeFormat(**dev);
  info.format = chain.format ? chain.format->name : probe.name;  // declared: never probed
  if (chain.format && chain.format->name == "qcow2" && probe.format != Format::kQcow2) {
    info.failure = "declared qcow2, but the file is " + probe.name + " (no qcow2 header)";
    info.check = CheckChain(path, CheckOptions{}, chain);
    return info;
  }
  if (auto space = ProbeSpace((*dev)->fd())) {
    info.host_allocated = space->allocated_bytes;
    info.host_free = space->free_bytes;
  }
  info.in_use = ProbeQemuLocks((*dev)->fd());
  if (info.format == "qcow2" && probe.format == Format::kQcow2) {
    auto h = ReadHeader(**dev);
    if (!h) {
      info.failure = h.error().message;
      return info;
    }
    info.header = *h;
    if (!h->fatal()) {
      auto snaps = ReadSnapshots(**dev, *h);
      auto bitmaps = ReadBitmaps(**dev, *h);
      if (snaps) info.snapshots = snaps->snapshots;
      if (bitmaps) info.bitmaps = bitmaps->entries;
      if (!snaps || !bitmaps) {
        info.tables_problem = !snaps ? snaps.error().message : bitmaps.error().message;
      }
    }
  }
  info.check = CheckChain(path, CheckOptions{}, chain);
  return info;
}

}  // namespace imgcheck::fsck
