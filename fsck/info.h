// `imgcheck info`: everything a person wants to see about an image, deeper than qemu-img info:
// the decoded header with feature bits by name, extensions, snapshots, bitmaps, the allocation
// summary and the backing chain (from a full check, so broken links show too), host space.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fsck/chain.h"
#include "fsck/report.h"
#include "qcow2/bitmap.h"
#include "qcow2/header.h"
#include "qcow2/snapshot.h"

namespace imgcheck::fsck {

struct ImageInfo {
  std::string filename;
  std::string format;
  std::optional<std::string> failure;  // could not be read at all
  uint64_t file_size = 0;
  std::optional<uint64_t> host_allocated, host_free;
  std::optional<std::string> in_use;  // who holds QEMU's locks
  std::optional<qcow2::Header> header;
  std::vector<qcow2::Snapshot> snapshots;
  std::vector<qcow2::BitmapEntry> bitmaps;
  std::optional<std::string> tables_problem;  // snapshot table or bitmap directory unreadable
  CheckResult check;                          // allocation summary, chain, findings
};

ImageInfo CollectInfo(const std::string& path, const ChainOptions& chain);

// Name of a header extension type ("backing format", ...; "unknown" for others).
std::string ExtensionName(uint32_t type);

}  // namespace imgcheck::fsck
