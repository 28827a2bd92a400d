// imgcheck: the command line. `imgcheck IMAGE...` means `imgcheck check IMAGE...`.
// Exit codes follow qemu-img check: 0 clean, 1 check incomplete, 2 errors, 3 leaks only,
// 63 format without checks; with several images, the worst of them.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/batch.h"
#include "guestfs/guest_check.h"
#include "cli/policy.h"
#include "cli/repair_cmd.h"
#include "cli/report.h"
#include "fsck/chain.h"
#include "vm/checks.h"
#include "vm/resolve.h"

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

// Limits for untrusted input: a wall-clock alarm (one line, exit 1) and an address-space cap.
unsigned g_timeout = 0;

void OnAlarm(int) {
  char msg[128];
  int n = snprintf(msg, sizeof msg, "imgcheck: time limit of %u s reached; stopped\n", g_timeout);
  if (n > 0) (void)!write(STDERR_FILENO, msg, static_cast<size_t>(n));
  _exit(1);
}

void ApplyLimits(unsigned timeout, bool untrusted) {
  if (timeout) {
    g_timeout = timeout;
    signal(SIGALRM, OnAlarm);
    alarm(timeout);
  }
#if !defined(__SANITIZE_ADDRESS__) && !defined(__has_feature)
  constexpr bool kAsan = false;
#elif defined(__SANITIZE_ADDRESS__)
  constexpr bool kAsan = true;
#else
  constexpr bool kAsan = __has_feature(address_sanitizer);
#endif
  if (untrusted && !kAsan) {  // ASan reserves terabytes of address space
    struct rlimit lim {4ull << 30, 4ull << 30};
    setrlimit(RLIMIT_AS, &lim);
  }
}

// The options every command that names a VM shares: its disks (IMAGEs, or a domain) and how
// they are attached (vm/resolve.h builds the VM from them).
struct VmArgs {
  vm::MachineArgs machine;
  std::string bus;
  void Add(CLI::App* cmd, bool domain) {
    cmd->add_option("-f,--format", machine.format,
                    "declared format of the IMAGEs: used, never probed (qcow2 or raw)")
        ->check(CLI::IsMember({"qcow2", "raw"}));
    if (!domain) return;
    cmd->add_option("--domain-xml", machine.domain_xml,
                    "libvirt domain XML (virsh dumpxml) naming the disks; - for standard input");
    cmd->add_option("-d,--domain", machine.domain,
                    "libvirt domain NAME, read through libvirt (read-only, inactive XML)");
    cmd->add_option("-c,--connect", machine.connect, "libvirt URI for -d (e.g. qemu:///system)");
    cmd->add_option("--bus", bus, "how the IMAGEs are attached without a domain (default virtio)")
        ->check(CLI::IsMember({"virtio", "virtio-scsi", "sata", "scsi", "ide", "nvme", "usb"}));
  }
  // The VM, or one line on stderr and nullopt (exit 1).
  std::optional<vm::Machine> Resolve(const std::vector<std::string>& images) {
    machine.images = images;
    if (!bus.empty()) machine.bus = vm::ParseBus(bus);
    auto m = vm::ResolveMachine(machine);
    if (!m) {
      fmt::print(stderr, "imgcheck: {}\n", m.error().message);
      return std::nullopt;
    }
    if (vm::CheckableDisks(*m).empty()) {
      fmt::print(stderr, "imgcheck: {}\n",
                 m->assumed ? "no IMAGE given (or a domain: --domain-xml FILE, -d NAME)"
                            : fmt::format("domain {} has no disk that can be checked offline",
                                          m->domain));
      return std::nullopt;
    }
    return std::move(*m);
  }
};

// How `check` treats disk `d` of the VM: its chain options with the declared format.
fsck::ChainOptions DiskChain(const fsck::ChainOptions& chain, const vm::Machine& m,
                             const vm::Disk& d) {
  fsck::ChainOptions c = chain;
  if (d.format) c.format = fsck::DeclaredFormat{*d.format, !m.assumed};
  return c;
}

// The VM of the disks `from`..`to` of `m` (with --batch, each IMAGE is its own VM).
vm::Machine Part(const vm::Machine& m, size_t from, size_t to) {
  if (from == 0 && to == m.disks.size()) return m;
  vm::Machine part = m;
  part.disks.assign(m.disks.begin() + static_cast<ptrdiff_t>(from),
                    m.disks.begin() + static_cast<ptrdiff_t>(to));
  vm::PredictGuestNames(part);
  return part;
}

int RunCheck(const vm::Machine& machine, const cli::CheckRunOptions& run,
             const fsck::CheckOptions& opts, const fsck::ChainOptions& chain,
             const vm::VmCheckOptions& vm_opts, const std::optional<cli::Policy>& policy) {
  std::vector<const vm::Disk*> disks = vm::CheckableDisks(machine);
  std::vector<std::string> images;
  for (const vm::Disk* d : disks) images.push_back(d->path);
  int worst = 0;
  cli::TextOptions text{.color = isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR"),
                        .quiet = run.quiet,
                        .verbose = run.verbose};
  cli::RunInfo info{.seconds = std::vector<double>(images.size()),
                    .started = std::time(nullptr),
                    .policy = policy.has_value()};
  cli::Progress progress(run.progress, images.size());
  // 1. Format checks, one result per image, on `run.jobs` threads (cli/batch.h); results stay
  //    in argument order.
  std::vector<fsck::CheckResult> results(images.size());
  cli::RunParallel(
      images.size(), cli::Workers(run.jobs, images.size()),
      [&](size_t i) {
        auto t0 = std::chrono::steady_clock::now();
        results[i] = fsck::CheckChain(images[i], opts, DiskChain(chain, machine, *disks[i]));
        info.seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                              .count();
      },
      [&](size_t done) { progress.Update(done, "format checks"); });
  // The VM definition against its disks (vm/checks.h): chains as declared, permissions, ...
  if (run.batch) {
    for (size_t i = 0; i < results.size(); ++i) {
      std::vector<fsck::CheckResult> one{std::move(results[i])};
      vm::CheckVm(Part(machine, i, i + 1), one, vm_opts);
      results[i] = std::move(one.front());
    }
  } else {
    vm::CheckVm(machine, results, vm_opts);
  }
  // 2. Guest checks (guestfs/) add their findings to these results: one appliance per VM; the
  //    IMAGEs are the disks of one VM, or with --batch each is its own VM.
  if (!run.no_guest) {
    std::vector<std::vector<fsck::CheckResult*>> vms;
    for (fsck::CheckResult& r : results) {
      if (run.batch || vms.empty()) vms.emplace_back();
      vms.back().push_back(&r);
    }
    size_t done = 0;
    for (const auto& vm : vms) {
      progress.Update(done, "guest checks");
      // A network disk (not in the appliance) still takes its guest name: the machine is whole.
      vm::Machine m = run.batch ? Part(machine, done, done + 1) : machine;
      guest::GuestRun g =
          guest::RunGuestChecks(vm, guest::GuestOptions{.verbose = run.verbose, .machine = m});
      done += vm.size();
      if (!g.ran) {
        progress.Clear();
        fmt::print(stderr, "imgcheck: guest checks did not run: {}\n", g.reason);
      }
      info.guest |= g.ran;
    }
  }
  // Policy: rules over each image's facts, then severity overrides and ignores over all its
  // findings (guest ones included), so it comes after every check.
  if (policy) {
    for (fsck::CheckResult& r : results) cli::ApplyPolicy(*policy, r);
  }
  progress.Clear();
  // 3. Output, and the worst exit code.
  for (const fsck::CheckResult& r : results) {
    int code = r.ExitCode();
    if (r.failure) fmt::print(stderr, "imgcheck: {}: {}\n", r.filename, *r.failure);
    if (run.output == "json") {
      fmt::print("{}\n", cli::ToJson(r).dump(images.size() > 1 ? -1 : 2, ' ', false,
                                             nlohmann::json::error_handler_t::replace));
    } else if (run.output == "human") {
      cli::PrintText(stdout, r, text);
    }
    if (Rank(code) > Rank(worst)) worst = code;
  }
  if (run.output == "junit") cli::PrintJunit(stdout, results, info);
  if (run.output == "sarif") {
    fmt::print("{}\n", cli::ToSarif(results, info).dump(2, ' ', false,
                                                         nlohmann::json::error_handler_t::replace));
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  static const char* kCommands[] = {"check", "info", "repair", "undo", "-h", "--help",
                                    "--version"};
  if (args.size() > 1 && std::find(std::begin(kCommands), std::end(kCommands), args[1]) ==
                             std::end(kCommands)) {
    args.insert(args.begin() + 1, "check");  // `imgcheck IMAGE` means check
  }

  CLI::App app{"imgcheck: offline qcow2 image inspector and checker"};
  app.set_version_flag("--version", fmt::format("imgcheck {}", cli::kVersion));
  app.require_subcommand(1);

  auto* check = app.add_subcommand("check", "check images for leaks and corruptions (read-only)");
  std::vector<std::string> images;
  cli::CheckRunOptions run;
  std::string policy_path;
  bool check_no_progress = false;
  fsck::CheckOptions opts;
  check->add_option("IMAGE", images, "image files (the disks of one VM, in order)");
  VmArgs check_vm;
  check_vm.Add(check, true);
  vm::VmCheckOptions vm_opts;
  check->add_option("--qemu-user", vm_opts.qemu_user,
                    "USER[:GROUP] QEMU runs as (default: the domain's DAC label, qemu.conf, the "
                    "distribution's default); also asks for the permission checks without a "
                    "domain");
  check->add_option("--output", run.output, "human (default), json, junit or sarif")
      ->check(CLI::IsMember({"human", "json", "junit", "sarif"}));
  check->add_flag("-q,--quiet", run.quiet, "print only the summary line");
  check->add_flag("-v,--verbose", run.verbose, "print informational findings too");
  check->add_flag("--no-guest", run.no_guest, "skip the guest (filesystem and boot) checks");
  check->add_flag("--batch", run.batch, "each IMAGE is its own VM (not the disks of one VM)");
  check->add_option("-j,--jobs", run.jobs, "check this many images at once (0: one per CPU)")
      ->check(CLI::Range(0u, 1024u));
  check->add_option("--policy", policy_path, "TOML file of rules the images must follow");
  check->add_flag("--no-progress", check_no_progress, "no progress line on a terminal");
  check->add_flag("--deep", opts.deep, "also decompress every compressed cluster");
  fsck::ChainOptions chain;
  unsigned timeout = 0;
  check->add_flag("--untrusted", chain.untrusted,
                  "image from outside: open nothing but the named file (no backing or data "
                  "file), limit time and memory");
  check->add_option("--max-chain-depth", chain.max_depth, "most images in a backing chain")
      ->check(CLI::Range(1u, 100000u));
  check->add_option("--timeout", timeout, "stop after this many seconds (default 60 with "
                                          "--untrusted, else none)");

  auto* info = app.add_subcommand("info", "show everything about an image and its chain");
  std::string info_image, info_output = "human";
  fsck::ChainOptions info_chain;
  info->add_option("IMAGE", info_image, "image file");
  VmArgs info_vm;
  info_vm.Add(info, true);
  info->add_option("--output", info_output, "human (default) or json")
      ->check(CLI::IsMember({"human", "json"}));
  info->add_flag("--untrusted", info_chain.untrusted, "open nothing but the named file");

  auto* repair = app.add_subcommand("repair", "repair an image, backup first (undo journal)");
  std::string repair_image, repair_output = "human", backup_mode, rebase;
  fsck::RepairOptions ro;
  fsck::ApplyOptions ao;
  bool leaks_only = false, all = false, no_progress = false;
  repair->add_option("IMAGE", repair_image, "image file")->required();
  repair->add_option("-f,--format", ro.format,
                     "declared format: qcow2 (repaired) or raw (refused, never written)")
      ->check(CLI::IsMember({"qcow2", "raw"}));
  auto* leaks_flag = repair->add_flag("--leaks", leaks_only, "only fix leaked clusters");
  repair->add_flag("--all", all, "every fix that keeps guest data (default)")->excludes(leaks_flag);
  repair->add_flag("--dry-run", ao.dry_run, "print the plan, write nothing");
  repair->add_option("--journal", ao.journal_path, "undo journal path (default IMAGE.imgcheck-undo)");
  repair->add_option("--backup", backup_mode, "also make a full sparse copy first")
      ->check(CLI::IsMember({"copy"}));
  repair->add_flag("--allow-data-loss", ro.allow_data_loss,
                   "also apply fixes that change guest data (reported range by range)");
  repair->add_option("--rebase-backing", rebase, "point the image at this backing file");
  repair->add_option("--output", repair_output, "human (default) or json")
      ->check(CLI::IsMember({"human", "json"}));
  repair->add_flag("--no-progress", no_progress, "no progress line on a terminal");

  auto* undo = app.add_subcommand("undo", "restore an image from a repair's undo journal");
  std::string journal, undo_image, undo_output = "human";
  bool undo_dry = false;
  undo->add_option("JOURNAL", journal, "the journal a repair wrote")->required();
  undo->add_option("IMAGE", undo_image, "the image (default: the path in the journal)");
  undo->add_flag("--dry-run", undo_dry, "check and print, write nothing");
  undo->add_option("--output", undo_output, "human (default) or json")
      ->check(CLI::IsMember({"human", "json"}));

  std::vector<const char*> cargs;
  for (auto& a : args) cargs.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  if (check->parsed()) {
    std::optional<cli::Policy> policy;
    if (!policy_path.empty()) {  // an invalid policy stops everything before any check
      auto loaded = cli::LoadPolicy(policy_path);
      if (!loaded) {
        fmt::print(stderr, "imgcheck: {}\n", loaded.error());
        return 1;
      }
      policy = std::move(*loaded);
    }
    run.progress = !check_no_progress && run.output == "human" && isatty(STDOUT_FILENO) &&
                   isatty(STDERR_FILENO);
    if (chain.untrusted && !timeout) timeout = 60;
    if (run.batch && (check_vm.machine.domain_xml || check_vm.machine.domain)) {
      fmt::print(stderr, "imgcheck: --batch checks IMAGEs as separate VMs; a domain is one VM\n");
      return 1;
    }
    auto machine = check_vm.Resolve(images);
    if (!machine) return 1;
    ApplyLimits(timeout, chain.untrusted);
    return RunCheck(*machine, run, opts, chain, vm_opts, policy);
  }
  if (repair->parsed()) {
    ro.mode = leaks_only ? fsck::RepairMode::kLeaks : fsck::RepairMode::kAll;
    ao.backup_copy = backup_mode == "copy";
    ao.progress = !no_progress && repair_output == "human" && isatty(STDERR_FILENO);
    if (!rebase.empty()) ro.rebase_backing = rebase;
    return cli::RunRepair(repair_image, ro, ao, repair_output == "json");
  }
  if (undo->parsed()) return cli::RunUndo(journal, undo_image, undo_dry, undo_output == "json");
  if (info->parsed()) {
    auto machine = info_vm.Resolve(info_image.empty() ? std::vector<std::string>{}
                                                      : std::vector<std::string>{info_image});
    if (!machine) return 1;
    ApplyLimits(info_chain.untrusted ? 60 : 0, info_chain.untrusted);
    std::vector<fsck::ImageInfo> infos;
    for (const vm::Disk* d : vm::CheckableDisks(*machine)) {
      infos.push_back(fsck::CollectInfo(d->path, DiskChain(info_chain, *machine, *d)));
      if (infos.back().failure) {
        fmt::print(stderr, "imgcheck: {}: {}\n", d->path, *infos.back().failure);
      }
    }
    bool failed = std::any_of(infos.begin(), infos.end(),
                              [](const fsck::ImageInfo& i) { return i.failure.has_value(); });
    if (machine->assumed) {  // one image: the output as it always was
      if (info_output == "json") {
        fmt::print("{}\n", cli::InfoToJson(infos.front()).dump(2));
      } else {
        cli::PrintInfoText(stdout, infos.front());
      }
      return failed ? 1 : 0;
    }
    if (info_output == "json") {
      nlohmann::ordered_json j{{"domain", cli::MachineToJson(*machine)}};
      j["disks"] = nlohmann::ordered_json::array();
      for (const fsck::ImageInfo& i : infos) j["disks"].push_back(cli::InfoToJson(i));
      fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      cli::PrintMachineText(stdout, *machine);
      for (const fsck::ImageInfo& i : infos) {
        fmt::print("\n");
        cli::PrintInfoText(stdout, i);
      }
    }
    return failed ? 1 : 0;
  }
  return 1;
}
