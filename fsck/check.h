// Checking one image file: open read-only, probe the format, run the passes.
#pragma once

#include <string>

#include "fsck/context.h"
#include "fsck/report.h"

namespace imgcheck::fsck {

CheckResult CheckImage(const std::string& path, const CheckOptions& opts);

}  // namespace imgcheck::fsck
