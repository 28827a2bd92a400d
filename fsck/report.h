// The result of checking one image: qemu-img check's counters plus our findings. Passes report
// findings to a Sink; only the Sink turns severities into counters.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fsck/problem.h"

namespace imgcheck::fsck {

struct Finding {
  P code;
  Severity severity;
  std::string slug;
  std::string message;
  std::string image;
  std::optional<uint64_t> offset;
  std::optional<uint64_t> cluster;
  uint64_t count = 1;
  std::string file;      // guest findings: the guest file, its line, what was seen, the fix
  uint64_t line = 0;
  std::string evidence;
  std::string fix;
};

// One image of a backing chain, as checked (depth 0 is the image named on the command line).
struct ChainLink {
  std::string filename;
  std::string format;
  uint32_t depth = 0;
  uint64_t virtual_size = 0;
  uint64_t file_size = 0;
  std::optional<std::string> backing_filename;
  std::optional<std::string> backing_format;
  uint64_t check_errors = 0, corruptions = 0, leaks = 0;  // this image's own
};

// What a policy needs to know about an image (filled by CheckChain from the header).
struct ImageFacts {
  uint32_t version = 0;
  uint64_t cluster_size = 0;
  uint64_t virtual_size = 0;
  bool has_backing = false;
  uint32_t snapshots = 0;
  uint32_t bitmaps = 0;
  bool encrypted = false;
  bool data_file = false;
  uint32_t chain_depth = 0;  // images in the chain, the named one included
};

// The guest phase, as run for the VM whose first disk this result is.
struct GuestSummary {
  bool ran = false;
  std::string reason;   // why it did not run
  std::string backend;  // kvm or tcg
  double launch_seconds = 0, total_seconds = 0;
  std::string os_type, os_distro, os_product;
  int os_major = 0, os_minor = 0;
};

// The VM this image is a disk of, when a libvirt domain was given: reports name the domain and
// the disk's target.
struct VmDisk {
  std::string domain;
  std::string target;      // <target dev>, as the domain declares it
  std::string bus;         // virtio, sata, scsi, virtio-scsi, ...
  std::string guest_name;  // what the guest's kernel calls it (vda, sda, nvme0n1)
};

struct CheckResult {
  std::string filename;
  std::string format = "qcow2";
  bool format_has_checks = true;      // false: exit 63 (raw, ...)
  std::optional<std::string> failure;  // the check could not complete: one-line reason, exit 1
  uint64_t check_errors = 0;
  uint64_t corruptions = 0;
  uint64_t leaks = 0;
  uint64_t image_end_offset = 0;
  uint64_t total_clusters = 0;
  uint64_t allocated_clusters = 0;
  uint64_t fragmented_clusters = 0;
  uint64_t compressed_clusters = 0;
  uint64_t cluster_size = 0;
  uint64_t data_file_end = 0;  // with an external data file: end of the highest mapped cluster
  std::vector<Finding> findings;
  std::vector<ChainLink> chain;  // filled by CheckChain; counters above are then chain totals
  std::optional<ImageFacts> facts;  // filled by CheckChain for qcow2 images
  std::optional<GuestSummary> guest;  // on the first disk of a VM, when guest checks were asked
  std::optional<VmDisk> vm;           // with a libvirt domain
  uint64_t findings_suppressed = 0;  // beyond the per-code cap, counted but not listed

  // qemu-img check's exit codes: 0 clean, 1 incomplete, 2 errors, 3 leaks only, 63 no checks.
  int ExitCode() const;
};

class Sink {
 public:
  // At most kMaxPerCode findings of one code are kept (all are counted), so a badly broken image
  // cannot make the report grow without bound.
  static constexpr size_t kMaxPerCode = 1000;

  Sink(CheckResult& result, std::string image) : result_(result), image_(std::move(image)) {}
  void Report(P code, const Fields& fields);

 private:
  CheckResult& result_;
  std::string image_;
  std::map<P, size_t> per_code_;
};

}  // namespace imgcheck::fsck
