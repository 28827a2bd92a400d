#include "guestfs/appliance.h"

#include <dirent.h>
#include <guestfs.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

namespace imgcheck::guest {
namespace {

// Seconds a KVM appliance gets, from the start of its QEMU process, to start its kernel: under
// KVM it prints "Linux version" within a second or two of the BIOS; the broken
// nested-virtualisation case hangs for ever. (Building the supermin appliance, before QEMU
// starts, does not count.)
constexpr double kKvmKernelDeadline = 15;

struct LaunchLog {
  std::mutex mu;
  std::string text;
  std::atomic<bool> kernel_started{false};
};

void OnEvent(guestfs_h*, void* opaque, uint64_t event, int, int, const char* buf, size_t len,
             const uint64_t*, size_t) {
  auto* log = static_cast<LaunchLog*>(opaque);
  std::lock_guard<std::mutex> lock(log->mu);
  if (buf && len && log->text.size() < (1u << 20)) log->text.append(buf, len);
  if (event == GUESTFS_EVENT_APPLIANCE && log->text.find("Linux version") != std::string::npos) {
    log->kernel_started = true;
  }
}

// Our qemu-system children: libguestfs' direct backend runs QEMU as a child process. With
// `kill`, they are killed too. Returns how many there are.
int QemuChildren(bool kill) {
  int found = 0;
  DIR* d = ::opendir("/proc");
  if (!d) return 0;
  pid_t self = ::getpid();
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (!end || *end || pid <= 0) continue;
    std::ifstream stat(fmt::format("/proc/{}/stat", pid));
    std::string line;
    std::getline(stat, line);
    size_t close = line.rfind(')');
    if (close == std::string::npos || line.find("qemu") == std::string::npos) continue;
    long ppid = 0;
    char state;
    if (std::sscanf(line.c_str() + close + 1, " %c %ld", &state, &ppid) == 2 && ppid == self) {
      ++found;
      if (kill) ::kill(static_cast<pid_t>(pid), SIGKILL);
    }
  }
  ::closedir(d);
  return found;
}

bool EnvForcesTcg() {
  const char* s = std::getenv("LIBGUESTFS_BACKEND_SETTINGS");
  return s && std::strstr(s, "force_tcg");
}

struct Attempt {
  guestfs_h* g = nullptr;
  bool ok = false;
  bool kvm_broken = false;  // the failure signature of broken nested virtualisation
  std::string error;
  double seconds = 0;
};

Attempt TryLaunch(const std::vector<Disk>& disks, bool tcg, bool verbose) {
  Attempt a;
  a.g = guestfs_create_flags(0);
  if (!a.g) {
    a.error = "cannot create a libguestfs handle";
    return a;
  }
  guestfs_set_error_handler(a.g, nullptr, nullptr);  // errors are read with guestfs_last_error
  if (!std::getenv("LIBGUESTFS_BACKEND")) guestfs_set_backend(a.g, "direct");
  if (tcg) {
    const char* settings[] = {"force_tcg", nullptr};
    guestfs_set_backend_settings(a.g, const_cast<char**>(settings));
  }
  auto log = std::make_unique<LaunchLog>();
  // The console is needed to see a KVM kernel start; under TCG it only slows the boot.
  guestfs_set_verbose(a.g, tcg && !verbose ? 0 : 1);
  int eh = guestfs_set_event_callback(a.g, OnEvent,
                             GUESTFS_EVENT_APPLIANCE | GUESTFS_EVENT_LIBRARY |
                                 GUESTFS_EVENT_WARNING,
                             0, log.get());
  for (const Disk& d : disks) {
    if (guestfs_add_drive_opts(a.g, d.path.c_str(), GUESTFS_ADD_DRIVE_OPTS_FORMAT,
                               d.format.c_str(), GUESTFS_ADD_DRIVE_OPTS_READONLY, 1, -1) != 0) {
      const char* e = guestfs_last_error(a.g);
      a.error = fmt::format("cannot add {}: {}", d.path, e ? e : "?");
      return a;
    }
  }
  // Watchdog: a KVM appliance whose kernel has not started by the deadline is killed.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false, killed = false;
  std::thread watchdog;
  if (!tcg) {
    watchdog = std::thread([&] {
      std::unique_lock<std::mutex> lock(mu);
      std::optional<std::chrono::steady_clock::time_point> qemu_since;
      while (!cv.wait_for(lock, std::chrono::milliseconds(250), [&] { return done; })) {
        if (log->kernel_started) return;
        auto now = std::chrono::steady_clock::now();
        if (!qemu_since) {
          if (QemuChildren(false)) qemu_since = now;
        } else if (std::chrono::duration<double>(now - *qemu_since).count() > kKvmKernelDeadline) {
          killed = true;
          QemuChildren(true);
          return;
        }
      }
    });
  }
  auto start = std::chrono::steady_clock::now();
  a.ok = guestfs_launch(a.g) == 0;
  a.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  if (watchdog.joinable()) watchdog.join();
  guestfs_set_verbose(a.g, 0);
  if (!a.ok) {
    const char* e = guestfs_last_error(a.g);
    a.error = e ? e : "launch failed";
    std::lock_guard<std::mutex> lock(log->mu);
    a.kvm_broken = killed || log->text.find("failed to set MSR") != std::string::npos ||
                   log->text.find("kvm_buf_set_msrs") != std::string::npos;
    if (killed) a.error = "the KVM appliance hung after the BIOS";
    if (verbose) fmt::print(stderr, "{}", log->text);
  }
  // Keep the log object alive for the handle's callbacks until the handle is closed.
  guestfs_delete_event_callback(a.g, eh);
  return a;
}

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

std::unique_ptr<Appliance> Appliance::Launch(const std::vector<Disk>& disks, bool verbose,
                                             std::string& why) {
  bool tcg = EnvForcesTcg() || ::access("/dev/kvm", R_OK | W_OK) != 0;
  Attempt a = TryLaunch(disks, tcg, verbose);
  std::optional<std::string> fallback;
  if (!a.ok && !tcg && a.kvm_broken) {
    fallback = fmt::format("KVM did not work ({}); retried with TCG (software emulation, slower)",
                           FirstLine(a.error));
    if (a.g) guestfs_close(a.g);
    a = TryLaunch(disks, true, verbose);
    tcg = true;
  }
  if (!a.ok) {
    why = FirstLine(a.error);
    if (a.g) guestfs_close(a.g);
    return nullptr;
  }
  std::unique_ptr<Appliance> app(new Appliance(a.g));
  app->backend_ = tcg ? "tcg" : "kvm";
  app->launch_seconds_ = a.seconds;
  app->fallback_ = fallback;
  return app;
}

Appliance::~Appliance() {
  if (g_) guestfs_close(g_);
}

std::string Appliance::Error() const {
  const char* e = guestfs_last_error(g_);
  return e ? FirstLine(e) : "unknown libguestfs error";
}

}  // namespace imgcheck::guest
