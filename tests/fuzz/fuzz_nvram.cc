// libFuzzer target: UEFI NVRAM boot entries (vm/nvram.h) and POSIX ACL xattrs (vm/access.h),
// the two binary formats the VM checks read from the host.
#include <cstddef>
#include <cstdint>
#include <span>

#include "vm/access.h"
#include "vm/nvram.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> b(data, size);
  (void)imgcheck::vm::ParseNvram(b);
  if (auto acl = imgcheck::vm::ParseAcl(b)) {
    imgcheck::vm::Identity id{.uid = 1000, .gid = 1000, .groups = {1000, 107}};
    (void)imgcheck::vm::Permits({.mode = 0750, .uid = 0, .gid = 107, .acl = *acl}, id, 1);
  }
  return 0;
}
