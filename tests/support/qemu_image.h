// Test support: make real images with qemu-img/qemu-io in a temporary directory, poke bytes,
// and read structures back. Used by unit and property tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace imgcheck::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs a shell command; returns its exit status (aborts the test on a spawn failure).
int Run(const std::string& cmd);
std::vector<uint8_t> ReadFile(const std::string& path);
void WriteU64(const std::string& path, uint64_t offset, uint64_t value);
void WriteU32(const std::string& path, uint64_t offset, uint32_t value);
uint64_t ReadU64(const std::string& path, uint64_t offset);
uint32_t ReadU32(const std::string& path, uint64_t offset);

}  // namespace imgcheck::testing
