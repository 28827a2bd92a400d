// JUnit XML for CI systems (Jenkins, GitLab, Azure, ...), valid against the Ant JUnit schema
// (tests/schemas/junit.xsd). Layout:
//   <testsuites> one <testsuite> per image (name and package = the image path), with
//     <properties>: the qemu-img check counters and the exit code;
//     one <testcase> per check family (classname = IMAGE.FAMILY, families from slug prefixes)
//       that found no error or leak; for a family that did, one <testcase> per such finding
//       (name = slug and offset) holding its <failure> (the schema allows one per testcase);
//       findings that mean the check is incomplete give <error> instead of <failure>;
//     a check that could not complete: a "check" testcase with <error>; a format without
//       checks (raw): a "format" testcase <skipped>;
//     <system-out>: warnings and information findings, one a line ("[warning] slug: message");
//     <system-err>: why the check could not complete, if it could not.
// Leaks are failures: they make the exit code non-zero, so a CI gate fails on them.
// With a libvirt domain, the testsuite's properties name the domain and the disk's target, bus
// and guest name, and the "format" and "vm" families are always listed.
#include <fmt/format.h>
#include <unistd.h>

#include <array>

#include "cli/report.h"

namespace imgcheck::cli {
namespace {

using fsck::Finding;
using fsck::Severity;

enum class Group { kFormat, kGuest, kPolicy, kVm, kOther };

struct Family {
  std::string_view name;
  std::array<std::string_view, 4> prefixes;  // slug prefixes ("l2.") or whole slugs
  Group group;
};

// Families in report order. A slug belongs to the family with its longest matching prefix
// (image.in-use is "host", other image.* slugs "layout").
constexpr Family kFamilies[] = {
    {"header", {"header."}, Group::kFormat},
    {"l1-l2", {"l1.", "l2."}, Group::kFormat},
    {"refcounts", {"refcount.", "reftable.", "refblock."}, Group::kFormat},
    {"layout", {"ref.", "overlap.", "metadata.", "image."}, Group::kFormat},
    {"snapshots", {"snapshot."}, Group::kFormat},
    {"bitmaps", {"bitmap."}, Group::kFormat},
    {"chain", {"chain.", "datafile.", "untrusted."}, Group::kFormat},
    {"host", {"host.", "image.in-use"}, Group::kFormat},
    {"guest", {"guest."}, Group::kGuest},
    {"fstab", {"fstab."}, Group::kGuest},
    {"grub", {"grub."}, Group::kGuest},
    {"lvm", {"lvm."}, Group::kGuest},
    {"initramfs", {"initramfs."}, Group::kGuest},
    {"part", {"part."}, Group::kGuest},
    {"fs", {"fs."}, Group::kGuest},
    {"hygiene", {"hygiene."}, Group::kGuest},
    {"policy", {"policy."}, Group::kPolicy},
    {"format", {"format."}, Group::kVm},  // declared formats
    {"vm", {"vm."}, Group::kVm},          // the libvirt domain

    {"other", {}, Group::kOther},  // codes added later without a family: never lost
};

const Family& FamilyOf(std::string_view slug) {
  const Family* best = &kFamilies[std::size(kFamilies) - 1];
  size_t best_len = 0;
  for (const Family& f : kFamilies) {
    for (std::string_view p : f.prefixes) {
      if (p.size() > best_len && slug.starts_with(p)) best = &f, best_len = p.size();
    }
  }
  return *best;
}

// The length of the valid UTF-8 sequence at s[i], or 0 if there is none.
size_t Utf8Length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  uint32_t cp = n == 1 ? c : c & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  bool ok = cp >= kMin[n] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && cp != 0xfffe &&
            cp != 0xffff;
  return ok ? n : 0;
}

// Text as XML 1.0 character data or attribute value: markup characters as entities, invalid
// UTF-8 and characters XML cannot carry (control characters) as U+FFFD; in attributes, tab and
// newlines as character references so attribute normalisation keeps them.
std::string Xml(std::string_view s, bool attribute = false) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    size_t n = Utf8Length(s, i);
    if (n == 0 ||
        (n == 1 && static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')) {
      out += "\xef\xbf\xbd";  // U+FFFD
      i += n ? n : 1;
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += attribute ? "&quot;" : "\""; break;
      case '\'': out += attribute ? "&apos;" : "'"; break;
      case '\t': out += attribute ? "&#9;" : "\t"; break;
      case '\n': out += attribute ? "&#10;" : "\n"; break;
      case '\r': out += "&#13;"; break;
      default: out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  return buf;
}

std::string Timestamp(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);  // the schema's pattern, UTC
  return buf;
}

bool Fails(const Finding& f) {
  return f.severity == Severity::kError || f.severity == Severity::kLeak;
}

// " at 0x50000" (format findings) or " at etc/fstab:3" (guest findings), or nothing.
std::string Where(const Finding& f) {
  if (!f.file.empty()) return " at " + f.file + (f.line ? fmt::format(":{}", f.line) : "");
  return f.offset ? fmt::format(" at 0x{:x}", *f.offset) : "";
}

// One testsuite; counts what it wrote for the testsuite's attributes.
struct Suite {
  std::string body;
  int tests = 0, failures = 0, errors = 0, skipped = 0;

  void Case(std::string_view classname, std::string_view name, std::string_view inner = "") {
    ++tests;
    body += fmt::format("    <testcase name=\"{}\" classname=\"{}\" time=\"0\"", Xml(name, true),
                        Xml(classname, true));
    body += inner.empty() ? "/>\n" : fmt::format(">\n      {}\n    </testcase>\n", inner);
  }
};

std::string FailureElement(const fsck::CheckResult& r, const Finding& f) {
  const fsck::ProblemDef& def = fsck::Def(f.code);
  std::string detail =
      fmt::format("{} (code {}, {}){}\n", f.slug, static_cast<int>(f.code),
                  fsck::SeverityName(f.severity), f.image == r.filename ? "" : " in " + f.image);
  if (f.offset) detail += fmt::format("offset 0x{:x}\n", *f.offset);
  if (f.cluster) detail += fmt::format("cluster {}\n", *f.cluster);
  if (f.count != 1) detail += fmt::format("count {}\n", f.count);
  if (!f.file.empty()) {
    detail +=
        fmt::format("guest file {}{}\n", f.file, f.line ? fmt::format(", line {}", f.line) : "");
  }
  if (!f.evidence.empty()) detail += fmt::format("seen: {}\n", f.evidence);
  detail += f.fix.empty() ? fmt::format("repair: {}", def.fix) : fmt::format("fix: {}", f.fix);
  const char* element = def.check_error ? "error" : "failure";
  return fmt::format("<{0} message=\"{1}\" type=\"{2}\">{3}</{0}>", element, Xml(f.message, true),
                     Xml(f.slug, true), Xml(detail));
}

std::string Testsuite(const fsck::CheckResult& r, size_t id, const RunInfo& run,
                      const std::string& timestamp, const std::string& host) {
  Suite s;
  std::string cls_prefix = r.filename + ".";
  if (r.failure) {
    ++s.errors;
    s.Case(cls_prefix + "check", "check",
           fmt::format("<error message=\"{}\" type=\"check-incomplete\"/>", Xml(*r.failure, true)));
  } else if (!r.format_has_checks) {
    ++s.skipped;
    s.Case(cls_prefix + "format", "format",
           fmt::format("<skipped message=\"{} image: this format has no metadata to "
                       "check\"/>",
                       Xml(r.format, true)));
  }
  for (const Family& fam : kFamilies) {
    bool has = false;
    for (const Finding& f : r.findings) has |= &FamilyOf(f.slug) == &fam;
    bool shown = has || (fam.group == Group::kFormat && r.format_has_checks && !r.failure) ||
                 (fam.group == Group::kGuest && run.guest) ||
                 (fam.group == Group::kPolicy && run.policy) ||
                 (fam.group == Group::kVm && r.vm.has_value());
    if (!shown) continue;
    std::string cls = cls_prefix + std::string(fam.name);
    bool failed = false;
    for (const Finding& f : r.findings) {
      if (&FamilyOf(f.slug) != &fam || !Fails(f)) continue;
      failed = true;
      (fsck::Def(f.code).check_error ? s.errors : s.failures)++;
      s.Case(cls, f.slug + Where(f), FailureElement(r, f));
    }
    if (!failed) s.Case(cls, fam.name);
  }
  std::string out;
  for (const Finding& f : r.findings) {
    if (Fails(f)) continue;
    out += Xml(fmt::format("[{}] {}: {}{}{}\n", fsck::SeverityName(f.severity), f.slug,
                           f.image == r.filename ? "" : "in " + f.image + ": ", f.message,
                           Where(f).empty() ? "" : " (" + Where(f).substr(1) + ")"));
  }
  if (r.findings_suppressed) {
    out += fmt::format("({} more findings of the same kinds not listed)\n", r.findings_suppressed);
  }
  double seconds = id < run.seconds.size() ? run.seconds[id] : 0.0;
  std::string props;
  auto prop = [&](std::string_view name, const std::string& value) {
    props += fmt::format("      <property name=\"{}\" value=\"{}\"/>\n", name, Xml(value, true));
  };
  if (r.vm) {  // the VM this image is a disk of
    prop("domain", r.vm->domain);
    prop("target", r.vm->target);
    prop("bus", r.vm->bus);
    prop("guest-name", r.vm->guest_name);
  }
  prop("format", r.format);
  prop("exit-code", std::to_string(r.ExitCode()));
  prop("corruptions", std::to_string(r.corruptions));
  prop("leaks", std::to_string(r.leaks));
  prop("check-errors", std::to_string(r.check_errors + (r.failure ? 1 : 0)));
  prop("image-end-offset", std::to_string(r.image_end_offset));
  prop("allocated-clusters", std::to_string(r.allocated_clusters));
  prop("total-clusters", std::to_string(r.total_clusters));
  return fmt::format(
      "  <testsuite name=\"{0}\" package=\"{0}\" id=\"{1}\" timestamp=\"{2}\" hostname=\"{3}\" "
      "tests=\"{4}\" failures=\"{5}\" errors=\"{6}\" skipped=\"{7}\" time=\"{8:.3f}\">\n"
      "    <properties>\n{9}    </properties>\n{10}"
      "    <system-out>{11}</system-out>\n    <system-err>{12}</system-err>\n  </testsuite>\n",
      Xml(r.filename, true), id, timestamp, Xml(host, true), s.tests, s.failures, s.errors,
      s.skipped, seconds, props, s.body, out, r.failure ? Xml(*r.failure) : "");
}

}  // namespace

void PrintJunit(std::FILE* out, std::span<const fsck::CheckResult> results, const RunInfo& run) {
  std::string timestamp = Timestamp(run.started), host = Hostname();
  fmt::print(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
  for (size_t i = 0; i < results.size(); ++i) {
    fmt::print(out, "{}", Testsuite(results[i], i, run, timestamp, host));
  }
  fmt::print(out, "</testsuites>\n");
}

}  // namespace imgcheck::cli
