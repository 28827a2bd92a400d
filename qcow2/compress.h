// Decompressing one compressed cluster, as QEMU does: type 0 is raw deflate (no zlib header,
// window 2^12), type 1 is zstd. The stored range may carry trailing bytes (sector padding, a
// neighbour's start); decompression stops once a full cluster is out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "qcow2/bytes.h"

namespace imgcheck::qcow2 {

// Returns nullopt on success, else why the data does not decompress to `cluster_size` bytes.
std::optional<std::string> VerifyCompressed(ByteView stored, uint8_t compression_type,
                                            uint64_t cluster_size);

}  // namespace imgcheck::qcow2
