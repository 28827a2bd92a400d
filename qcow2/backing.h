// Backing file and external data file names: what kind of name it is, and where QEMU would look.
// Pure string functions; nothing is opened here.
#pragma once

#include <string>
#include <string_view>

namespace imgcheck::qcow2 {

enum class NameKind {
  kPath,      // a host path: absolute, or relative to the image that names it
  kJson,      // QEMU's json: pseudo-protocol: arbitrary block driver options
  kProtocol,  // "proto:..." (nbd:, http:, ssh:, file:, ...): QEMU's path_has_protocol
};

struct ClassifiedName {
  NameKind kind;
  std::string protocol;  // for kProtocol: the prefix before ':'
};

ClassifiedName ClassifyName(std::string_view name);

// QEMU resolves a relative backing name against the directory of the image that names it
// (bdrv_get_full_backing_filename); an absolute name is used as it is.
std::string ResolveRelative(const std::string& name, const std::string& referrer);

// "relative to /dir (the directory of overlay.qcow2)" or "absolute".
std::string DescribeResolution(const std::string& name, const std::string& referrer);

}  // namespace imgcheck::qcow2
