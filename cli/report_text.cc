// Human output: one summary line people can read at a glance, then findings grouped by
// severity, offsets in hex with cluster indexes. Info findings only with --verbose.
#include <fmt/color.h>
#include <fmt/format.h>

#include "cli/report.h"

namespace imgcheck::cli {
namespace {

std::string Styled(const TextOptions& o, fmt::text_style st, const std::string& s) {
  return o.color ? fmt::format(st, "{}", s) : s;
}

std::string Percent(uint64_t a, uint64_t b) {
  return b ? fmt::format("{:.2f}%", 100.0 * static_cast<double>(a) / static_cast<double>(b))
           : "0.00%";
}

}  // namespace

void PrintText(std::FILE* out, const fsck::CheckResult& r, const TextOptions& o) {
  using fsck::Severity;
  int code = r.ExitCode();
  std::string verdict;
  fmt::text_style st;
  if (r.failure) {
    verdict = "check could not complete: " + *r.failure;
    st = fmt::fg(fmt::terminal_color::red);
  } else if (!r.format_has_checks && code == 63) {
    verdict = fmt::format("{} image: this format has no metadata to check", r.format);
    st = fmt::fg(fmt::terminal_color::yellow);
  } else if (code == 0) {
    verdict = "no errors found";
    st = fmt::fg(fmt::terminal_color::green);
  } else {
    std::vector<std::string> parts;
    if (r.corruptions) parts.push_back(fmt::format("{} error(s)", r.corruptions));
    if (r.leaks) parts.push_back(fmt::format("{} leaked cluster(s)", r.leaks));
    if (r.check_errors) parts.push_back(fmt::format("{} check error(s)", r.check_errors));
    verdict = fmt::format("{}", fmt::join(parts, ", "));
    st = fmt::fg(code == 3 ? fmt::terminal_color::yellow : fmt::terminal_color::red);
  }
  fmt::print(out, "{}: {} (exit {})\n", r.filename, Styled(o, st | fmt::emphasis::bold, verdict),
             code);
  if (o.quiet) return;
  if (r.vm) {
    fmt::print(out, "  disk {} of domain {}: bus {}, the guest's {}\n", r.vm->target, r.vm->domain,
               r.vm->bus, r.vm->guest_name);
  }
  if (r.format_has_checks && !r.failure && r.total_clusters) {
    fmt::print(out,
               "  {}/{} = {} allocated, {} fragmented, {} compressed clusters; image end offset "
               "0x{:x}\n",
               r.allocated_clusters, r.total_clusters,
               Percent(r.allocated_clusters, r.total_clusters),
               Percent(r.fragmented_clusters, r.allocated_clusters),
               Percent(r.compressed_clusters, r.allocated_clusters), r.image_end_offset);
  }
  if (r.chain.size() > 1) {
    fmt::print(out, "  backing chain ({} images):\n", r.chain.size());
    for (const fsck::ChainLink& l : r.chain) {
      fmt::print(out, "    {}{} ({}, {} bytes virtual){}\n", std::string(2 * l.depth, ' '),
                 l.filename, l.format, l.virtual_size,
                 l.corruptions || l.leaks || l.check_errors
                     ? fmt::format(": {} error(s), {} leak(s)", l.corruptions, l.leaks)
                     : "");
    }
  }
  struct Group {
    Severity sev;
    const char* title;
    fmt::terminal_color color;
  };
  const Group groups[] = {{Severity::kError, "errors", fmt::terminal_color::red},
                          {Severity::kLeak, "leaks", fmt::terminal_color::yellow},
                          {Severity::kWarning, "warnings", fmt::terminal_color::yellow},
                          {Severity::kInfo, "information", fmt::terminal_color::blue}};
  for (const Group& g : groups) {
    if (g.sev == Severity::kInfo && !o.verbose) continue;
    size_t n = 0;
    for (const auto& f : r.findings) n += f.severity == g.sev;
    if (!n) continue;
    fmt::print(out, "  {} ({}):\n", Styled(o, fmt::fg(g.color), g.title), n);
    for (const auto& f : r.findings) {
      if (f.severity != g.sev) continue;
      std::string where = f.image == r.filename ? "" : "in " + f.image + ": ";
      fmt::print(out, "    {} {}{}\n", Styled(o, fmt::emphasis::faint, "[" + f.slug + "]"), where,
                 f.message);
      if (!f.fix.empty()) fmt::print(out, "      fix: {}\n", f.fix);
    }
  }
  if (r.findings_suppressed) {
    fmt::print(out, "  ({} more findings of the same kinds not listed)\n", r.findings_suppressed);
  }
}

}  // namespace imgcheck::cli
