#include <fmt/format.h>

#include <sstream>

#include "guestfs/rules.h"

namespace imgcheck::guest {

std::vector<std::string> SplitWords(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string GuestName(const Guest& g, const std::string& device) {
  for (const DiskInfo& d : g.disks) {
    if (device.starts_with(d.device)) return "/dev/" + d.guest_name + device.substr(d.device.size());
  }
  return device;
}

std::string Describe(const Guest& g, const Filesystem& f) {
  std::string tag = !f.uuid.empty() ? "UUID=" + f.uuid : !f.label.empty() ? "LABEL=" + f.label : "";
  return fmt::format("{} {}on {}", f.type, tag.empty() ? "" : tag + " ", GuestName(g, f.device));
}

}  // namespace imgcheck::guest
