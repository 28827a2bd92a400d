// Policies: parsing (toml++) and applying. Every image rule is one row of kRules (key, value
// kind, violation test) and every guest rule one row of kGuestRules (key, slug, severity), so a
// new rule is one line here plus a line in the README.
#include "cli/policy.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace imgcheck::cli {
namespace {

using fsck::ImageFacts;
using fsck::Severity;
using Why = std::optional<std::string>;  // why the image breaks a rule; nullopt: it follows it

enum class Kind { kBool, kSize, kSizes, kDepth, kCompat };

struct RuleDef {
  std::string_view key;
  Kind kind;
  Why (*violation)(const RuleValue& v, const ImageFacts& f);
};

// "200 GiB" when exact, else bytes.
std::string Size(uint64_t n) {
  static constexpr std::string_view kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
  size_t u = 0;
  while (u + 1 < std::size(kUnits) && n >= 1024 && n % 1024 == 0) n /= 1024, ++u;
  return fmt::format("{} {}", n, kUnits[u]);
}

std::string_view CompatOf(uint32_t version) { return version == 2 ? "0.10" : "1.1"; }

constexpr RuleDef kRules[] = {
    {"allow_backing_file", Kind::kBool,
     [](const RuleValue& v, const ImageFacts& f) -> Why {
       if (std::get<bool>(v) || !f.has_backing) return {};
       return fmt::format(
           "the image has a backing file (a chain of {} images): flatten it with "
           "qemu-img convert",
           f.chain_depth);
     }},
    {"allow_internal_snapshots", Kind::kBool,
     [](const RuleValue& v, const ImageFacts& f) -> Why {
       if (std::get<bool>(v) || !f.snapshots) return {};
       return fmt::format("the image has {} internal snapshot(s)", f.snapshots);
     }},
    {"allow_bitmaps", Kind::kBool,
     [](const RuleValue& v, const ImageFacts& f) -> Why {
       if (std::get<bool>(v) || !f.bitmaps) return {};
       return fmt::format("the image has {} persistent bitmap(s)", f.bitmaps);
     }},
    {"allow_encryption", Kind::kBool,
     [](const RuleValue& v, const ImageFacts& f) -> Why {
       if (std::get<bool>(v) || !f.encrypted) return {};
       return std::string("the image is encrypted");
     }},
    {"require_compat", Kind::kCompat,
     [](const RuleValue& v, const ImageFacts& f) -> Why {
       const auto& want = std::get<std::string>(v);
       if (CompatOf(f.version) == want) return {};
       return fmt::format("the image is compat {} (qcow2 version {}), the policy requires {}",
                          CompatOf(f.version), f.version, want);
     }},
    {"max_virtual_size", Kind::kSize,
     [](const RuleValue& v, const ImageFacts& f) -> Why {
       uint64_t max = std::get<uint64_t>(v);
       if (f.virtual_size <= max) return {};
       return fmt::format("virtual size {} is larger than {}", Size(f.virtual_size), Size(max));
     }},
    {"cluster_sizes", Kind::kSizes,
     [](const RuleValue& v, const ImageFacts& f) -> Why {
       const auto& sizes = std::get<std::vector<uint64_t>>(v);
       if (std::find(sizes.begin(), sizes.end(), f.cluster_size) != sizes.end()) return {};
       std::vector<std::string> names;
       for (uint64_t s : sizes) names.push_back(Size(s));
       return fmt::format("cluster size {} is not one of {}", Size(f.cluster_size),
                          fmt::join(names, ", "));
     }},
    {"max_chain_depth", Kind::kDepth,
     [](const RuleValue& v, const ImageFacts& f) -> Why {
       uint64_t max = std::get<uint64_t>(v);
       if (f.chain_depth <= max) return {};
       return fmt::format("the backing chain has {} images, at most {} allowed", f.chain_depth,
                          max);
     }},
};

// Guest rules re-grade findings of the guest layer by slug (the guest layer decides what a
// finding is; the policy decides how much it matters).
struct GuestRuleDef {
  std::string_view key;
  std::string_view slug;
  Severity severity;
};
constexpr GuestRuleDef kGuestRules[] = {
    // /dev/sdX and /dev/vdX names change with the bus and the disk order: UUID=, LABEL= or
    // /dev/disk/by-* only, whatever the mount point.
    {"fstab_require_stable_names", "fstab.raw-device", Severity::kError},
};

constexpr std::string_view kTopKeys[] = {"severity", "ignore", "guest"};  // besides kRules

// Edit distance, for "did you mean" on misspelt keys and slugs.
size_t Distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for the closest candidate within a few edits, else "".
template <class Names>
std::string Suggest(std::string_view wrong, const Names& names) {
  std::string_view best;
  size_t best_d = std::max<size_t>(2, wrong.size() / 4) + 1;
  for (std::string_view n : names) {
    if (size_t d = Distance(wrong, n); d < best_d) best = n, best_d = d;
  }
  return best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best);
}

// An error in the policy file, at a position; the earliest one is reported.
struct Error {
  toml::source_position at;
  std::string what;
};

class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  tl::expected<Policy, std::string> Parse(const toml::table& doc) {
    for (auto&& [key, node] : doc) TopLevel(key, node);
    CheckGuestConflicts(doc);
    if (errors_.empty()) return std::move(policy_);
    auto first =
        std::min_element(errors_.begin(), errors_.end(), [](const Error& a, const Error& b) {
          return std::pair(a.at.line, a.at.column) < std::pair(b.at.line, b.at.column);
        });
    return tl::unexpected(Where(first->at) + first->what);
  }

  std::string Where(toml::source_position at) const {
    return fmt::format("{}:{}:{}: ", source_, at.line, at.column);
  }

 private:
  void Fail(const toml::node& n, std::string what) {
    errors_.push_back({n.source().begin, std::move(what)});
  }
  void Fail(const toml::key& k, std::string what) {
    errors_.push_back({k.source().begin, std::move(what)});
  }

  void TopLevel(const toml::key& key, const toml::node& node) {
    std::string_view k = key.str();
    auto rule = std::find_if(std::begin(kRules), std::end(kRules),
                             [&](const RuleDef& d) { return d.key == k; });
    if (rule != std::end(kRules)) {
      if (auto v = Value(rule->kind, k, node)) policy_.rules.emplace(k, std::move(*v));
    } else if (k == "severity") {
      if (!node.is_table()) return Fail(node, "severity must be a table of slug = severity");
      Severities(*node.as_table(), "");
    } else if (k == "ignore") {
      Ignores(node);
    } else if (k == "guest") {
      Guest(node);
    } else {
      std::vector<std::string_view> known;
      for (const RuleDef& d : kRules) known.push_back(d.key);
      known.insert(known.end(), std::begin(kTopKeys), std::end(kTopKeys));
      std::string hint = Suggest(k, known);
      Fail(key, hint.empty()
                    ? fmt::format("unknown key '{}' (known: {})", k, fmt::join(known, ", "))
                    : fmt::format("unknown key '{}'{}", k, hint));
    }
  }

  std::optional<RuleValue> Value(Kind kind, std::string_view key, const toml::node& n) {
    switch (kind) {
      case Kind::kBool:
        if (auto b = n.value_exact<bool>()) return *b;
        Fail(n, fmt::format("{} must be true or false", key));
        return {};
      case Kind::kCompat:
        if (auto s = n.value_exact<std::string>(); s && (*s == "0.10" || *s == "1.1")) return *s;
        Fail(n, fmt::format("{} must be \"0.10\" or \"1.1\"", key));
        return {};
      case Kind::kSize:
        if (auto v = Bytes(n)) return *v;
        Fail(n, fmt::format("{} must be a size such as \"200G\" (K, M, G, T, P) or bytes", key));
        return {};
      case Kind::kDepth:
        if (auto v = n.value_exact<int64_t>(); v && *v >= 1 && *v <= UINT32_MAX) {
          return static_cast<uint64_t>(*v);
        }
        Fail(n, fmt::format("{} must be a whole number of images, at least 1", key));
        return {};
      case Kind::kSizes: return ClusterSizes(key, n);
    }
    return {};
  }

  static std::optional<uint64_t> Bytes(const toml::node& n) {
    if (auto i = n.value_exact<int64_t>()) {
      if (*i >= 0) return static_cast<uint64_t>(*i);
    } else if (auto s = n.value_exact<std::string>()) {
      return ParseSize(*s);
    }
    return {};
  }

  std::optional<RuleValue> ClusterSizes(std::string_view key, const toml::node& n) {
    const toml::array* a = n.as_array();
    if (!a || a->empty()) {
      Fail(n, fmt::format("{} must be a non-empty list of sizes, e.g. [65536, \"2M\"]", key));
      return {};
    }
    std::vector<uint64_t> sizes;
    for (const toml::node& e : *a) {
      auto v = Bytes(e);
      if (!v) {
        Fail(e, fmt::format("{}: each size must be bytes or a string such as \"64K\"", key));
        return {};
      }
      // The sizes qcow2 allows: a power of two from 512 bytes to 2 MiB.
      if (*v < 512 || *v > (2u << 20) || (*v & (*v - 1))) {
        Fail(e, fmt::format("{}: {} is not a qcow2 cluster size (a power of two from 512 to "
                            "2M)",
                            key, *v));
        return {};
      }
      sizes.push_back(*v);
    }
    return sizes;
  }

  // The problem table row of a slug a policy names, or an error.
  const fsck::ProblemDef* Slug(const toml::node& at, std::string_view slug) {
    for (const fsck::ProblemDef& d : fsck::ProblemTable()) {
      if (d.slug != slug) continue;
      if (!d.check_error) return &d;
      Fail(at, fmt::format("{} means the check could not complete: a policy cannot ignore or "
                           "re-grade it",
                           slug));
      return nullptr;
    }
    std::vector<std::string_view> slugs;
    for (const fsck::ProblemDef& d : fsck::ProblemTable()) slugs.push_back(d.slug);
    std::string hint = Suggest(slug, slugs);
    Fail(at,
         fmt::format("unknown finding slug '{}'{}", slug,
                     hint.empty() ? " (the slugs are the rule ids of `--output sarif`)" : hint));
    return nullptr;
  }

  // [severity]: "slug" = "error"; an unquoted dotted slug (refcount.leak = ...) is a nested
  // table in TOML, so nested keys are joined back with dots.
  void Severities(const toml::table& t, const std::string& prefix) {
    for (auto&& [key, node] : t) {
      std::string slug = prefix + std::string(key.str());
      if (const toml::table* sub = node.as_table()) {
        Severities(*sub, slug + ".");
        continue;
      }
      if (!Slug(node, slug)) continue;
      auto s = node.value_exact<std::string>();
      static constexpr Severity kAll[] = {Severity::kInfo, Severity::kWarning, Severity::kLeak,
                                          Severity::kError};
      auto it = std::find_if(std::begin(kAll), std::end(kAll),
                             [&](Severity v) { return s && fsck::SeverityName(v) == *s; });
      if (it == std::end(kAll)) {
        Fail(node, fmt::format("severity of {} must be \"info\", \"warning\", \"leak\" or "
                               "\"error\"",
                               slug));
        continue;
      }
      policy_.severity[slug] = *it;
    }
  }

  void Ignores(const toml::node& n) {
    const toml::array* a = n.as_array();
    if (!a) return Fail(n, "ignore must be a list of finding slugs");
    for (const toml::node& e : *a) {
      auto s = e.value_exact<std::string>();
      if (!s) {
        Fail(e, "ignore must be a list of finding slugs");
      } else if (Slug(e, *s)) {
        policy_.ignore.insert(*s);
      }
    }
  }

  void Guest(const toml::node& n) {
    const toml::table* t = n.as_table();
    if (!t) return Fail(n, "guest must be a table of guest rules");
    for (auto&& [key, node] : *t) {
      const std::string_view name = key.str();  // clang 14 cannot capture a structured binding
      auto rule = std::find_if(std::begin(kGuestRules), std::end(kGuestRules),
                               [&](const GuestRuleDef& d) { return d.key == name; });
      if (rule == std::end(kGuestRules)) {
        std::vector<std::string_view> known;
        for (const GuestRuleDef& d : kGuestRules) known.push_back(d.key);
        Fail(key, fmt::format("unknown guest rule '{}' (known: {})", key.str(),
                              fmt::join(known, ", ")));  // few: all listed
      } else if (auto on = node.value_exact<bool>(); !on) {
        Fail(node, fmt::format("guest.{} must be true or false", key.str()));
      } else if (*on) {
        policy_.guest.insert(std::string(key.str()));
      }
    }
  }

  // A guest rule fixes its slug's severity: an ignore or a different [severity] for the same
  // slug contradicts it. Checked after the whole file (tables come in any order).
  void CheckGuestConflicts(const toml::table& doc) {
    for (const GuestRuleDef& d : kGuestRules) {
      if (!policy_.guest.count(d.key)) continue;
      const toml::node& at = *doc.at_path(fmt::format("guest.{}", d.key)).node();
      auto sev = policy_.severity.find(d.slug);
      if (policy_.ignore.count(d.slug) ||
          (sev != policy_.severity.end() && sev->second != d.severity)) {
        Fail(at, fmt::format("guest.{} makes {} an {}, but the policy also ignores or re-grades "
                             "it",
                             d.key, d.slug, fsck::SeverityName(d.severity)));
        continue;
      }
      policy_.severity[std::string(d.slug)] = d.severity;
    }
  }

  std::string_view source_;
  Policy policy_;
  std::vector<Error> errors_;
};

// What a finding adds to corruptions or leaks under a severity (as fsck::Sink counts it).
void Tally(fsck::CheckResult& r, Severity s, uint64_t count, bool add) {
  uint64_t* counter = s == Severity::kError  ? &r.corruptions
                      : s == Severity::kLeak ? &r.leaks
                                             : nullptr;
  if (!counter) return;
  // Saturating: every listed finding was counted by a Sink, but never let a counter wrap.
  *counter = add ? *counter + count : *counter - std::min(*counter, count);
}

}  // namespace

std::optional<uint64_t> ParseSize(std::string_view s) {
  static constexpr std::string_view kUnits = "KMGTP";
  uint64_t n = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    if (n > (UINT64_MAX - 9) / 10) return {};
    n = n * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  if (i == 0) return {};
  std::string_view unit = s.substr(i);
  if (unit.empty()) return n;
  size_t power = kUnits.find(static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0]))));
  if (power == std::string_view::npos || (unit.size() > 1 && unit.substr(1) != "iB")) return {};
  for (size_t p = 0; p <= power; ++p) {
    if (n > UINT64_MAX / 1024) return {};
    n *= 1024;
  }
  return n;
}

tl::expected<Policy, std::string> ParsePolicy(std::string_view text, std::string_view source) {
  Parser parser(source);
  try {
    toml::table doc = toml::parse(text, source);
    return parser.Parse(doc);
  } catch (const toml::parse_error& e) {
    std::string what(e.description());
    std::replace(what.begin(), what.end(), '\n', ' ');  // one line
    if (!what.empty()) {  // lower-case, as our messages are
      what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
    }
    return tl::unexpected(parser.Where(e.source().begin) + "invalid TOML: " + what);
  }
}

tl::expected<Policy, std::string> LoadPolicy(const std::string& path) {
  // A policy is a small text file: refuse FIFOs and devices (they could block or never end).
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec)) {
    return tl::unexpected(fmt::format("{}: the policy is not a regular file", path));
  }
  if (std::filesystem::is_regular_file(path, ec) && std::filesystem::file_size(path, ec) > (16u << 20)) {
    return tl::unexpected(fmt::format("{}: the policy file is larger than 16 MiB", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return tl::unexpected(fmt::format("{}: cannot read the policy file", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParsePolicy(text.str(), path);
}

void ApplyPolicy(const Policy& policy, fsck::CheckResult& r) {
  if (r.facts) {  // qcow2 images whose header could be read
    fsck::Sink sink(r, r.filename);
    for (const RuleDef& d : kRules) {
      auto v = policy.rules.find(d.key);
      if (v == policy.rules.end()) continue;
      if (Why why = d.violation(v->second, *r.facts)) {
        sink.Report(fsck::P::kPolicyViolation, {.name = std::string(d.key), .detail = *why});
      }
    }
  }
  for (fsck::Finding& f : r.findings) {
    bool ignored = policy.ignore.count(f.slug) > 0;
    auto to = policy.severity.find(f.slug);
    if (!ignored && to == policy.severity.end()) continue;
    Tally(r, f.severity, f.count, false);
    if (ignored) continue;  // dropped below
    f.severity = to->second;
    Tally(r, f.severity, f.count, true);
  }
  std::erase_if(r.findings, [&](const fsck::Finding& f) { return policy.ignore.count(f.slug); });
}

}  // namespace imgcheck::cli
