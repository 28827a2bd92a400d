#include "tests/support/qemu_image.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/endian/conversion.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace imgcheck::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "imgcheck-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int Run(const std::string& cmd) {
  int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  if (rc == -1) throw std::runtime_error("cannot run: " + cmd);
  return WEXITSTATUS(rc);
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

static void WriteAt(const std::string& path, uint64_t offset, const void* p, size_t n) {
  int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0 || ::pwrite(fd, p, n, static_cast<off_t>(offset)) != static_cast<ssize_t>(n)) {
    throw std::runtime_error("poke failed: " + path);
  }
  ::close(fd);
}

static void ReadAt(const std::string& path, uint64_t offset, void* p, size_t n) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::pread(fd, p, n, static_cast<off_t>(offset)) != static_cast<ssize_t>(n)) {
    throw std::runtime_error("peek failed: " + path);
  }
  ::close(fd);
}

void WriteU64(const std::string& path, uint64_t offset, uint64_t value) {
  uint8_t b[8];
  boost::endian::store_big_u64(b, value);
  WriteAt(path, offset, b, 8);
}
void WriteU32(const std::string& path, uint64_t offset, uint32_t value) {
  uint8_t b[4];
  boost::endian::store_big_u32(b, value);
  WriteAt(path, offset, b, 4);
}
uint64_t ReadU64(const std::string& path, uint64_t offset) {
  uint8_t b[8];
  ReadAt(path, offset, b, 8);
  return boost::endian::load_big_u64(b);
}
uint32_t ReadU32(const std::string& path, uint64_t offset) {
  uint8_t b[4];
  ReadAt(path, offset, b, 4);
  return boost::endian::load_big_u32(b);
}

}  // namespace imgcheck::testing
