// Checking an image with its whole backing chain and its external data file. Every image of
// the chain gets the full format check; the chain itself is checked for missing, unreadable,
// looping, too deep, mis-declared, protocol and non-image backing files. With `untrusted`,
// nothing but the named file is ever opened.
#pragma once

#include <cstdint>
#include <string>

#include "fsck/context.h"
#include "fsck/report.h"

namespace imgcheck::fsck {

struct ChainOptions {
  bool untrusted = false;
  uint32_t max_depth = 256;  // images, the named one included
};

CheckResult CheckChain(const std::string& path, const CheckOptions& opts,
                       const ChainOptions& chain);

}  // namespace imgcheck::fsck
