#include "guestfs/guest_check.h"

#include <fmt/format.h>

#include <chrono>

#include "guestfs/appliance.h"
#include "guestfs/model.h"
#include "guestfs/rules.h"
#include "vm/checks.h"

namespace imgcheck::guest {

GuestRun RunGuest(const std::vector<fsck::CheckResult*>& results, const GuestOptions& opts);

void Reporter::Report(fsck::P code, fsck::Fields f) {
  fsck::CheckResult* target = disks_.front();
  for (fsck::CheckResult* d : disks_) {
    if (!f.disk.empty() && d->filename == f.disk) target = d;
  }
  f.disk.clear();
  fsck::Sink(*target, target->filename).Report(code, f);
}

GuestRun RunGuestChecks(const std::vector<fsck::CheckResult*>& results, const GuestOptions& opts) {
  GuestRun run = RunGuest(results, opts);
  results.front()->guest = run;
  return run;
}

GuestRun RunGuest(const std::vector<fsck::CheckResult*>& results, const GuestOptions& opts) {
  GuestRun run;
  auto start = std::chrono::steady_clock::now();
  Reporter rep(results);
  const vm::Machine& m = opts.machine;
  std::vector<const vm::Disk*> vm_disks = vm::CheckableDisks(m);
  std::vector<Disk> disks;
  for (fsck::CheckResult* r : results) {
    // A disk QEMU could not open is not given to the appliance.
    if (r->failure || (r->format == "qcow2" && r->ExitCode() == 1)) {
      run.reason = fmt::format("{} cannot be opened safely ({})", r->filename,
                               r->failure ? *r->failure : "its format check did not complete");
      rep.Report(fsck::P::kGuestNotRun, fsck::Fields{.detail = run.reason});
      return run;
    }
    // What QEMU opens: the declared (or probed) format; a disk declared raw that holds a
    // qcow2 header shows the guest that header, and so does the appliance.
    size_t i = disks.size();
    disks.push_back(Disk{r->filename, r->format == "qcow2" ? "qcow2" : "raw",
                         i < vm_disks.size() ? vm_disks[i]->guest_name
                                             : "vd" + vm::DiskLetters(static_cast<unsigned>(i))});
  }
  if (m.assumed) {  // said once: what the guest rules take for granted
    std::vector<std::string> names;
    for (const Disk& d : disks) names.push_back(d.guest_name);
    std::string bus = vm_disks.empty() ? "virtio" : std::string(vm::BusName(vm_disks.front()->bus));
    rep.Report(fsck::P::kVmAssumedDefaults,
               fsck::Fields{.detail = fmt::format(
                                "libvirt's defaults: {} disks ({}), BIOS firmware, machine type {}",
                                bus == "virtio" ? "virtio-blk" : bus, fmt::join(names, ", "),
                                m.machine_type.empty() ? "pc" : m.machine_type)});
  }
  std::string why;
  auto app = Appliance::Launch(disks, opts.verbose, why);
  if (!app) {
    run.reason = "the libguestfs appliance did not start: " + why;
    rep.Report(fsck::P::kGuestNotRun, fsck::Fields{.detail = run.reason});
    return run;
  }
  run.ran = true;
  run.backend = app->backend();
  run.launch_seconds = app->launch_seconds();
  if (app->fallback()) {
    fmt::print(stderr, "imgcheck: {}\n", *app->fallback());
    rep.Report(fsck::P::kGuestTcgFallback, fsck::Fields{.detail = *app->fallback()});
  }
  if (opts.verbose) {
    fmt::print(stderr, "imgcheck: guest appliance started in {:.1f} s ({})\n", run.launch_seconds,
               run.backend);
  }
  auto lap = [&, t = std::chrono::steady_clock::now()](const char* what) mutable {
    auto now = std::chrono::steady_clock::now();
    if (opts.verbose) {
      fmt::print(stderr, "imgcheck: guest: {} {:.2f} s\n", what,
                 std::chrono::duration<double>(now - t).count());
    }
    t = now;
  };
  Guest g = Guest::Collect(*app, disks);
  for (size_t i = 0; i < g.disks.size() && i < vm_disks.size(); ++i) {
    g.disks[i].bus = vm_disks[i]->bus;
    g.disks[i].controller_model = vm_disks[i]->controller_model;
  }
  if (opts.verbose) {
    fmt::print(stderr, "imgcheck: guest: appliance kernel names of the disks: {}\n",
               g.kernel_disks().empty() ? "unknown (one daemon call per device)"
                                        : fmt::format("{}", fmt::join(g.kernel_disks(), " ")));
  }
  lap("model");
  CheckPartitions(g, rep);
  CheckLvm(g, rep);
  lap("partitions and LVM");
  CheckFilesystems(g, rep);
  lap("filesystem checks");
  g.MountAll();
  g.DetectOs();
  lap("mounts");
  CheckFirmware(g, m, rep);  // whatever the OS: the firmware reads the disks, not the OS
  if (!g.os || !g.RootFs()) {
    std::string detail = "libguestfs found no root filesystem";
    for (const std::string& n : g.notes) detail += "; " + n;
    for (const Filesystem& f : g.filesystems) {
      if (f.type == "crypto_LUKS") {
        detail += fmt::format("; {} is LUKS-encrypted (not opened: no key)", f.device);
      }
    }
    if (g.filesystems.empty()) detail += "; no filesystems on the disks";
    rep.Report(fsck::P::kGuestNoOs, fsck::Fields{.detail = detail});
  } else {
    run.os_type = g.os->type;
    run.os_distro = g.os->distro;
    run.os_product = g.os->product;
    run.os_major = g.os->major;
    run.os_minor = g.os->minor;
    if (g.os->type == "linux") {
      CheckFstab(g, rep);
      CheckGrub(g, rep);
      CheckInitramfs(g, rep);
      CheckHygiene(g, rep);
      lap("guest rules");
    }
  }
  run.total_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

}  // namespace imgcheck::guest
