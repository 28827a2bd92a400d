// What the host says about an image file: whether another process holds QEMU's byte-range locks
// on it (a running VM or qemu-nbd), how much of it is allocated, and the free space beside it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace imgcheck::fsck {

// QEMU (block/file-posix.c) takes OFD locks: byte 100 + i while it holds permission i, byte
// 200 + i while it does not share permission i (bit 1 is "write"). Returns a description of the
// locks another process holds, or nullopt when there are none.
std::optional<std::string> ProbeQemuLocks(int fd);

struct HostSpace {
  uint64_t allocated_bytes = 0;  // st_blocks * 512
  uint64_t free_bytes = 0;       // available to unprivileged users on its filesystem
};
std::optional<HostSpace> ProbeSpace(int fd);

}  // namespace imgcheck::fsck
