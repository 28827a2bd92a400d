// Checking one image: probe the format, decode the header, run the passes. Read-only.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "fsck/context.h"
#include "fsck/report.h"
#include "qcow2/device.h"

namespace imgcheck::fsck {

// The whole state of one check, for repair planning. Owns what the Context refers to, so it
// never moves (always behind a unique_ptr).
struct Checked {
  std::optional<qcow2::Header> header;
  CheckResult result;
  std::unique_ptr<Sink> sink;
  std::unique_ptr<Context> ctx;  // null when the header was rejected
};
// `declared`: the image's declared format (null: probed, as qemu-img check does without -f).
std::unique_ptr<Checked> RunCheck(const qcow2::Device& dev, const std::string& name,
                                  const CheckOptions& opts,
                                  const DeclaredFormat* declared = nullptr);

// Opens `path` read-only (O_RDONLY) and checks it.
CheckResult CheckImage(const std::string& path, const CheckOptions& opts);

// Checks the bytes of any device; `name` is the image name used in findings.
CheckResult CheckDevice(const qcow2::Device& dev, const std::string& name,
                        const CheckOptions& opts, const DeclaredFormat* declared = nullptr);

}  // namespace imgcheck::fsck
