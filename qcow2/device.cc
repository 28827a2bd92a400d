#include "qcow2/device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace imgcheck::qcow2 {

Result<std::vector<uint8_t>> Device::ReadVec(uint64_t offset, size_t length) const {
  std::vector<uint8_t> buf(length);
  if (auto r = Read(offset, buf); !r) return tl::unexpected(r.error());
  return buf;
}

Result<std::unique_ptr<FileDevice>> FileDevice::Open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO (or a tty) named as an image must not wait for a writer; the
  // type is checked right after, and the flag cleared for the regular file or block device.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    return Fail(ErrorKind::kIo, "cannot open " + path + ": " + std::strerror(e), e);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Fail(ErrorKind::kIo, "cannot stat " + path + ": " + std::strerror(e), e);
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    ::close(fd);
    return Fail(ErrorKind::kInvalid, path + ": not a regular file or block device");
  }
  if (int fl = ::fcntl(fd, F_GETFL); fl >= 0) ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode)) {
    off_t end = ::lseek(fd, 0, SEEK_END);
    size = end > 0 ? static_cast<uint64_t>(end) : 0;
  }
  return std::unique_ptr<FileDevice>(new FileDevice(path, fd, size, st.st_dev, st.st_ino));
}

FileDevice::~FileDevice() { ::close(fd_); }

Result<void> FileDevice::Read(uint64_t offset, std::span<uint8_t> out) const {
  if (out.empty()) return {};  // an empty span may have no storage at all
  size_t done = 0;
  while (done < out.size()) {
    uint64_t pos = offset + done;
    if (pos < offset || pos >= size_) break;  // overflow or EOF: rest is zeros
    size_t want = static_cast<size_t>(std::min<uint64_t>(out.size() - done, size_ - pos));
    ssize_t n = ::pread(fd_, out.data() + done, want, static_cast<off_t>(pos));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrorKind::kIo, "read error in " + path_ + " at offset " + std::to_string(pos) +
                                      ": " + std::strerror(errno));
    }
    if (n == 0) break;  // file shrank under us: treat the rest as zeros
    done += static_cast<size_t>(n);
  }
  if (done < out.size()) std::memset(out.data() + done, 0, out.size() - done);
  return {};
}

Result<void> MemDevice::Read(uint64_t offset, std::span<uint8_t> out) const {
  if (out.empty()) return {};
  size_t done = 0;
  if (offset < bytes_.size()) {
    done = static_cast<size_t>(std::min<uint64_t>(out.size(), bytes_.size() - offset));
    std::memcpy(out.data(), bytes_.data() + offset, done);
  }
  if (done < out.size()) std::memset(out.data() + done, 0, out.size() - done);
  return {};
}

}  // namespace imgcheck::qcow2
