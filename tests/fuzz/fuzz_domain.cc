// libFuzzer target: the libvirt domain XML parser (vm/domain.h), then guest-name prediction on
// whatever it accepted. Any input must give a Machine or a one-line error, never a crash, a hang
// or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "vm/domain.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view xml(reinterpret_cast<const char*>(data), size);
  auto m = imgcheck::vm::ParseDomainXml(xml, "fuzz.xml");
  if (m) {
    for (const auto& d : m->disks) {
      if (d.guest_name.empty()) __builtin_trap();  // every disk gets a guest name
    }
    (void)m->BootDisk();
  } else if (m.error().message.find('\n') != std::string::npos) {
    __builtin_trap();  // errors are one line
  }
  return 0;
}
