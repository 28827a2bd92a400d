#include "fsck/check.h"

#include "qcow2/header.h"
#include "qcow2/image.h"

namespace imgcheck::fsck {

using namespace qcow2;

CheckResult CheckDevice(const Device& dev, const std::string& name, const CheckOptions& opts) {
  CheckResult result;
  result.filename = name;
  Probe probe = ProbeFormat(dev);
  result.format = probe.name;
  if (probe.format != Format::kQcow2) {
    result.format_has_checks = false;
    return result;
  }
  auto header = ReadHeader(dev);
  if (!header) {
    result.failure = header.error().message;
    return result;
  }
  Sink sink(result, name);
  if (!Pass0Header(*header, result, sink)) return result;
  result.cluster_size = header->cluster_size();
  Context ctx(dev, *header, result, sink, opts);
  uint64_t cs = header->cluster_size();
  result.total_clusters = header->size / cs + (header->size % cs != 0);
  Pass1Metadata(ctx);
  if (!ctx.stopped()) Pass2L2Tables(ctx);
  if (!ctx.stopped()) Pass3Refcounts(ctx);
  return result;
}

CheckResult CheckImage(const std::string& path, const CheckOptions& opts) {
  auto dev = FileDevice::Open(path);
  if (!dev) {
    CheckResult result;
    result.filename = path;
    result.failure = dev.error().message;
    return result;
  }
  return CheckDevice(**dev, path, opts);
}

}  // namespace imgcheck::fsck
