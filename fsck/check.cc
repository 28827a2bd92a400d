#include "fsck/check.h"

#include <fmt/format.h>

#include "qcow2/header.h"
#include "qcow2/image.h"

namespace imgcheck::fsck {

using namespace qcow2;

namespace {

// What a file declared `declared` really holds, reported; true when it is checked as qcow2.
bool Declare(const Device& dev, const Probe& probe, const DeclaredFormat& declared,
             CheckResult& result) {
  Sink sink(result, result.filename);
  result.format = declared.name;
  if (declared.name == "qcow2") {
    if (probe.format == Format::kQcow2) return true;
    sink.Report(P::kFormatDeclaredMismatch,
                Fields{.name = result.filename, .owner = probe.name, .other = declared.name,
                       .detail = ": QEMU refuses to open it (\"Image is not in qcow2 format\")"});
    result.failure = fmt::format("declared qcow2, but the file is {} (no qcow2 header)",
                                 probe.name);
    return false;
  }
  result.format_has_checks = false;
  if (declared.name == "raw" && probe.format != Format::kRaw) {
    std::string what;
    if (probe.format == Format::kQcow2) {
      if (auto h = ReadHeader(dev)) {
        what = fmt::format(" (qcow2 version {}, virtual size {} bytes)", h->version, h->size);
      }
    }
    Fields f{.name = result.filename, .owner = probe.name, .detail = what};
    if (!declared.by_domain) {  // the user's own declaration about the file: honoured
      f.severity = Severity::kWarning;
      f.detail += "; checked as raw, as declared";
    }
    sink.Report(P::kFormatRawHoldsHeader, f);
  } else if (declared.name != "raw" && probe.format != Format::kRaw && probe.name != declared.name) {
    sink.Report(P::kFormatDeclaredMismatch,
                Fields{.name = result.filename, .owner = probe.name, .other = declared.name});
  }
  return false;
}

}  // namespace

std::unique_ptr<Checked> RunCheck(const Device& dev, const std::string& name,
                                  const CheckOptions& opts, const DeclaredFormat* declared) {
  auto c = std::make_unique<Checked>();
  CheckResult& result = c->result;
  result.filename = name;
  Probe probe = ProbeFormat(dev);
  result.format = probe.name;
  if (declared && !Declare(dev, probe, *declared, result)) return c;
  if (!declared && probe.format != Format::kQcow2) {
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

CheckResult CheckDevice(const Device& dev, const std::string& name, const CheckOptions& opts,
                        const DeclaredFormat* declared) {
  return std::move(RunCheck(dev, name, opts, declared)->result);
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
