// The VM model in reports: `imgcheck info` with a domain, and the "vm" key of check results.
#include <fmt/format.h>

#include "cli/report.h"

namespace imgcheck::cli {
namespace {

std::string_view SourceName(vm::Source s) {
  switch (s) {
    case vm::Source::kFile: return "file";
    case vm::Source::kBlock: return "block";
    case vm::Source::kVolume: return "volume";
    case vm::Source::kNetwork: return "network";
    case vm::Source::kOther: return "other";
  }
  return "other";
}

}  // namespace

nlohmann::ordered_json VmDiskJson(const fsck::VmDisk& d) {
  return {{"domain", d.domain}, {"target", d.target}, {"bus", d.bus},
          {"guest-name", d.guest_name}};
}

nlohmann::ordered_json MachineToJson(const vm::Machine& m) {
  using Json = nlohmann::ordered_json;
  Json j{{"name", m.domain},
         {"origin", m.origin},
         {"machine", m.machine_type},
         {"firmware", vm::FirmwareName(m.firmware)},
         {"secure-boot", m.secure_boot}};
  if (m.loader) j["loader"] = *m.loader;
  if (m.nvram) j["nvram"] = *m.nvram;
  Json disks = Json::array();
  for (const vm::Disk& d : m.disks) {
    Json o{{"target", d.target},
           {"bus", vm::BusName(d.bus)},
           {"guest-name", d.guest_name},
           {"type", SourceName(d.source)},
           {"path", d.path}};
    if (!d.source_text.empty()) o["source"] = d.source_text;
    o["format"] = d.format ? Json(*d.format) : Json(nullptr);
    if (!d.controller_model.empty()) o["controller-model"] = d.controller_model;
    if (d.boot_order) o["boot-order"] = *d.boot_order;
    o["readonly"] = d.readonly;
    o["shareable"] = d.shareable;
    if (d.backing_declared) {
      Json chain = Json::array();
      for (const vm::DeclaredBacking& b : d.backing) {
        chain.push_back({{"path", b.path}, {"format", b.format ? Json(*b.format) : Json(nullptr)}});
      }
      o["backing-store"] = chain;
    }
    disks.push_back(o);
  }
  j["disks"] = disks;
  return j;
}

void PrintMachineText(std::FILE* out, const vm::Machine& m) {
  fmt::print(out, "domain {} ({}): machine {}, firmware {}{}{}\n", m.domain, m.origin,
             m.machine_type, vm::FirmwareName(m.firmware), m.secure_boot ? " (secure boot)" : "",
             m.loader ? ", loader " + *m.loader : "");
  if (m.nvram) fmt::print(out, "  NVRAM {}\n", *m.nvram);
  for (const vm::Disk& d : m.disks) {
    fmt::print(out, "  {} ({}, the guest's {}): {} {}{}{}{}\n", d.target, vm::BusName(d.bus),
               d.guest_name, SourceName(d.source), d.path.empty() ? d.source_text : d.path,
               d.format ? ", declared " + *d.format + (d.format_implied ? " (no <driver type>)" : "")
                        : "",
               d.boot_order ? fmt::format(", boot order {}", *d.boot_order) : "",
               d.readonly ? ", read-only" : "");
  }
  for (const vm::Machine::Skipped& s : m.skipped) fmt::print(out, "  {}: {}\n", s.target, s.why);
}

}  // namespace imgcheck::cli
