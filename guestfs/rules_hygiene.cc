// Template hygiene, for CI (warnings only): state that every clone would share.
#include <fmt/format.h>

#include <algorithm>

#include "guestfs/rules.h"

namespace imgcheck::guest {

void CheckHygiene(const Guest& g, Reporter& r) {
  using fsck::P;
  const std::string root = g.RootFs()->device;
  if (auto id = g.Read(root, "/etc/machine-id")) {
    std::string v = *id;
    v.erase(std::remove_if(v.begin(), v.end(), ::isspace), v.end());
    if (!v.empty() && v != "uninitialized") {
      r.Report(P::kHygieneMachineId, fsck::Fields{.file = "/etc/machine-id", .evidence = v});
    }
  }
  std::vector<std::string> keys;
  for (const std::string& f : g.List(root, "/etc/ssh")) {
    if (f.starts_with("ssh_host_") && f.ends_with("_key")) keys.push_back("/etc/ssh/" + f);
  }
  if (!keys.empty()) {
    r.Report(P::kHygieneSshHostKeys, fsck::Fields{.detail = fmt::format("{}", fmt::join(keys, ", ")),
                                                  .file = keys.front()});
  }
  std::vector<std::string> cloud;
  if (g.Exists(root, "/var/lib/cloud/instance")) cloud.push_back("/var/lib/cloud/instance");
  if (!g.List(root, "/var/lib/cloud/instances").empty()) cloud.push_back("/var/lib/cloud/instances/");
  if (!cloud.empty()) {
    r.Report(P::kHygieneCloudInitState,
             fsck::Fields{.detail = fmt::format("{}", fmt::join(cloud, ", ")), .file = cloud.front()});
  }
  const std::string rules = "/etc/udev/rules.d/70-persistent-net.rules";
  if (auto text = g.Read(root, rules); text && text->find("ATTR{address}") != std::string::npos) {
    size_t at = text->find("ATTR{address}");
    r.Report(P::kHygienePersistentNetRules,
             fsck::Fields{.detail = text->substr(at, text->find('\n', at) - at), .file = rules});
  }
}

}  // namespace imgcheck::guest
