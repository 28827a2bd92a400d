#include <fmt/format.h>

#include <algorithm>
#include <cctype>
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
    if (!device.starts_with(d.device)) continue;
    std::string part = device.substr(d.device.size());
    if (part.empty()) return "/dev/" + d.guest_name;
    if (!std::all_of(part.begin(), part.end(), ::isdigit)) continue;  // sda vs sdab
    return "/dev/" + vm::PartitionName(d.guest_name, static_cast<unsigned>(std::stoul(part)));
  }
  return device;
}

std::set<std::string> DisksOf(const Guest& g, const Filesystem& f) {
  std::set<std::string> out;
  for (const DiskInfo& d : g.disks) {
    if (f.device.starts_with(d.device)) out.insert(d.device);
  }
  if (out.empty() && f.device.size() > 5) {  // a logical volume: the disks of its VG's PVs
    std::string vg = f.device.substr(5, f.device.find('/', 5) - 5);
    for (const PvLabel& pv : g.pvs) {
      if (pv.vg != vg) continue;
      for (const DiskInfo& d : g.disks) {
        if (pv.device.starts_with(d.device)) out.insert(d.device);
      }
    }
  }
  return out;
}

std::string AbsentName(const Guest& g, const std::string& spec) {
  auto name = ParseKernelName(spec);
  if (!name || g.DiskByGuestName(name->disk)) return "";
  std::vector<std::string> have;
  for (const DiskInfo& d : g.disks) {
    have.push_back(fmt::format("{} ({})", d.guest_name, vm::BusName(d.bus)));
  }
  std::string out = fmt::format(" (this VM's disks are {}", fmt::join(have, ", "));
  if (name->position < g.disks.size()) {
    const DiskInfo& d = g.disks[name->position];
    std::string dev = d.device + (name->partition ? std::to_string(*name->partition) : "");
    if (const Filesystem* f = g.FindFs(dev)) out += "; at that position is " + Describe(g, *f);
  }
  return out + ")";
}

std::string Describe(const Guest& g, const Filesystem& f) {
  std::string tag = !f.uuid.empty() ? "UUID=" + f.uuid : !f.label.empty() ? "LABEL=" + f.label : "";
  return fmt::format("{} {}on {}", f.type, tag.empty() ? "" : tag + " ", GuestName(g, f.device));
}

}  // namespace imgcheck::guest
