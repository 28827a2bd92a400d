// Checking one image: probe the format, decode the header, run the passes. Read-only.
#pragma once

#include <string>

#include "fsck/context.h"
#include "fsck/report.h"
#include "qcow2/device.h"

namespace imgcheck::fsck {

// Opens `path` read-only (O_RDONLY) and checks it.
CheckResult CheckImage(const std::string& path, const CheckOptions& opts);

// Checks the bytes of any device; `name` is the image name used in findings.
CheckResult CheckDevice(const qcow2::Device& dev, const std::string& name,
                        const CheckOptions& opts);

}  // namespace imgcheck::fsck
