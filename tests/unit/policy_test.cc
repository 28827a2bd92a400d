// The policy parser and ApplyPolicy: every rule kind parses and checks, errors name their line,
// unknown keys and slugs are refused, and re-grading keeps the counters (and so the exit code)
// consistent with the findings.
#include "cli/policy.h"

#include <gtest/gtest.h>

namespace imgcheck::cli {
namespace {

using fsck::CheckResult;
using fsck::ImageFacts;
using fsck::P;
using fsck::Severity;

Policy Parse(std::string_view text) {
  auto p = ParsePolicy(text, "p.toml");
  EXPECT_TRUE(p.has_value()) << p.error();
  return p ? *p : Policy{};
}

std::string ErrorOf(std::string_view text) {
  auto p = ParsePolicy(text, "p.toml");
  EXPECT_FALSE(p.has_value());
  return p ? "" : p.error();
}

// A v3, 64 KiB-cluster, 1 GiB image without backing file, snapshots, bitmaps or encryption.
CheckResult Image(ImageFacts facts = {}) {
  CheckResult r;
  r.filename = "a.qcow2";
  if (!facts.version) facts.version = 3;
  if (!facts.cluster_size) facts.cluster_size = 65536;
  if (!facts.virtual_size) facts.virtual_size = 1ull << 30;
  if (!facts.chain_depth) facts.chain_depth = 1;
  r.facts = facts;
  return r;
}

std::vector<std::string> Violations(const Policy& p, CheckResult r) {
  ApplyPolicy(p, r);
  std::vector<std::string> out;
  for (const auto& f : r.findings) {
    if (f.code == P::kPolicyViolation) out.push_back(f.message);
  }
  return out;
}

TEST(ParseSize, UnitsArePowersOf1024) {
  EXPECT_EQ(ParseSize("512"), 512u);
  EXPECT_EQ(ParseSize("64K"), 65536u);
  EXPECT_EQ(ParseSize("64k"), 65536u);
  EXPECT_EQ(ParseSize("2M"), 2u << 20);
  EXPECT_EQ(ParseSize("200G"), 200ull << 30);
  EXPECT_EQ(ParseSize("1T"), 1ull << 40);
  EXPECT_EQ(ParseSize("3P"), 3ull << 50);
  EXPECT_EQ(ParseSize("64KiB"), 65536u);
  EXPECT_FALSE(ParseSize(""));
  EXPECT_FALSE(ParseSize("G"));
  EXPECT_FALSE(ParseSize("1.5G"));
  EXPECT_FALSE(ParseSize("10X"));
  EXPECT_FALSE(ParseSize("10GB"));  // ambiguous (10^9 or 2^30): refused
  EXPECT_FALSE(ParseSize("-1"));
  EXPECT_FALSE(ParseSize("16385P"));                // overflows 64 bits
  EXPECT_FALSE(ParseSize("99999999999999999999"));  // too
}

TEST(ParsePolicy, EveryKey) {
  Policy p = Parse(R"(
allow_backing_file = false
allow_internal_snapshots = false
allow_bitmaps = true
allow_encryption = false
require_compat = "1.1"
max_virtual_size = "200G"
cluster_sizes = [65536, "2M"]
max_chain_depth = 1
ignore = ["header.dirty-bit"]
[severity]
"refcount.leak" = "error"
bitmap.in-use = "info"
[guest]
fstab_require_stable_names = true
)");
  EXPECT_EQ(std::get<bool>(p.rules.at("allow_backing_file")), false);
  EXPECT_EQ(std::get<bool>(p.rules.at("allow_bitmaps")), true);
  EXPECT_EQ(std::get<std::string>(p.rules.at("require_compat")), "1.1");
  EXPECT_EQ(std::get<uint64_t>(p.rules.at("max_virtual_size")), 200ull << 30);
  EXPECT_EQ(std::get<std::vector<uint64_t>>(p.rules.at("cluster_sizes")),
            (std::vector<uint64_t>{65536, 2u << 20}));
  EXPECT_EQ(std::get<uint64_t>(p.rules.at("max_chain_depth")), 1u);
  EXPECT_EQ(p.ignore, (std::set<std::string, std::less<>>{"header.dirty-bit"}));
  EXPECT_EQ(p.severity.at("refcount.leak"), Severity::kError);
  EXPECT_EQ(p.severity.at("bitmap.in-use"), Severity::kInfo);      // dotted key, unquoted
  EXPECT_EQ(p.severity.at("fstab.raw-device"), Severity::kError);  // from the guest rule
  EXPECT_TRUE(p.guest.count("fstab_require_stable_names"));
}

TEST(ParsePolicy, EmptyPolicyIsValid) {
  Policy p = Parse("# nothing\n");
  EXPECT_TRUE(p.rules.empty());
  EXPECT_TRUE(p.severity.empty());
}

TEST(ParsePolicy, SyntaxErrorNamesItsLine) {
  std::string e = ErrorOf("allow_bitmaps = true\nmax_chain_depth = = 2\n");
  EXPECT_TRUE(e.starts_with("p.toml:2:")) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

TEST(ParsePolicy, UnknownKeysAreErrors) {
  EXPECT_TRUE(ErrorOf("\n\nallow_snapshots = false\n").starts_with("p.toml:3:")) << "typo";
  EXPECT_NE(ErrorOf("allow_snapshots = false\n").find("allow_internal_snapshots"),
            std::string::npos);  // the known keys are listed
  EXPECT_TRUE(ErrorOf("[guest]\nfstab_stable = true\n").starts_with("p.toml:2:"));
  EXPECT_TRUE(ErrorOf("[other]\n").starts_with("p.toml:1:"));
}

TEST(ParsePolicy, WrongTypesAndValues) {
  for (std::string_view text : {
           "allow_bitmaps = \"no\"",
           "require_compat = \"1.0\"",
           "require_compat = 1.1",
           "max_virtual_size = \"200 G\"",
           "max_virtual_size = -5",
           "max_virtual_size = 2.5",
           "cluster_sizes = []",
           "cluster_sizes = [3000]",
           "cluster_sizes = [\"4M\"]",
           "cluster_sizes = 65536",
           "max_chain_depth = 0",
           "max_chain_depth = \"2\"",
           "ignore = \"refcount.leak\"",
           "ignore = [\"refcount.lek\"]",
           "severity = \"error\"",
           "[severity]\n\"refcount.leak\" = \"fatal\"",
           "[severity]\n\"no.such-slug\" = \"error\"",
           "[guest]\nfstab_require_stable_names = 1",
       }) {
    std::string e = ErrorOf(text);
    EXPECT_TRUE(e.starts_with("p.toml:")) << text << " -> " << e;
  }
}

TEST(ParsePolicy, CheckErrorsCannotBeWaived) {
  EXPECT_NE(ErrorOf("ignore = [\"metadata.limit\"]").find("could not complete"), std::string::npos);
  EXPECT_NE(ErrorOf("[severity]\n\"header.invalid-field\" = \"info\"").find("could not complete"),
            std::string::npos);
}

TEST(ParsePolicy, GuestRuleConflicts) {
  std::string e =
      ErrorOf("ignore = [\"fstab.raw-device\"]\n[guest]\nfstab_require_stable_names = true\n");
  EXPECT_TRUE(e.starts_with("p.toml:3:")) << e;
  ErrorOf(
      "[severity]\n\"fstab.raw-device\" = \"warning\"\n[guest]\nfstab_require_stable_names = true");
  Parse("[severity]\n\"fstab.raw-device\" = \"error\"\n[guest]\nfstab_require_stable_names = true");
  Policy off = Parse("[guest]\nfstab_require_stable_names = false\n");
  EXPECT_TRUE(off.severity.empty());
}

TEST(ApplyPolicy, EachRuleViolatedAndSatisfied) {
  struct Case {
    std::string_view policy;
    ImageFacts bad, good;
  };
  const Case cases[] = {
      {"allow_backing_file = false", {.has_backing = true, .chain_depth = 2}, {}},
      {"allow_internal_snapshots = false", {.snapshots = 2}, {}},
      {"allow_bitmaps = false", {.bitmaps = 1}, {}},
      {"allow_encryption = false", {.encrypted = true}, {}},
      {"require_compat = \"1.1\"", {.version = 2}, {.version = 3}},
      {"require_compat = \"0.10\"", {.version = 3}, {.version = 2}},
      {"max_virtual_size = \"1G\"",
       {.virtual_size = (1ull << 30) + 512},
       {.virtual_size = 1ull << 30}},
      {"cluster_sizes = [\"64K\"]", {.cluster_size = 2u << 20}, {.cluster_size = 65536}},
      {"max_chain_depth = 2", {.chain_depth = 3}, {.chain_depth = 2}},
  };
  for (const Case& c : cases) {
    Policy p = Parse(c.policy);
    std::string key(c.policy.substr(0, c.policy.find(' ')));
    auto bad = Violations(p, Image(c.bad));
    ASSERT_EQ(bad.size(), 1u) << c.policy;
    EXPECT_TRUE(bad[0].starts_with("policy rule " + key + ": ")) << bad[0];
    EXPECT_TRUE(Violations(p, Image(c.good)).empty()) << c.policy;
  }
  // allow_* = true allows.
  EXPECT_TRUE(Violations(Parse("allow_bitmaps = true"), Image({.bitmaps = 3})).empty());
}

TEST(ApplyPolicy, ViolationIsAnErrorThatSetsTheExitCode) {
  CheckResult r = Image({.snapshots = 1});
  ApplyPolicy(Parse("allow_internal_snapshots = false"), r);
  EXPECT_EQ(r.corruptions, 1u);
  EXPECT_EQ(r.ExitCode(), 2);
  EXPECT_EQ(r.findings.at(0).slug, "policy.violation");
}

TEST(ApplyPolicy, NoFactsNoRules) {  // a raw image or an unreadable header: rules do not apply
  CheckResult r;
  r.format_has_checks = false;
  ApplyPolicy(Parse("max_chain_depth = 1\nallow_bitmaps = false"), r);
  EXPECT_TRUE(r.findings.empty());
}

// A result with one leak of 3 clusters and one warning, counted the way a Sink counts.
CheckResult Leaky() {
  CheckResult r = Image();
  fsck::Sink sink(r, r.filename);
  sink.Report(P::kRefcountLeak, {.offset = 0x90000, .cluster = 9, .count = 3, .value = 1});
  sink.Report(P::kHeaderDirtyBit, {});
  return r;
}

TEST(ApplyPolicy, SeverityOverrideRecounts) {
  CheckResult r = Leaky();
  ASSERT_EQ(r.ExitCode(), 3);
  ApplyPolicy(Parse("[severity]\n\"refcount.leak\" = \"error\""), r);
  EXPECT_EQ(r.leaks, 0u);
  EXPECT_EQ(r.corruptions, 3u);
  EXPECT_EQ(r.ExitCode(), 2);
  EXPECT_EQ(r.findings.at(0).severity, Severity::kError);

  r = Leaky();
  ApplyPolicy(Parse("[severity]\n\"refcount.leak\" = \"warning\""), r);
  EXPECT_EQ(r.leaks, 0u);
  EXPECT_EQ(r.ExitCode(), 0);

  r = Leaky();  // a warning raised to an error
  ApplyPolicy(Parse("[severity]\nheader.dirty-bit = \"error\""), r);
  EXPECT_EQ(r.corruptions, 1u);
  EXPECT_EQ(r.leaks, 3u);
  EXPECT_EQ(r.ExitCode(), 2);
}

TEST(ApplyPolicy, IgnoreDropsAndRecounts) {
  CheckResult r = Leaky();
  ApplyPolicy(Parse("ignore = [\"refcount.leak\", \"header.dirty-bit\"]"), r);
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.leaks, 0u);
  EXPECT_EQ(r.ExitCode(), 0);
}

TEST(ApplyPolicy, PolicyViolationItselfCanBeRegraded) {
  CheckResult r = Image({.bitmaps = 1});
  ApplyPolicy(Parse("allow_bitmaps = false\n[severity]\n\"policy.violation\" = \"warning\""), r);
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].severity, Severity::kWarning);
  EXPECT_EQ(r.ExitCode(), 0);
}

TEST(ApplyPolicy, GuestRuleMakesRawDeviceAnError) {
  CheckResult r = Image();
  fsck::Sink sink(r, r.filename);
  // The guest layer may grade a raw device name below error (e.g. a nofail data mount).
  sink.Report(
      P::kFstabRawDevice,
      {.name = "/dev/vdb1", .file = "/etc/fstab", .line = 4, .severity = Severity::kWarning});
  ASSERT_EQ(r.ExitCode(), 0);
  ApplyPolicy(Parse("[guest]\nfstab_require_stable_names = true"), r);
  EXPECT_EQ(r.findings.at(0).severity, Severity::kError);
  EXPECT_EQ(r.ExitCode(), 2);
}

}  // namespace
}  // namespace imgcheck::cli
