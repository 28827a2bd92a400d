#include "vm/nvram.h"

#include <boost/endian/conversion.hpp>
#include <fmt/format.h>

#include <cstring>

namespace imgcheck::vm {
namespace {

using boost::endian::load_little_u16;
using boost::endian::load_little_u32;
using boost::endian::load_little_u64;

// EFI GUIDs as stored (the first three fields little-endian).
std::string Guid(const uint8_t* b) {
  return fmt::format("{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
                     load_little_u32(b), load_little_u16(b + 4), load_little_u16(b + 6), b[8],
                     b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

constexpr char kAuthenticatedStore[] = "AAF32C78-947B-439A-A180-2E144EC37792";
constexpr char kPlainStore[] = "DDCF3616-3275-4164-98B6-FE85707FFE7D";
constexpr char kGlobalVariable[] = "8BE4DF61-93CA-11D2-AA0D-00E098032B8C";
constexpr uint8_t kVarAdded = 0x3f, kVarAddedDeleting = 0x3e;  // live variable states

// UTF-16LE to UTF-8 (BMP only: names and paths), up to a NUL or `n` bytes.
std::string Utf16(const uint8_t* p, size_t n) {
  std::string out;
  for (size_t i = 0; i + 1 < n; i += 2) {
    uint16_t c = load_little_u16(p + i);
    if (c == 0) break;
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
      out += static_cast<char>(0xe0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

// EFI_LOAD_OPTION: attributes, path list length, description, device path nodes.
std::optional<UefiBootEntry> LoadOption(std::span<const uint8_t> d, uint16_t number) {
  if (d.size() < 6) return std::nullopt;
  UefiBootEntry e;
  e.number = number;
  e.active = (load_little_u32(d.data()) & 1) != 0;
  size_t list_len = load_little_u16(d.data() + 4);
  size_t pos = 6;
  while (pos + 1 < d.size() && load_little_u16(d.data() + pos) != 0) pos += 2;
  e.description = Utf16(d.data() + 6, pos - 6);
  pos += 2;
  size_t end = std::min(d.size(), pos + list_len);
  while (pos + 4 <= end) {
    uint8_t type = d[pos], sub = d[pos + 1];
    size_t len = load_little_u16(d.data() + pos + 2);
    if (len < 4 || pos + len > end) break;
    if (type == 0x7f && sub == 0xff) break;
    if (type == 4 && sub == 1 && len >= 42 && d[pos + 41] == 2) {  // HD(), GPT signature
      e.partition_guid = Guid(d.data() + pos + 24);
    } else if (type == 4 && sub == 4) {  // File()
      std::string f = Utf16(d.data() + pos + 4, len - 4);
      e.file = e.file ? *e.file + f : f;
    }
    pos += len;
  }
  return e;
}

}  // namespace

Result<std::vector<UefiBootEntry>> ParseNvram(std::span<const uint8_t> b) {
  // A firmware volume ("_FVH" at 40, header length at 48), then the variable store header.
  if (b.size() < 64 || std::memcmp(b.data() + 40, "_FVH", 4) != 0) {
    return Fail(ErrorKind::kInvalid, "not an OVMF variable store (no firmware volume header)");
  }
  size_t store = load_little_u16(b.data() + 48);
  if (store + 28 > b.size()) return Fail(ErrorKind::kInvalid, "the variable store is cut short");
  std::string kind = Guid(b.data() + store);
  bool authenticated = kind == kAuthenticatedStore;
  if (!authenticated && kind != kPlainStore) {
    return Fail(ErrorKind::kInvalid, "not an OVMF variable store (unknown store GUID " + kind + ")");
  }
  size_t end = std::min(b.size(), store + static_cast<size_t>(load_little_u32(b.data() + store + 16)));
  size_t header = authenticated ? 60 : 32;
  size_t name_at = authenticated ? 36 : 8;  // NameSize, DataSize, VendorGuid follow
  std::vector<UefiBootEntry> out;
  for (size_t pos = store + 28; pos + header <= end;) {
    if (load_little_u16(b.data() + pos) != 0x55aa) break;
    uint8_t state = b[pos + 2];
    uint64_t name_size = load_little_u32(b.data() + pos + name_at);
    uint64_t data_size = load_little_u32(b.data() + pos + name_at + 4);
    std::string vendor = Guid(b.data() + pos + name_at + 8);
    uint64_t next = pos + header + name_size + data_size;
    if (next > end) break;
    std::string name = Utf16(b.data() + pos + header, name_size);
    if ((state == kVarAdded || state == kVarAddedDeleting) && vendor == kGlobalVariable &&
        name.size() == 8 && name.starts_with("Boot") &&
        name.find_first_not_of("0123456789ABCDEFabcdef", 4) == std::string::npos) {
      auto number = static_cast<uint16_t>(std::stoul(name.substr(4), nullptr, 16));
      if (auto e = LoadOption(b.subspan(pos + header + name_size, data_size), number)) {
        out.push_back(std::move(*e));
      }
    }
    pos = (next + 3) & ~size_t{3};
  }
  return out;
}

}  // namespace imgcheck::vm
