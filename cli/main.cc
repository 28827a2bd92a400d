// imgcheck: the command line. `imgcheck IMAGE...` means `imgcheck check IMAGE...`.
// Exit codes follow qemu-img check: 0 clean, 1 check incomplete, 2 errors, 3 leaks only,
// 63 format without checks; with several images, the worst of them.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/report.h"
#include "fsck/check.h"

namespace {

using namespace imgcheck;

// Severity order of exit codes when several images are checked.
int Rank(int code) {
  switch (code) {
    case 1: return 4;
    case 2: return 3;
    case 3: return 2;
    case 63: return 1;
    default: return 0;
  }
}

int RunCheck(const std::vector<std::string>& images, const std::string& output, bool quiet,
             bool verbose, const fsck::CheckOptions& opts) {
  int worst = 0;
  cli::TextOptions text{.color = isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR"),
                        .quiet = quiet,
                        .verbose = verbose};
  for (const std::string& path : images) {
    fsck::CheckResult r = fsck::CheckImage(path, opts);
    int code = r.ExitCode();
    if (r.failure) fmt::print(stderr, "imgcheck: {}: {}\n", path, *r.failure);
    if (output == "json") {
      fmt::print("{}\n", cli::ToJson(r).dump(images.size() > 1 ? -1 : 2));
    } else {
      cli::PrintText(stdout, r, text);
    }
    if (Rank(code) > Rank(worst)) worst = code;
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  static const char* kCommands[] = {"check", "-h", "--help", "--version"};
  if (args.size() > 1 && std::find(std::begin(kCommands), std::end(kCommands), args[1]) ==
                             std::end(kCommands)) {
    args.insert(args.begin() + 1, "check");  // `imgcheck IMAGE` means check
  }

  CLI::App app{"imgcheck: offline qcow2 image inspector and checker"};
  app.set_version_flag("--version", "imgcheck 0.1.0");
  app.require_subcommand(1);

  auto* check = app.add_subcommand("check", "check images for leaks and corruptions (read-only)");
  std::vector<std::string> images;
  std::string output = "human";
  bool quiet = false, verbose = false, no_guest = false;
  fsck::CheckOptions opts;
  check->add_option("IMAGE", images, "image files (the disks of one VM, in order)")->required();
  check->add_option("--output", output, "human (default) or json")
      ->check(CLI::IsMember({"human", "json"}));
  check->add_flag("-q,--quiet", quiet, "print only the summary line");
  check->add_flag("-v,--verbose", verbose, "print informational findings too");
  check->add_flag("--no-guest", no_guest, "skip the guest (filesystem and boot) checks");
  check->add_flag("--deep", opts.deep, "also decompress every compressed cluster");

  std::vector<const char*> cargs;
  for (auto& a : args) cargs.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  if (check->parsed()) return RunCheck(images, output, quiet, verbose, opts);
  return 1;
}
