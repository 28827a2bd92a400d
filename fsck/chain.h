// Checking an image with its whole backing chain and its external data file. Every image of
// the chain gets the full format check; the chain itself is checked for missing, unreadable,
// looping, too deep, mis-declared, protocol and non-image backing files. With `untrusted`,
// nothing but the named file is ever opened.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "qcow2/device.h"

#include "fsck/context.h"
#include "fsck/report.h"

namespace imgcheck::fsck {

struct ChainOptions {
  bool untrusted = false;
  uint32_t max_depth = 256;  // images, the named one included
  // The named image's declared format (--format, a domain's <driver type>): used, not probed.
  // Declared by a libvirt domain, a missing backing format is the VM checks' to report (libvirt
  // refuses it unless the domain declares it), not chain.no-backing-format's.
  std::optional<DeclaredFormat> format;
};

// Why a file that should hold disk data does not look like it (nullopt: it may): catches host
// files such as /etc/passwd named as a backing or data file.
std::optional<std::string> NotDiskData(const qcow2::Device& dev);

// Follows the backing chain from `path` (opening each link read-only, at most 256 deep) and
// says how it reaches the file behind `target`, or nullopt if it does not.
std::optional<std::string> ChainReaches(const std::string& path, const qcow2::Device& target);

CheckResult CheckChain(const std::string& path, const CheckOptions& opts,
                       const ChainOptions& chain);

}  // namespace imgcheck::fsck
