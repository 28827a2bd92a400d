// The guest phase of `imgcheck check`: one appliance for the disks of one VM, our own model of
// the guest, and every rule family. Findings go into the disks' CheckResults; if the appliance
// cannot run, one finding says so and the format results stand.
#pragma once

#include <vector>

#include "fsck/report.h"
#include "vm/machine.h"

namespace imgcheck::guest {

struct GuestOptions {
  bool verbose = false;
  // How the VM attaches the disks (bus, predicted guest names, firmware). Without a domain,
  // vm::DefaultMachine: libvirt's defaults, which the rules say they assumed.
  vm::Machine machine;
};

using GuestRun = fsck::GuestSummary;

// `disks`: the results of the format checks of one VM's disks, in attach order. The summary is
// also stored in disks.front()->guest.
GuestRun RunGuestChecks(const std::vector<fsck::CheckResult*>& disks, const GuestOptions& opts);

}  // namespace imgcheck::guest
