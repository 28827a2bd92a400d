// JSON output: every key qemu-img check --output=json prints, with the same meaning, always
// present (qemu omits zeros; we do not), then our findings.
#include "cli/report.h"

#include <algorithm>

#include <fmt/format.h>

namespace imgcheck::cli {

nlohmann::ordered_json ChainLinkJson(const fsck::ChainLink& l, bool counters) {
  nlohmann::ordered_json o{{"filename", l.filename}, {"format", l.format}, {"depth", l.depth},
                           {"virtual-size", l.virtual_size}, {"file-size", l.file_size}};
  if (l.backing_filename) o["backing-filename"] = *l.backing_filename;
  if (l.backing_format) o["backing-format"] = *l.backing_format;
  if (counters) {
    o["check-errors"] = l.check_errors;
    o["corruptions"] = l.corruptions;
    o["leaks"] = l.leaks;
  }
  return o;
}

nlohmann::ordered_json ToJson(const fsck::CheckResult& r) {
  nlohmann::ordered_json j;
  j["filename"] = r.filename;
  j["format"] = r.format;
  j["check-errors"] = std::max<uint64_t>(r.check_errors, r.failure ? 1 : 0);
  j["image-end-offset"] = r.image_end_offset;
  j["corruptions"] = r.corruptions;
  j["leaks"] = r.leaks;
  j["total-clusters"] = r.total_clusters;
  j["allocated-clusters"] = r.allocated_clusters;
  j["fragmented-clusters"] = r.fragmented_clusters;
  j["compressed-clusters"] = r.compressed_clusters;
  if (r.failure) j["error"] = *r.failure;
  j["exit-code"] = r.ExitCode();
  nlohmann::ordered_json findings = nlohmann::ordered_json::array();
  for (const fsck::Finding& f : r.findings) {
    nlohmann::ordered_json o;
    o["code"] = static_cast<int>(f.code);
    o["slug"] = f.slug;
    o["severity"] = std::string(fsck::SeverityName(f.severity));
    o["message"] = f.message;
    o["image"] = f.image;
    if (f.offset) o["offset"] = *f.offset;
    if (f.cluster) o["cluster"] = *f.cluster;
    o["count"] = f.count;
    if (!f.file.empty()) o["file"] = f.file;
    if (f.line) o["line"] = f.line;
    if (!f.evidence.empty()) o["evidence"] = f.evidence;
    if (!f.fix.empty()) o["fix"] = f.fix;
    findings.push_back(std::move(o));
  }
  j["findings"] = std::move(findings);
  {
    nlohmann::ordered_json chain = nlohmann::ordered_json::array();  // always present
    for (const fsck::ChainLink& l : r.chain) chain.push_back(ChainLinkJson(l, true));
    j["chain"] = std::move(chain);
  }
  if (r.findings_suppressed) j["findings-suppressed"] = r.findings_suppressed;
  if (r.vm) j["vm"] = VmDiskJson(*r.vm);
  if (r.guest) {
    const fsck::GuestSummary& g = *r.guest;
    nlohmann::ordered_json o{{"ran", g.ran}};
    if (!g.ran) o["reason"] = g.reason;
    if (g.ran) {
      o["backend"] = g.backend;
      o["launch-seconds"] = g.launch_seconds;
      o["total-seconds"] = g.total_seconds;
      o["os"] = {{"type", g.os_type}, {"distro", g.os_distro}, {"product", g.os_product},
                 {"version", fmt::format("{}.{}", g.os_major, g.os_minor)}};
    }
    j["guest"] = o;
  }
  return j;
}

}  // namespace imgcheck::cli
