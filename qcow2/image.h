// Opening an image read-only: the device plus its decoded header. Nothing here writes.
#pragma once

#include <memory>
#include <string>

#include "qcow2/device.h"
#include "qcow2/bitmap.h"
#include "qcow2/header.h"
#include "qcow2/snapshot.h"

namespace imgcheck::qcow2 {

enum class Format { kQcow2, kRaw, kOther };

struct Probe {
  Format format;
  std::string name;  // "qcow2", "raw", "vmdk", ...
};

// Recognises the formats qemu-img would probe from the first bytes.
Probe ProbeFormat(const Device& dev);

// Reads cluster 0 (bounded by the maximum cluster size) and parses it.
Result<Header> ReadHeader(const Device& dev);

// The snapshot table and bitmap directory, read within QEMU's size limits (64 MiB, 64 MiB).
Result<SnapshotTable> ReadSnapshots(const Device& dev, const Header& h);
// The bytes that `count` snapshot entries can span from the table's start (at most 64 MiB).
Result<std::vector<uint8_t>> ReadSnapshotArea(const Device& dev, const Header& h, uint32_t count);
Result<BitmapDirectory> ReadBitmaps(const Device& dev, const Header& h);

}  // namespace imgcheck::qcow2
