#include "fsck/host.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace imgcheck::fsck {
namespace {

constexpr int kPermBase = 100, kSharedBase = 200, kPermBits = 64;
constexpr int kPermWrite = 1;

bool Locked(int fd, int byte) {
  struct flock fl {};
  fl.l_type = F_WRLCK;  // conflicts with any lock another file description holds
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  return ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

}  // namespace

std::optional<std::string> ProbeQemuLocks(int fd) {
  std::vector<int> held, unshared;
  for (int i = 0; i < kPermBits; ++i) {
    if (Locked(fd, kPermBase + i)) held.push_back(i);
    if (Locked(fd, kSharedBase + i)) unshared.push_back(i);
  }
  if (held.empty() && unshared.empty()) return std::nullopt;
  bool writer = !held.empty() && std::find(held.begin(), held.end(), kPermWrite) != held.end();
  return fmt::format("{}; lock bytes {}{}", writer ? "a writer, such as a running VM" : "a reader",
                     fmt::join(held, ","), unshared.empty() ? "" : " and " + fmt::format(
                         "unshared {}", fmt::join(unshared, ",")));
}

std::optional<HostSpace> ProbeSpace(int fd) {
  struct stat st {};
  struct statvfs vfs {};
  if (::fstat(fd, &st) != 0 || ::fstatvfs(fd, &vfs) != 0) return std::nullopt;
  return HostSpace{static_cast<uint64_t>(st.st_blocks) * 512,
                   static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize};
}

}  // namespace imgcheck::fsck
