// The libguestfs appliance: one handle, every disk of the VM added read-only with its format
// given (never probed), launched once. Where KVM exists but does not work (nested
// virtualisation: QEMU aborts with "failed to set MSR", or hangs after the BIOS), the launch is
// retried once with TCG and the caller is told why. guestfs.h is included only in guestfs/.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct guestfs_h;

namespace imgcheck::guest {

struct Disk {
  std::string path;
  std::string format;      // "qcow2", "raw"
  std::string guest_name;  // what the VM's kernel calls it (vm::Disk::guest_name): vda, sda
};

class Appliance {
 public:
  // Launches; on failure returns null and sets `why` to one line.
  static std::unique_ptr<Appliance> Launch(const std::vector<Disk>& disks, bool verbose,
                                           std::string& why);
  ~Appliance();
  guestfs_h* g() const { return g_; }
  const std::string& backend() const { return backend_; }        // "kvm" or "tcg"
  double launch_seconds() const { return launch_seconds_; }
  const std::optional<std::string>& fallback() const { return fallback_; }  // why TCG

  // Last libguestfs error, as one line.
  std::string Error() const;

 private:
  explicit Appliance(guestfs_h* g) : g_(g) {}
  guestfs_h* g_;
  std::string backend_;
  double launch_seconds_ = 0;
  std::optional<std::string> fallback_;
};

}  // namespace imgcheck::guest
