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

// Where a disk's data comes from (libvirt's <disk type=...>). Only kFile and kBlock (and a
// kVolume resolved through a libvirt connection) can be checked offline.
enum class Source : uint8_t { kFile, kBlock, kVolume, kNetwork, kOther };

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

  // From a domain (defaults otherwise):
  Source source = Source::kFile;
  std::string source_text;     // what the domain names when `path` is not a local file:
                               // "rbd://host/pool/image", "pool default, volume x.qcow2"
  std::string pool, volume;    // kVolume: <source pool volume> (path set once resolved)
  bool format_implied = false;  // no <driver type>: libvirt uses raw
  bool backing_declared = false;  // the domain has a <backingStore> element (an empty one
                                  // declares that there is no backing file)
  unsigned controller = 0;        // index of its controller (NVMe: disks on one controller are
                                  // its namespaces n1, n2, ...)
  std::string controller_model;   // SCSI: "virtio-scsi", "lsilogic", ...; SATA: "ahci"; else ""
  std::optional<bool> relabel;    // <source><seclabel model='dac' relabel=...>: per-disk DAC
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

  // From a domain (defaults otherwise):
  std::string origin;          // "domain XML vm.xml", "libvirt domain web1 on qemu:///system"
  std::string domain_type;     // <domain type>: "kvm", "qemu", "test"
  std::string arch;            // <os><type arch>, "" when not given
  std::vector<std::string> boot_devices;  // <os><boot dev=...> in order ("hd", "cdrom", ...)
  std::optional<std::string> nvram_template;  // <nvram template=...>
  std::optional<std::string> dac_label;  // <seclabel model='dac'><label>: "+107:+107", "qemu:kvm"
  bool relabel = true;  // libvirt's DAC driver chowns the images at start (seclabel relabel)
  bool session = false;  // qemu:///session: QEMU runs as the connecting user
  // Devices of the domain that are not disks imgcheck can check (cdroms, floppies, disks on
  // buses it does not model), each with the reason, for one information finding each.
  struct Skipped {
    std::string target, why;
  };
  std::vector<Skipped> skipped;

  bool q35() const;  // machine type is q35 (no IDE controller)
  // The disk the BIOS boots: the lowest <boot order>, else the first disk.
  const Disk* BootDisk() const;
};

// The VM libvirt would make of these images by default: virtio-blk disks vda, vdb, ... in order,
// BIOS, i440fx; formats as given (nullopt: probed).
Machine DefaultMachine(const std::vector<std::string>& images,
                       const std::optional<std::string>& format = std::nullopt);

// Sets guest_name of every disk from bus and order: virtio-blk vdX in order; SATA, SCSI,
// virtio-scsi, USB and IDE (libata) sdX in order; NVMe nvme<C>n<N>: C counts the controllers
// in order of first use, N the disks on one controller (DefaultMachine gives every disk its
// own controller: nvme0n1, nvme1n1). <target dev> is not the guest's name and is not used.
void PredictGuestNames(Machine& m);

// The guest's name of partition `n` of a disk: vda1, sda1, nvme0n1p1.
std::string PartitionName(std::string_view disk, unsigned n);

// "sda" -> 0, "vdb" -> 1, "sdaa" -> 26: the index of a letter-suffixed disk name; nullopt if
// the name is not one.
std::optional<unsigned> DiskLetterIndex(std::string_view letters);
std::string DiskLetters(unsigned index);  // 0 -> "a", 25 -> "z", 26 -> "aa"

}  // namespace imgcheck::vm
