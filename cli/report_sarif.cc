// SARIF 2.1.0 for GitHub code scanning (and any SARIF viewer), valid against
// tests/schemas/sarif-schema-2.1.0.json. One run; the driver's rules are the whole problem
// table (id = slug, default level from the severity), so a result's ruleIndex is its row.
// Results: one per listed finding, located in the image file it is about (a backing file's
// finding is located in the backing file). Binary files have no lines: region.startLine is 1
// (GitHub requires a line) and region.byteOffset carries the offset when the finding has one,
// repeated as a logical location "0x... (cluster N)". partialFingerprints are ours, so the
// upload action never tries to hash "lines" of a disk image. A check that could not complete
// and a format without checks are tool execution notifications: they have no rule.
#include <fmt/format.h>

#include <cctype>

#include "cli/report.h"

namespace imgcheck::cli {
namespace {

using fsck::Severity;
using Json = nlohmann::ordered_json;

std::string_view Level(Severity s) {
  switch (s) {
    case Severity::kError: return "error";
    case Severity::kLeak:
    case Severity::kWarning: return "warning";
    case Severity::kInfo: return "note";
  }
  return "none";
}

// A message template as a description: "{count} leaked cluster(s) ... 0x{offset:x}" becomes
// "<count> leaked cluster(s) ... <offset>"; a template that is only placeholders ("{detail}")
// is described by its slug ("metadata limit").
std::string Describe(const fsck::ProblemDef& def) {
  std::string out;
  size_t letters = 0;
  std::string_view m = def.message;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m.substr(i).starts_with("0x{")) {  // "<offset>" says it is an offset: drop the 0x
      ++i;
      continue;
    }
    if (m[i] == '{') {
      size_t end = m.find('}', i);
      std::string_view field = m.substr(i + 1, end - i - 1);
      out += fmt::format("<{}>", field.substr(0, field.find(':')));
      i = end;
      continue;
    }
    letters += std::isalpha(static_cast<unsigned char>(m[i])) != 0;
    out += m[i];
  }
  if (letters >= 8) return out;
  std::string words(def.slug);
  for (char& c : words) c = c == '.' || c == '-' ? ' ' : c;
  return words;
}

// A path as a URI reference: relative paths stay relative (GitHub resolves them against the
// repository root), absolute ones become file:// URIs; bytes outside the unreserved set and
// '/' are percent-encoded.
std::string Uri(std::string_view path) {
  if (path.starts_with("./")) path.remove_prefix(2);
  std::string out = path.starts_with("/") ? "file://" : "";
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

// FNV-1a, 64 bits: a stable fingerprint (std::hash may change between builds).
std::string Fingerprint(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return fmt::format("{:016x}", h);
}

Json Rule(const fsck::ProblemDef& def) {
  return {{"id", def.slug},
          {"shortDescription", {{"text", Describe(def)}}},
          {"fullDescription", {{"text", Describe(def) + ". Repair: " + std::string(def.fix)}}},
          {"help", {{"text", "imgcheck repair: " + std::string(def.fix)}}},
          {"defaultConfiguration", {{"level", Level(def.severity)}}},
          {"properties",
           {{"code", static_cast<int>(def.code)},
            {"severity", fsck::SeverityName(def.severity)},
            {"check-error", def.check_error}}}};
}

size_t RuleIndex(fsck::P code) {
  auto table = fsck::ProblemTable();
  return static_cast<size_t>(&fsck::Def(code) - table.data());
}

Json Location(const std::string& image) {
  return {{"physicalLocation",
           {{"artifactLocation", {{"uri", Uri(image)}}}, {"region", {{"startLine", 1}}}}}};
}

Json Result(const fsck::CheckResult& r, const fsck::Finding& f) {
  Json loc = Location(f.image);
  if (f.offset) {
    loc["physicalLocation"]["region"]["byteOffset"] = *f.offset;
    std::string name = fmt::format("0x{:x}", *f.offset) +
                       (f.cluster ? fmt::format(" (cluster {})", *f.cluster) : "");
    loc["logicalLocations"] =
        Json::array({{{"name", name}, {"fullyQualifiedName", f.image + "@" + name}}});
  }
  if (!f.file.empty()) {  // a guest file: a logical location, the disk image staying physical
    std::string name = f.file + (f.line ? fmt::format(":{}", f.line) : "");
    loc["logicalLocations"] = Json::array(
        {{{"name", name}, {"fullyQualifiedName", f.image + ":" + name}, {"kind", "resource"}}});
  }
  Json props = {{"code", static_cast<int>(f.code)},
                {"severity", fsck::SeverityName(f.severity)},
                {"image", r.filename},
                {"count", f.count}};
  if (f.offset) props["offset"] = *f.offset;
  if (f.cluster) props["cluster"] = *f.cluster;
  if (!f.file.empty()) props["file"] = f.file;
  if (f.line) props["line"] = f.line;
  if (!f.evidence.empty()) props["evidence"] = f.evidence;
  if (!f.fix.empty()) props["fix"] = f.fix;
  if (r.vm) {  // the VM the disk belongs to
    props["domain"] = r.vm->domain;
    props["target"] = r.vm->target;
    loc["logicalLocations"] = loc.value("logicalLocations", Json::array());
    loc["logicalLocations"].push_back(
        {{"name", r.vm->target},
         {"fullyQualifiedName", r.vm->domain + "/" + r.vm->target},
         {"kind", "object"}});
  }
  std::string where = f.image == r.filename ? "" : " (in " + f.image + ")";
  return {
      {"ruleId", f.slug},
      {"ruleIndex", RuleIndex(f.code)},
      {"level", Level(f.severity)},
      {"message", {{"text", f.message + where}}},
      {"locations", Json::array({loc})},
      {"partialFingerprints",
       {{"imgcheckFinding/v1", Fingerprint(fmt::format("{}\n{}\n{}\n{}\n{}", f.image, f.slug,
                                                       f.offset.value_or(0), f.file, f.message))}}},
      {"properties", props}};
}

}  // namespace

Json ToSarif(std::span<const fsck::CheckResult> results, const RunInfo&) {
  Json rules = Json::array();
  for (const fsck::ProblemDef& def : fsck::ProblemTable()) rules.push_back(Rule(def));
  Json out = Json::array(), notes = Json::array();
  bool complete = true;
  for (const fsck::CheckResult& r : results) {
    for (const fsck::Finding& f : r.findings) out.push_back(Result(r, f));
    if (r.failure) {
      complete = false;
      notes.push_back(
          {{"level", "error"},
           {"message", {{"text", r.filename + ": check could not complete: " + *r.failure}}},
           {"locations", Json::array({Location(r.filename)})}});
    } else if (!r.format_has_checks) {
      notes.push_back({{"level", "note"},
                       {"message",
                        {{"text", fmt::format("{}: {} image: this format has no "
                                              "metadata to check",
                                              r.filename, r.format)}}},
                       {"locations", Json::array({Location(r.filename)})}});
    }
  }
  Json driver = {{"name", "imgcheck"},
                 {"version", kVersion},
                 {"semanticVersion", kVersion},
                 {"rules", std::move(rules)}};
  Json invocation = {{"executionSuccessful", complete}};
  if (!notes.empty()) invocation["toolExecutionNotifications"] = std::move(notes);
  Json run = {{"tool", {{"driver", std::move(driver)}}},
              {"invocations", Json::array({std::move(invocation)})},
              {"results", std::move(out)}};
  return {{"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
          {"version", "2.1.0"},
          {"runs", Json::array({std::move(run)})}};
}

}  // namespace imgcheck::cli
