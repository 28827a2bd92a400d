// Read-only byte sources for the reader. FileDevice opens with O_RDONLY and never writes.
// Reads past the end of the device return zeros, as QEMU's file driver does, so a table that
// reaches past EOF reads exactly as QEMU sees it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qcow2/result.h"

namespace imgcheck::qcow2 {

class Device {
 public:
  virtual ~Device() = default;
  virtual uint64_t Size() const = 0;
  // Fills out entirely: the part at or past Size() with zeros.
  virtual Result<void> Read(uint64_t offset, std::span<uint8_t> out) const = 0;
  virtual const std::string& Name() const = 0;

  Result<std::vector<uint8_t>> ReadVec(uint64_t offset, size_t length) const;
};

class FileDevice final : public Device {
 public:
  static Result<std::unique_ptr<FileDevice>> Open(const std::string& path);
  ~FileDevice() override;
  uint64_t Size() const override { return size_; }
  Result<void> Read(uint64_t offset, std::span<uint8_t> out) const override;
  const std::string& Name() const override { return path_; }
  int fd() const { return fd_; }
  // Identity of the file, to recognise it under another name (backing loops).
  uint64_t dev() const { return dev_; }
  uint64_t ino() const { return ino_; }

 private:
  FileDevice(std::string path, int fd, uint64_t size, uint64_t dev, uint64_t ino)
      : path_(std::move(path)), fd_(fd), size_(size), dev_(dev), ino_(ino) {}
  std::string path_;
  int fd_;
  uint64_t size_;
  uint64_t dev_;
  uint64_t ino_;
};

class MemDevice final : public Device {
 public:
  explicit MemDevice(std::vector<uint8_t> bytes, std::string name = "<memory>")
      : bytes_(std::move(bytes)), name_(std::move(name)) {}
  uint64_t Size() const override { return bytes_.size(); }
  Result<void> Read(uint64_t offset, std::span<uint8_t> out) const override;
  const std::string& Name() const override { return name_; }

 private:
  std::vector<uint8_t> bytes_;
  std::string name_;
};

}  // namespace imgcheck::qcow2
