// Policies: a TOML file of house rules for VM templates (`imgcheck check --policy FILE`).
// Rules turn image properties (fsck::ImageFacts) into `policy.violation` error findings; a
// `[severity]` table and an `ignore` list then change or drop findings of any code (guest ones
// included), and the counters and exit code are recomputed to match.
//
//   allow_backing_file = false        # also allow_internal_snapshots, allow_bitmaps,
//   allow_encryption = false          #      allow_encryption (each: absent = allowed)
//   require_compat = "1.1"            # "0.10" (qcow2 v2) or "1.1" (v3), exactly
//   max_virtual_size = "200G"         # K M G T P (powers of 1024), or plain bytes
//   cluster_sizes = [65536, "2M"]     # allowed cluster sizes
//   max_chain_depth = 1               # images in the backing chain, the named one included
//   ignore = ["header.dirty-bit"]     # slugs whose findings are dropped
//   [severity]
//   "refcount.leak" = "error"         # slug = info | warning | leak | error
//   [guest]
//   fstab_require_stable_names = true # every fstab.raw-device finding is an error
//
// Unknown keys, unknown slugs and values of the wrong type are errors, so a typo cannot make a
// rule silently absent. Deliberately not possible: ignoring or re-grading a finding that makes
// the check incomplete (exit 1, e.g. metadata.limit): a policy cannot vouch for what was not
// checked.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <variant>
#include <vector>

#include "fsck/report.h"

namespace imgcheck::cli {

// The value of an image rule, by kind: bool (allow_*), uint64_t (sizes, depth), std::string
// (compat level), a list of sizes (cluster_sizes).
using RuleValue = std::variant<bool, uint64_t, std::string, std::vector<uint64_t>>;

struct Policy {
  std::map<std::string, RuleValue, std::less<>> rules;          // image rules given, by key
  std::map<std::string, fsck::Severity, std::less<>> severity;  // slug -> new severity
  std::set<std::string, std::less<>> ignore;                    // slugs dropped
  std::set<std::string, std::less<>> guest;                     // [guest] rules switched on, by key
};

// Parses policy text; `source` names it in errors. An error is one line: "SOURCE:LINE:COL: what".
tl::expected<Policy, std::string> ParsePolicy(std::string_view text, std::string_view source);
tl::expected<Policy, std::string> LoadPolicy(const std::string& path);

// "200G", "64K", "512" -> bytes (K M G T P are powers of 1024); nullopt if malformed or too big.
std::optional<uint64_t> ParseSize(std::string_view s);

// Reports every violated image rule to the result's sink, then applies severity overrides and
// ignores to all findings, recomputing corruptions and leaks (chain links too). Findings beyond
// the sink's per-code cap are not listed, so their share of the counters cannot be re-graded:
// it keeps the severity the check gave it.
void ApplyPolicy(const Policy& policy, fsck::CheckResult& result);

}  // namespace imgcheck::cli
