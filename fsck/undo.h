// The undo journal: the original bytes of every region a repair writes, made durable before the
// first write, so `imgcheck undo` restores the image byte for byte after a complete repair or
// one killed part-way. Each region also carries CRC32s of its old and new bytes per 512-byte
// sector: undo refuses an image where a region holds anything else (another image, or one
// changed since).
//
// Layout (little-endian): "IMGCHECK-UNDO-01" | u64 original size | u64 final size |
//   u32 path length | path | u32 regions | per region: u64 offset | u64 length |
//   u64 old bytes present (the part inside the original file) | old bytes |
//   u32 sector CRCs of the old bytes | u32 sector CRCs of the new bytes |
//   then u32 CRC32 of everything before it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fsck/plan.h"
#include "qcow2/result.h"

namespace imgcheck::fsck {

struct JournalRegion {
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<uint8_t> old_bytes;  // the part inside the original file
  std::vector<uint32_t> old_crcs, new_crcs;  // per 512-byte sector of the region
};

struct Journal {
  std::string image_path;  // absolute
  uint64_t original_size = 0;
  uint64_t final_size = 0;
  std::vector<JournalRegion> regions;
};

// Builds the journal for a plan from the image's current bytes (read through fd).
Result<Journal> MakeJournal(int fd, const std::string& image_path, const Plan& plan);

// Writes the journal to `path` and makes it durable (fsync file, then directory). Refuses to
// replace an existing file.
Result<void> WriteJournal(const Journal& j, const std::string& path);
Result<Journal> ReadJournal(const std::string& path);

struct UndoReport {
  size_t regions = 0;
  uint64_t bytes = 0;
  size_t already_original = 0;  // regions that still held their old bytes
};

// Checks that the image at fd is the one the journal belongs to, as the repair left it (complete
// or interrupted); then, unless dry_run, restores it and fsyncs.
Result<UndoReport> Undo(int fd, const Journal& j, bool dry_run);

}  // namespace imgcheck::fsck
