// LVM across the given disks: volume groups missing a PV, VG names and PV UUIDs duplicated by
// cloned templates, and the guest's own lvm.conf filters or devices file that would hide its PVs
// (the appliance ignores both, so only reading them tells).
#include <fmt/format.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "guestfs/rules.h"

namespace imgcheck::guest {
namespace {

using fsck::P;

std::string DiskOf(const Guest& g, const std::string& device) {
  for (const DiskInfo& d : g.disks) {
    if (device.starts_with(d.device)) return d.image;
  }
  return "";
}

// An lvm.conf filter: ["a|regex|", "r|regex|"]; the first matching pattern decides, and a
// device no pattern matches is accepted.
bool Accepted(const std::vector<std::string>& patterns, const std::string& dev) {
  for (const std::string& p : patterns) {
    if (p.size() < 3) continue;
    char delim = p[1];
    size_t end = p.rfind(delim);
    if (end <= 1) continue;
    try {
      if (std::regex_search(dev, std::regex(p.substr(2, end - 2)))) return p[0] == 'a';
    } catch (const std::regex_error&) {
      continue;  // a pattern we cannot read: judge nothing by it
    }
  }
  return true;
}

}  // namespace

void CheckLvm(const Guest& g, Reporter& r) {
  std::map<std::string, std::vector<const PvLabel*>> by_uuid;
  std::map<std::string, std::set<std::string>> vg_ids;
  for (const PvLabel& pv : g.pvs) {
    by_uuid[pv.uuid].push_back(&pv);
    if (!pv.vg.empty()) vg_ids[pv.vg].insert(pv.vg_id);
  }
  std::set<std::string> cloned_vgs;
  for (const auto& [uuid, pvs] : by_uuid) {
    if (pvs.size() < 2) continue;
    std::vector<std::string> where;
    for (const PvLabel* pv : pvs) {
      where.push_back(fmt::format("{} ({})", GuestName(g, pv->device), DiskOf(g, pv->device)));
      if (!pv->vg.empty()) cloned_vgs.insert(pv->vg);
    }
    r.Report(P::kLvmDuplicatePv, fsck::Fields{.name = uuid,
                                              .detail = fmt::format("{}", fmt::join(where, " and "))});
  }
  for (const auto& [vg, ids] : vg_ids) {
    if (ids.size() < 2 && !cloned_vgs.count(vg)) continue;
    std::set<std::string> disks;
    for (const PvLabel& pv : g.pvs) {
      if (pv.vg == vg) disks.insert(DiskOf(g, pv.device));
    }
    r.Report(P::kLvmDuplicateVg, fsck::Fields{.name = vg,
                                              .detail = fmt::format("{}", fmt::join(disks, ", "))});
  }
  std::set<std::string> seen_vgs;
  for (const VolumeGroup& vg : g.vgs) {
    seen_vgs.insert(vg.name);
    int64_t missing = std::max<int64_t>(vg.pv_count - vg.pv_found, vg.partial ? 1 : 0);
    if (missing <= 0) continue;
    r.Report(P::kLvmVgPartial,
             fsck::Fields{.value = static_cast<uint64_t>(missing),
                          .name = vg.name,
                          .detail = fmt::format(": it has {} of its {} PVs on the disks given; "
                                                "its logical volumes will not activate",
                                                vg.pv_found, vg.pv_count)});
  }
  for (const auto& [vg, ids] : vg_ids) {
    if (seen_vgs.count(vg)) continue;
    r.Report(P::kLvmVgPartial, fsck::Fields{.value = 1, .name = vg,
                                            .detail = ": LVM could not assemble it at all"});
  }
  // The guest's own LVM configuration.
  const Filesystem* root = g.RootFs();
  if (!root || g.pvs.empty()) return;
  bool devices_file_off = false;
  if (auto conf = g.Read(root->device, "/etc/lvm/lvm.conf")) {
    std::istringstream in(*conf);
    uint64_t n = 0;
    static const std::regex kFilter(R"(^\s*(global_filter|filter)\s*=\s*\[(.*)\])");
    static const std::regex kItem(R"x("([^"]*)")x");
    for (std::string line; std::getline(in, line);) {
      ++n;
      if (std::regex_search(line, std::regex(R"(^\s*use_devicesfile\s*=\s*0)"))) devices_file_off = true;
      std::smatch m;
      if (!std::regex_search(line, m, kFilter)) continue;
      std::vector<std::string> patterns;
      std::string items = m[2];
      for (auto it = std::sregex_iterator(items.begin(), items.end(), kItem);
           it != std::sregex_iterator(); ++it) {
        patterns.push_back((*it)[1]);
      }
      for (const PvLabel& pv : g.pvs) {
        std::string name = GuestName(g, pv.device);
        if (!Accepted(patterns, name)) {
          r.Report(P::kLvmFilterHidesPv,
                   fsck::Fields{.name = fmt::format("{} ({})", name, pv.uuid),
                                .file = "/etc/lvm/lvm.conf", .line = n, .evidence = line,
                                .fix = fmt::format("accept {} in {}", name, m[1].str())});
        }
      }
    }
  }
  auto devices = g.Read(root->device, "/etc/lvm/devices/system.devices");
  if (devices && !devices_file_off) {
    std::set<std::string> listed;
    static const std::regex kPvid(R"(PVID=([A-Za-z0-9]+))");
    for (auto it = std::sregex_iterator(devices->begin(), devices->end(), kPvid);
         it != std::sregex_iterator(); ++it) {
      listed.insert((*it)[1]);
    }
    std::vector<std::string> hidden;
    for (const PvLabel& pv : g.pvs) {
      std::string id = pv.uuid;
      id.erase(std::remove(id.begin(), id.end(), '-'), id.end());
      if (!listed.count(id)) hidden.push_back(fmt::format("{} {}", GuestName(g, pv.device), pv.uuid));
    }
    if (!hidden.empty()) {
      r.Report(P::kLvmDevicesFileHidesPv,
               fsck::Fields{.detail = fmt::format("not listed: {}", fmt::join(hidden, ", ")),
                            .file = "/etc/lvm/devices/system.devices",
                            .fix = "rm /etc/lvm/devices/system.devices in the template, or "
                                   "vgimportdevices -a on first boot"});
    }
  }
}

}  // namespace imgcheck::guest
