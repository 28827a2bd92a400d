// Opening an image read-only: the device plus its decoded header. Nothing here writes.
#pragma once

#include <memory>
#include <string>

#include "qcow2/device.h"
#include "qcow2/header.h"

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

}  // namespace imgcheck::qcow2
