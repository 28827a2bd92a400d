// The VM as it will run: its disks in attach order (path, declared format, bus, the guest's
// predicted device name), its firmware and machine type. Built from a libvirt domain when one is
// given (vm/domain.*), otherwise from libvirt's defaults (virtio-blk, BIOS, i440fx), which the
// guest rules then say they assumed. Everything that depends on how a VM attaches its disks reads
// this model: the guest rules (device names, initramfs drivers, firmware), boot-test (the QEMU
// command line) and the Windows rules (the boot-start storage driver of the bus).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace imgcheck::vm {

// The bus a disk is attached to, as libvirt's <target bus=...> names it (virtio-scsi is bus
// "scsi" on a controller of model virtio-scsi).
enum class Bus : uint8_t { kVirtio, kVirtioScsi, kSata, kScsi, kIde, kNvme, kUsb };
std::string_view BusName(Bus b);                 // "virtio", "virtio-scsi", "sata", ...
std::optional<Bus> ParseBus(std::string_view s);  // the names above

enum class Firmware : uint8_t { kBios, kUefi };
std::string_view FirmwareName(Firmware f);  // "bios", "uefi"

// One image of a declared <backingStore> chain.
struct DeclaredBacking {
  std::string path;
  std::optional<std::string> format;
};

struct Disk {
  std::string path;                   // file or block device
  std::optional<std::string> format;  // declared format ("qcow2", "raw"); nullopt: probed
  Bus bus = Bus::kVirtio;
  std::string target;                 // <target dev>, as declared ("" without a domain)
  std::string guest_name;             // predicted kernel name in the guest: vda, sda, nvme0n1
  bool readonly = false;
  bool shareable = false;
  std::optional<unsigned> boot_order;  // <boot order=N/>
  std::vector<DeclaredBacking> backing;  // declared <backingStore> chain, nearest first
};

struct Machine {
  std::string domain;         // the domain's name; "" when no domain was given
  bool assumed = true;        // true: no domain; libvirt's defaults are assumed
  std::string machine_type;   // "pc-q35-7.2", "pc-i440fx-7.2", "q35", "pc"
  Firmware firmware = Firmware::kBios;
  bool secure_boot = false;
  std::optional<std::string> loader;  // firmware code path
  std::optional<std::string> nvram;   // NVRAM variables file
  std::vector<Disk> disks;            // attach order

  bool q35() const;  // machine type is q35 (no IDE controller)
};

// The VM libvirt would make of these images by default: virtio-blk disks vda, vdb, ... in order,
// BIOS, i440fx; formats as given (nullopt: probed).
Machine DefaultMachine(const std::vector<std::string>& images,
                       const std::optional<std::string>& format = std::nullopt);

// Sets guest_name of every disk from bus and order: virtio-blk vdX in order; SATA, SCSI,
// virtio-scsi, USB and IDE (libata) sdX in order; NVMe nvme<N>n1, one controller per disk.
// <target dev> is not the guest's name and is not used.
void PredictGuestNames(Machine& m);

// "sda" -> 0, "vdb" -> 1, "sdaa" -> 26: the index of a letter-suffixed disk name; nullopt if
// the name is not one.
std::optional<unsigned> DiskLetterIndex(std::string_view letters);
std::string DiskLetters(unsigned index);  // 0 -> "a", 25 -> "z", 26 -> "aa"

}  // namespace imgcheck::vm
