#include "qcow2/bitmap.h"

#include <fmt/format.h>

namespace imgcheck::qcow2 {

BitmapDirectory ParseBitmapDirectory(ByteView bytes, uint32_t count) {
  BitmapDirectory d;
  size_t pos = 0;
  for (uint32_t i = 0; i < count; ++i) {
    Cursor c(bytes, pos);
    BitmapEntry b;
    b.entry_offset = pos;
    b.table_offset = c.U64();
    b.table_size = c.U32();
    b.flags = c.U32();
    b.type = c.U8();
    b.granularity_bits = c.U8();
    b.name_size = c.U16();
    b.extra_data_size = c.U32();
    c.Skip(b.extra_data_size);
    b.name = c.String(b.name_size);
    if (!c.ok()) {
      d.broken = fmt::format("bitmap directory entry {} at directory offset 0x{:x} runs past the "
                             "directory size",
                             i, pos);
      return d;
    }
    pos = (c.pos() + 7) & ~size_t{7};
    d.entries.push_back(std::move(b));
  }
  if (pos != bytes.size()) {
    d.broken = fmt::format("bitmap directory holds {} bytes of entries but its size is {}", pos,
                           bytes.size());
  }
  return d;
}

}  // namespace imgcheck::qcow2
