// Rendering check results: human text for people, JSON for machines, JUnit XML and SARIF for
// CI systems.
#pragma once

#include <cstdio>
#include <ctime>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fsck/info.h"
#include "fsck/report.h"
#include "vm/machine.h"

namespace imgcheck::cli {

inline constexpr std::string_view kVersion = "0.1.0";

struct TextOptions {
  bool color = false;
  bool quiet = false;
  bool verbose = false;
};

void PrintText(std::FILE* out, const fsck::CheckResult& r, const TextOptions& opts);
nlohmann::ordered_json ToJson(const fsck::CheckResult& r);
// One image of a backing chain; with `counters`, its own errors, leaks and check errors.
nlohmann::ordered_json ChainLinkJson(const fsck::ChainLink& l, bool counters);

// What the CI reports need beyond the results of a run.
struct RunInfo {
  std::vector<double> seconds;  // per image: how long its check took
  std::time_t started = 0;      // when the run began
  bool policy = false;          // a policy was applied: report the policy family
  bool guest = false;           // the guest phase ran: report the guest families
};

// JUnit XML (the Ant schema CI systems read): one testsuite per image, one testcase per check
// family, one more per error or leak finding, holding its <failure>.
void PrintJunit(std::FILE* out, std::span<const fsck::CheckResult> results, const RunInfo& run);
// A SARIF 2.1.0 log: the problem table as rules, one result per finding.
nlohmann::ordered_json ToSarif(std::span<const fsck::CheckResult> results, const RunInfo& run);

void PrintInfoText(std::FILE* out, const fsck::ImageInfo& info);
nlohmann::ordered_json InfoToJson(const fsck::ImageInfo& info);

// The VM as imgcheck understood a domain: machine, firmware, every disk with its bus, target,
// predicted guest name and declared format (`imgcheck info --domain-xml`).
void PrintMachineText(std::FILE* out, const vm::Machine& m);
nlohmann::ordered_json MachineToJson(const vm::Machine& m);
// "vm" in a check result's JSON: the domain and the disk's target (nullopt without a domain).
nlohmann::ordered_json VmDiskJson(const fsck::VmDisk& d);

}  // namespace imgcheck::cli
