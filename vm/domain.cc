#include "vm/domain.h"

#include <fmt/format.h>
#include <pugixml.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <map>
#include <utility>

namespace imgcheck::vm {
namespace {

// The deepest <backingStore> nesting read: QEMU itself stops at a few hundred images.
constexpr unsigned kMaxBackingDepth = 1000;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A number as libvirt writes addresses: decimal or 0x hex; nullopt when it is not one.
std::optional<unsigned> Number(const char* text) {
  if (!text || !*text) return std::nullopt;
  char* end = nullptr;
  unsigned long v = std::strtoul(text, &end, 0);
  if (*end || v > 0xffffffffu) return std::nullopt;
  return static_cast<unsigned>(v);
}

// A disk while it is read: what libvirt orders disks by, and its address for the guest's
// enumeration order.
struct Parsed {
  Disk disk;
  std::string libvirt_bus;  // <target bus>, as libvirt groups disks ("scsi" for virtio-scsi)
  int index = -1;           // TargetIndex of <target dev>, -1 when it has none
  std::optional<std::array<unsigned, 4>> pci;    // domain, bus, slot, function
  std::optional<std::array<unsigned, 4>> drive;  // controller, bus, target, unit
};

std::optional<std::array<unsigned, 4>> Address(pugi::xml_node disk, const char* type,
                                               std::array<const char*, 4> fields) {
  pugi::xml_node a = disk.child("address");
  if (!a || std::string_view(a.attribute("type").as_string()) != type) return std::nullopt;
  std::array<unsigned, 4> out{};
  for (size_t i = 0; i < fields.size(); ++i) {
    pugi::xml_attribute at = a.attribute(fields[i]);
    out[i] = at ? Number(at.value()).value_or(0) : 0;
  }
  return out;
}

// libvirt's virDomainDiskInsert: a disk goes after the last disk of its bus, or before the
// first disk of its bus whose target index is larger; other disks keep their XML order.
void LibvirtInsert(std::vector<Parsed>& disks, Parsed d) {
  int insert_at = -1;
  for (int i = static_cast<int>(disks.size()) - 1; i >= 0; --i) {
    const Parsed& e = disks[static_cast<size_t>(i)];
    if (e.libvirt_bus != d.libvirt_bus) continue;
    if (e.index > d.index) {
      insert_at = i;
    } else if (insert_at == -1) {
      insert_at = i + 1;
    }
  }
  if (insert_at < 0) insert_at = static_cast<int>(disks.size());
  disks.insert(disks.begin() + insert_at, std::move(d));
}

// The kernel names a family's disks in the order it finds them: virtio-blk in PCI order, the
// sd family in controller/bus/target/unit order. When every disk of a family has such an
// explicit address (virsh dumpxml of a defined domain always does), order the family's disks
// by it, in the slots they hold.
template <class Key>
void SortFamily(std::vector<Parsed>& disks, bool (*member)(const Parsed&), const Key& key) {
  std::vector<size_t> slots;
  for (size_t i = 0; i < disks.size(); ++i) {
    if (member(disks[i])) slots.push_back(i);
  }
  for (size_t i : slots) {
    if (!key(disks[i])) return;
  }
  std::vector<Parsed> family;
  for (size_t i : slots) family.push_back(std::move(disks[i]));
  std::stable_sort(family.begin(), family.end(),
                   [&](const Parsed& a, const Parsed& b) { return *key(a) < *key(b); });
  for (size_t k = 0; k < slots.size(); ++k) disks[slots[k]] = std::move(family[k]);
}

bool IsVirtio(const Parsed& p) { return p.disk.bus == Bus::kVirtio; }
bool IsSd(const Parsed& p) {
  return p.disk.bus != Bus::kVirtio && p.disk.bus != Bus::kNvme;
}

std::optional<Bus> BusOf(const std::string& bus, const std::string& controller_model) {
  if (bus == "scsi") {
    return controller_model.starts_with("virtio") ? Bus::kVirtioScsi : Bus::kScsi;
  }
  if (bus == "virtio-scsi") return std::nullopt;  // not a libvirt bus name
  return ParseBus(bus);
}

// libvirt infers a missing <target bus> from the name (virDomainDiskDefAssignBus... for x86).
std::string DefaultBus(const std::string& dev) {
  if (dev.starts_with("vd")) return "virtio";
  if (dev.starts_with("sd")) return "scsi";
  if (dev.starts_with("hd")) return "ide";
  if (dev.starts_with("xvd")) return "xen";
  if (dev.starts_with("fd")) return "fdc";
  return "";
}

Result<std::optional<Parsed>> ReadDisk(pugi::xml_node node,
                                       const std::map<std::pair<std::string, unsigned>,
                                                      std::string>& controllers,
                                       Machine& m) {
  std::string device = node.attribute("device").as_string("disk");
  std::string type = node.attribute("type").as_string("file");
  pugi::xml_node target = node.child("target");
  std::string dev = target.attribute("dev").as_string();
  if (device == "cdrom" || device == "floppy") {
    m.skipped.push_back({dev, device + ": not a disk of the guest's system, skipped"});
    return std::nullopt;
  }
  Parsed p;
  Disk& d = p.disk;
  d.target = dev;
  p.index = TargetIndex(dev) ? static_cast<int>(*TargetIndex(dev)) : -1;
  p.libvirt_bus = target.attribute("bus").as_string();
  if (p.libvirt_bus.empty()) p.libvirt_bus = DefaultBus(dev);
  pugi::xml_node driver = node.child("driver");
  if (pugi::xml_attribute t = driver.attribute("type")) {
    d.format = t.value();
  } else {
    d.format = "raw";  // libvirt never probes: no <driver type> is raw
    d.format_implied = true;
  }
  pugi::xml_node source = node.child("source");
  if (type == "file") {
    d.source = Source::kFile;
    d.path = source.attribute("file").as_string();
  } else if (type == "block") {
    d.source = Source::kBlock;
    d.path = source.attribute("dev").as_string();
  } else if (type == "volume") {
    d.source = Source::kVolume;
    d.pool = source.attribute("pool").as_string();
    d.volume = source.attribute("volume").as_string();
    d.source_text = fmt::format("pool {}, volume {}", source.attribute("pool").as_string(),
                                source.attribute("volume").as_string());
  } else if (type == "network") {
    d.source = Source::kNetwork;
    pugi::xml_node host = source.child("host");
    d.source_text = fmt::format("{}://{}/{}", source.attribute("protocol").as_string("?"),
                                host.attribute("name").as_string(),
                                source.attribute("name").as_string());
  } else {
    d.source = Source::kOther;
    d.source_text = type + " disk";
  }
  if ((d.source == Source::kFile || d.source == Source::kBlock) && d.path.empty()) {
    m.skipped.push_back({dev, "no source: an empty drive, skipped"});
    return std::nullopt;
  }
  for (pugi::xml_node sl : source.children("seclabel")) {
    std::string model = sl.attribute("model").as_string();
    if ((model.empty() || model == "dac") && std::string_view(sl.attribute("relabel").as_string()) == "no") {
      d.relabel = false;
    }
  }
  d.readonly = static_cast<bool>(node.child("readonly"));
  d.shareable = static_cast<bool>(node.child("shareable"));
  if (pugi::xml_node boot = node.child("boot")) d.boot_order = Number(boot.attribute("order").value());
  if (pugi::xml_node bs = node.child("backingStore")) {
    d.backing_declared = true;
    for (unsigned depth = 0; bs && bs.attribute("type"); bs = bs.child("backingStore")) {
      if (++depth > kMaxBackingDepth) {
        return Fail(ErrorKind::kLimit,
                    fmt::format("disk {}: <backingStore> is nested more than {} deep", dev,
                                kMaxBackingDepth));
      }
      DeclaredBacking b;
      pugi::xml_node src = bs.child("source");
      b.path = src.attribute("file") ? src.attribute("file").as_string()
                                     : src.attribute("dev").as_string();
      if (pugi::xml_attribute f = bs.child("format").attribute("type")) b.format = f.value();
      d.backing.push_back(std::move(b));
    }
  }
  p.pci = Address(node, "pci", {"domain", "bus", "slot", "function"});
  p.drive = Address(node, "drive", {"controller", "bus", "target", "unit"});
  // Drive addresses libvirt derives from the target index when none is given
  // (virDomainDiskDefAssignAddress): SATA 6 ports per controller, SCSI 7 units, IDE 2x2.
  unsigned idx = p.index < 0 ? 0 : static_cast<unsigned>(p.index);
  unsigned per_controller = p.libvirt_bus == "sata" ? 6 : p.libvirt_bus == "ide" ? 4 : 7;
  d.controller = p.drive ? (*p.drive)[0] : idx / per_controller;
  std::string model;
  if (p.libvirt_bus == "scsi") {
    auto it = controllers.find({"scsi", d.controller});
    model = it != controllers.end() && !it->second.empty() ? it->second : "lsilogic";
  } else if (p.libvirt_bus == "sata") {
    model = "ahci";
  }
  std::optional<Bus> bus = BusOf(p.libvirt_bus, model);
  if (!bus) {
    m.skipped.push_back({dev, fmt::format("bus '{}' is not modelled by imgcheck, skipped",
                                          p.libvirt_bus)});
    return std::nullopt;
  }
  d.bus = *bus;
  d.controller_model = model;
  return p;
}

}  // namespace

std::optional<unsigned> TargetIndex(std::string_view dev) {
  for (std::string_view prefix : {"xvd", "ubd", "fd", "hd", "vd", "sd"}) {
    if (dev.starts_with(prefix)) return DiskLetterIndex(dev.substr(prefix.size()));
  }
  return std::nullopt;
}

Result<Machine> ParseDomainXml(std::string_view xml, const std::string& origin) {
  if (xml.size() > kMaxDomainXml) {
    return Fail(ErrorKind::kLimit, fmt::format("{}: the domain XML is larger than {} MiB",
                                               origin, kMaxDomainXml >> 20));
  }
  pugi::xml_document doc;
  pugi::xml_parse_result res = doc.load_buffer(xml.data(), xml.size(),
                                               pugi::parse_default | pugi::parse_doctype,
                                               pugi::encoding_utf8);
  if (!res) {
    size_t at = std::min(static_cast<size_t>(std::max<ptrdiff_t>(res.offset, 0)), xml.size());
    size_t line = 1 + static_cast<size_t>(std::count(xml.begin(), xml.begin() + static_cast<ptrdiff_t>(at), '\n'));
    return Fail(ErrorKind::kInvalid, fmt::format("{}:{}: the domain XML is not well-formed: {}",
                                                 origin, line, res.description()));
  }
  for (pugi::xml_node n : doc.children()) {
    if (n.type() == pugi::node_doctype) {
      return Fail(ErrorKind::kInvalid,
                  fmt::format("{}: the domain XML has a DOCTYPE declaration: refused (entities "
                              "are never expanded; libvirt never writes one)",
                              origin));
    }
  }
  pugi::xml_node root = doc.document_element();
  if (std::string_view(root.name()) != "domain") {
    return Fail(ErrorKind::kInvalid,
                fmt::format("{}: not a libvirt domain: the root element is <{}>", origin,
                            root.name()));
  }
  Machine m;
  m.assumed = false;
  m.origin = origin;
  m.domain = root.child("name").text().as_string();
  if (m.domain.empty()) {
    return Fail(ErrorKind::kInvalid, fmt::format("{}: the domain has no <name>", origin));
  }
  m.domain_type = root.attribute("type").as_string();
  pugi::xml_node os = root.child("os");
  pugi::xml_node os_type = os.child("type");
  m.machine_type = os_type.attribute("machine").as_string("pc");
  if (m.machine_type.empty()) m.machine_type = "pc";
  m.arch = os_type.attribute("arch").as_string();
  pugi::xml_node loader = os.child("loader");
  if (loader) {
    std::string path = loader.text().as_string();
    if (!path.empty()) m.loader = path;
  }
  if (pugi::xml_node nv = os.child("nvram")) {
    std::string path = nv.text().as_string();
    if (!path.empty()) m.nvram = path;
    if (pugi::xml_attribute t = nv.attribute("template")) m.nvram_template = t.value();
  }
  std::string fw = os.attribute("firmware").as_string();
  std::string loader_lower = Lower(m.loader.value_or(""));
  bool efi_loader = std::string_view(loader.attribute("type").as_string()) == "pflash" ||
                    loader_lower.find("ovmf") != std::string::npos ||
                    loader_lower.find("edk2") != std::string::npos ||
                    loader_lower.find("aavmf") != std::string::npos;
  m.firmware = fw == "efi" || (fw.empty() && efi_loader) ? Firmware::kUefi : Firmware::kBios;
  m.secure_boot = std::string_view(loader.attribute("secure").as_string()) == "yes";
  for (pugi::xml_node f : os.child("firmware").children("feature")) {
    if (std::string_view(f.attribute("name").as_string()) == "secure-boot") {
      m.secure_boot = std::string_view(f.attribute("enabled").as_string()) == "yes";
    }
  }
  for (pugi::xml_node b : os.children("boot")) m.boot_devices.push_back(b.attribute("dev").as_string());
  for (pugi::xml_node sl : root.children("seclabel")) {
    std::string model = sl.attribute("model").as_string();
    std::string type = sl.attribute("type").as_string("dynamic");
    if (type == "none" && (model.empty() || model == "dac")) m.relabel = false;
    if (model != "dac") continue;
    if (std::string_view(sl.attribute("relabel").as_string()) == "no") m.relabel = false;
    std::string label = sl.child("label").text().as_string();
    if (!label.empty()) m.dac_label = label;
  }
  pugi::xml_node devices = root.child("devices");
  std::map<std::pair<std::string, unsigned>, std::string> controllers;
  for (pugi::xml_node c : devices.children("controller")) {
    unsigned index = Number(c.attribute("index").value()).value_or(0);
    controllers[{c.attribute("type").as_string(), index}] = c.attribute("model").as_string();
  }
  std::vector<Parsed> disks;
  for (pugi::xml_node node : devices.children("disk")) {
    auto p = ReadDisk(node, controllers, m);
    if (!p) return Fail(p.error().kind, origin + ": " + p.error().message);
    if (*p) LibvirtInsert(disks, std::move(**p));
  }
  SortFamily(disks, &IsVirtio, [](const Parsed& p) { return p.pci; });
  // Between the buses of the sd family (SATA, SCSI, USB) the kernel's order depends on which
  // driver loads first: libvirt's order of the buses (first use) is kept.
  std::vector<Bus> first_use;
  for (const Parsed& p : disks) {
    if (std::find(first_use.begin(), first_use.end(), p.disk.bus) == first_use.end()) {
      first_use.push_back(p.disk.bus);
    }
  }
  SortFamily(disks, &IsSd, [&](const Parsed& p) -> std::optional<std::array<unsigned, 5>> {
    if (!p.drive) return std::nullopt;
    auto rank = static_cast<unsigned>(std::find(first_use.begin(), first_use.end(), p.disk.bus) -
                                      first_use.begin());
    return std::array<unsigned, 5>{rank, (*p.drive)[0], (*p.drive)[1], (*p.drive)[2], (*p.drive)[3]};
  });
  for (Parsed& p : disks) m.disks.push_back(std::move(p.disk));
  PredictGuestNames(m);
  return m;
}

}  // namespace imgcheck::vm
