// The thread pool behind `-j N`: workers take the next index from an atomic counter, so a slow
// image never holds up the others. fsck::CheckChain shares no mutable state between calls (each
// opens its own devices and owns its results; the problem table is constexpr), so one call per
// worker needs no locking beyond the completion count.
#include "cli/batch.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace imgcheck::cli {

unsigned Workers(unsigned jobs, size_t n) {
  if (jobs == 0) jobs = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<unsigned>(std::max<size_t>(1, std::min<size_t>(jobs, n)));
}

void RunParallel(size_t n, unsigned workers, const std::function<void(size_t)>& work,
                 const std::function<void(size_t done)>& tick) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  std::exception_ptr error;
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      std::exception_ptr e;
      try {
        work(i);
      } catch (...) {
        e = std::current_exception();
        next = n;  // stop handing out work
      }
      std::lock_guard lock(mu);
      if (e && !error) error = e;
      ++done;
      cv.notify_one();
    }
  };
  if (workers <= 1) {  // no threads: the same as before -j existed
    for (size_t i = 0; i < n; ++i) {
      work(i);
      tick(i + 1);
    }
    return;
  }
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < workers; ++t) threads.emplace_back(worker);
  {
    std::unique_lock lock(mu);
    while (done < n && !error) {
      cv.wait_for(lock, std::chrono::milliseconds(100));
      size_t now = done;
      lock.unlock();
      tick(now);
      lock.lock();
    }
  }
  for (std::thread& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

void Progress::Update(size_t done, std::string_view phase) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - start_ < std::chrono::milliseconds(500)) return;  // short runs: nothing extra
  if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done < total_) return;
  last_ = now;
  fmt::print(stderr, "\r\033[Kimgcheck: {}/{} images, {}", done, total_, phase);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::Clear() {
  if (!drawn_) return;
  fmt::print(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace imgcheck::cli
