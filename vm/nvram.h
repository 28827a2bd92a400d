// The boot entries of a UEFI VM's NVRAM file (OVMF's variable store, as libvirt keeps it in
// <nvram>): the Boot#### variables, each with its description, the GPT partition it names and
// the loader path on it. The firmware boots one of these, or, when none works, the removable
// path EFI/BOOT/BOOTX64.EFI of any ESP. Parsing is a pure function of the bytes (fuzzed).
// Not read: BootOrder (every active entry is a candidate), Secure Boot keys.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qcow2/result.h"

namespace imgcheck::vm {

struct UefiBootEntry {
  uint16_t number = 0;  // Boot####
  bool active = false;  // LOAD_OPTION_ACTIVE
  std::string description;
  std::optional<std::string> partition_guid;  // HD() node with a GPT signature, upper case
  std::optional<std::string> file;            // File() node: "\EFI\debian\shimx64.efi"
};

// The largest NVRAM file read (OVMF's are 128 KiB to 4 MiB).
inline constexpr size_t kMaxNvram = 64u << 20;

Result<std::vector<UefiBootEntry>> ParseNvram(std::span<const uint8_t> bytes);

}  // namespace imgcheck::vm
