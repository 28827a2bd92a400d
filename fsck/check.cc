#include "fsck/check.h"

#include "qcow2/header.h"
#include "qcow2/image.h"

namespace imgcheck::fsck {

using namespace qcow2;

std::unique_ptr<Checked> RunCheck(const Device& dev, const std::string& name,
                                  const CheckOptions& opts) {
  auto c = std::make_unique<Checked>();
  CheckResult& result = c->result;
  result.filename = name;
  Probe probe = ProbeFormat(dev);
  result.format = probe.name;
  if (probe.format != Format::kQcow2) {
    result.format_has_checks = false;
    return c;
  }
  auto header = ReadHeader(dev);
  if (!header) {
    result.failure = header.error().message;
    return c;
  }
  c->header = std::move(*header);
  c->sink = std::make_unique<Sink>(result, name);
  if (!Pass0Header(*c->header, result, *c->sink)) return c;
  uint64_t cs = c->header->cluster_size();
  result.cluster_size = cs;
  result.total_clusters = c->header->size / cs + (c->header->size % cs != 0);
  c->ctx = std::make_unique<Context>(dev, *c->header, result, *c->sink, opts);
  Context& ctx = *c->ctx;
  Pass1Metadata(ctx);
  if (!ctx.stopped()) Pass2L2Tables(ctx);
  if (!ctx.stopped()) Pass3Refcounts(ctx);
  return c;
}

CheckResult CheckDevice(const Device& dev, const std::string& name, const CheckOptions& opts) {
  return std::move(RunCheck(dev, name, opts)->result);
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
