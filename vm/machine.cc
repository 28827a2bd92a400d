#include "vm/machine.h"

#include <array>
#include <utility>

namespace imgcheck::vm {

namespace {
constexpr std::array<std::pair<Bus, std::string_view>, 7> kBusNames = {{
    {Bus::kVirtio, "virtio"},
    {Bus::kVirtioScsi, "virtio-scsi"},
    {Bus::kSata, "sata"},
    {Bus::kScsi, "scsi"},
    {Bus::kIde, "ide"},
    {Bus::kNvme, "nvme"},
    {Bus::kUsb, "usb"},
}};
}  // namespace

std::string_view BusName(Bus b) {
  for (const auto& [bus, name] : kBusNames) {
    if (bus == b) return name;
  }
  return "unknown";
}

std::optional<Bus> ParseBus(std::string_view s) {
  for (const auto& [bus, name] : kBusNames) {
    if (name == s) return bus;
  }
  return std::nullopt;
}

std::string_view FirmwareName(Firmware f) { return f == Firmware::kUefi ? "uefi" : "bios"; }

bool Machine::q35() const { return machine_type.find("q35") != std::string::npos; }

const Disk* Machine::BootDisk() const {
  const Disk* best = nullptr;
  for (const Disk& d : disks) {
    if (d.boot_order && (!best || !best->boot_order || *d.boot_order < *best->boot_order)) {
      best = &d;
    }
  }
  if (best) return best;
  return disks.empty() ? nullptr : &disks.front();
}

std::string PartitionName(std::string_view disk, unsigned n) {
  bool digit = !disk.empty() && disk.back() >= '0' && disk.back() <= '9';
  return std::string(disk) + (digit ? "p" : "") + std::to_string(n);
}

Machine DefaultMachine(const std::vector<std::string>& images,
                       const std::optional<std::string>& format) {
  Machine m;
  m.machine_type = "pc";
  for (const std::string& path : images) {
    Disk d;
    d.path = path;
    d.format = format;
    d.controller = static_cast<unsigned>(m.disks.size());  // NVMe (--bus): one controller each
    m.disks.push_back(std::move(d));
  }
  PredictGuestNames(m);
  return m;
}

std::string DiskLetters(unsigned index) {
  // Linux's sd_format_disk_name: a..z, aa..zz, aaa...
  std::string s;
  unsigned i = index + 1;
  while (i > 0) {
    --i;
    s.insert(s.begin(), static_cast<char>('a' + i % 26));
    i /= 26;
  }
  return s;
}

std::optional<unsigned> DiskLetterIndex(std::string_view letters) {
  if (letters.empty() || letters.size() > 3) return std::nullopt;
  unsigned v = 0;
  for (char c : letters) {
    if (c < 'a' || c > 'z') return std::nullopt;
    v = v * 26 + static_cast<unsigned>(c - 'a' + 1);
  }
  return v - 1;
}

void PredictGuestNames(Machine& m) {
  unsigned vd = 0, sd = 0;
  std::vector<std::pair<unsigned, unsigned>> nvme;  // controller index -> namespaces so far
  for (Disk& d : m.disks) {
    switch (d.bus) {
      case Bus::kVirtio:
        d.guest_name = "vd" + DiskLetters(vd++);
        break;
      case Bus::kNvme: {
        size_t c = 0;
        while (c < nvme.size() && nvme[c].first != d.controller) ++c;
        if (c == nvme.size()) nvme.emplace_back(d.controller, 0);
        d.guest_name = "nvme" + std::to_string(c) + "n" + std::to_string(++nvme[c].second);
        break;
      }
      default:  // SATA, SCSI, virtio-scsi, USB and IDE: libata and the SCSI layer, sdX
        d.guest_name = "sd" + DiskLetters(sd++);
        break;
    }
  }
}

}  // namespace imgcheck::vm
