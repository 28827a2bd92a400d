#include "qcow2/snapshot.h"

#include <fmt/format.h>

#include "qcow2/layout.h"

namespace imgcheck::qcow2 {

SnapshotTable ParseSnapshotTable(ByteView bytes, uint32_t count) {
  SnapshotTable t;
  size_t pos = 0;
  for (uint32_t i = 0; i < count; ++i) {
    Cursor c(bytes, pos);
    Snapshot s;
    s.entry_offset = pos;
    s.l1_table_offset = c.U64();
    s.l1_size = c.U32();
    uint16_t id_len = c.U16();
    uint16_t name_len = c.U16();
    s.date_sec = c.U32();
    s.date_nsec = c.U32();
    s.vm_clock_nsec = c.U64();
    s.vm_state_size32 = c.U32();
    s.extra_data_size = c.U32();
    ByteView extra = c.Bytes(s.extra_data_size);
    s.id = c.String(id_len);
    s.name = c.String(name_len);
    if (!c.ok()) {
      t.truncated = fmt::format("snapshot table entry {} at table offset 0x{:x} runs past the end "
                                "of the table area",
                                i, pos);
      break;
    }
    Cursor e(extra);
    if (extra.size() >= 8) s.vm_state_size = e.U64();
    if (extra.size() >= 16) s.disk_size = e.U64();
    if (extra.size() >= 24) s.icount = e.U64();
    size_t end = c.pos();
    size_t padded = (end + 7) & ~size_t{7};
    pos = padded;
    t.snapshots.push_back(std::move(s));
    t.byte_size = pos;
  }
  return t;
}

}  // namespace imgcheck::qcow2
