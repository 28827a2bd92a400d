// The internal snapshot table: a run of variable-length, 8-byte aligned entries starting at a
// cluster-aligned offset. Parsing stops at the first entry that does not fit in the bytes given
// and records why; nothing is checked against the rest of the image here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qcow2/bytes.h"

namespace imgcheck::qcow2 {

struct Snapshot {
  uint64_t entry_offset = 0;  // relative to the table start
  uint64_t l1_table_offset = 0;
  uint32_t l1_size = 0;
  std::string id;
  std::string name;
  uint32_t date_sec = 0;
  uint32_t date_nsec = 0;
  uint64_t vm_clock_nsec = 0;
  uint32_t vm_state_size32 = 0;
  uint32_t extra_data_size = 0;
  std::optional<uint64_t> vm_state_size;  // extra data, bytes 0-7
  std::optional<uint64_t> disk_size;      // extra data, bytes 8-15
  std::optional<uint64_t> icount;         // extra data, bytes 16-23
  uint64_t VmStateSize() const { return vm_state_size ? *vm_state_size : vm_state_size32; }
};

struct SnapshotTable {
  std::vector<Snapshot> snapshots;
  uint64_t byte_size = 0;        // bytes of the entries parsed
  std::optional<std::string> truncated;  // why parsing stopped early
};

// bytes: the table, from its start, as far as it may reach. Parses at most `count` entries.
SnapshotTable ParseSnapshotTable(ByteView bytes, uint32_t count);

}  // namespace imgcheck::qcow2
