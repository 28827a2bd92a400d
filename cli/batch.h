// Checking many images: how `imgcheck check` runs (its options), a small thread pool for `-j N`,
// and the progress line on a terminal. Workers only compute; everything printed comes from the
// calling (main) thread, so output stays in argument order and never interleaves.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace imgcheck::cli {

// `imgcheck check` options beyond the format check's own (fsck::CheckOptions, ChainOptions).
struct CheckRunOptions {
  std::string output = "human";  // human | json | junit | sarif
  bool quiet = false;
  bool verbose = false;
  unsigned jobs = 1;      // images checked at once (-j); 0 = one per CPU
  bool progress = false;  // draw the progress line (set only for human output on a terminal)
  // For the guest phase (guestfs/, issue 5): `no_guest` skips it. Without `batch`, the IMAGEs
  // are the disks of one VM, inspected together; with `batch`, each IMAGE is its own VM.
  bool no_guest = false;
  bool batch = false;
};

// The number of worker threads for `jobs` and `n` items: never more than the items.
unsigned Workers(unsigned jobs, size_t n);

// Runs work(i) for every i in [0, n) on `workers` threads (inline when 1) and returns when all
// are done. tick(done) runs in the calling thread about ten times a second and once at the end.
// An exception thrown by work() is rethrown here, after every worker has stopped.
void RunParallel(size_t n, unsigned workers, const std::function<void(size_t)>& work,
                 const std::function<void(size_t done)>& tick);

// "imgcheck: 12/50 images, format checks" on stderr, redrawn in place at most ten times a
// second; shown only once a run has lasted half a second, and wiped by Clear() before any
// output.
class Progress {
 public:
  Progress(bool enabled, size_t total) : enabled_(enabled), total_(total) {}
  ~Progress() { Clear(); }
  void Update(size_t done, std::string_view phase);
  void Clear();

 private:
  bool enabled_;
  size_t total_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_;
};

}  // namespace imgcheck::cli
