// Our own model of the guest, built from what libguestfs reads: disks and partition tables (with
// the raw sectors), filesystems with their blkid tags, LVM (volume groups, logical volumes and
// the PV labels read from the disks themselves), the inspected root, and every filesystem
// mounted read-only at its own mount point so rules can read raw config text from any of them.
// Deliberately not used: inspect_get_mountpoints (it drops unresolvable fstab entries).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "guestfs/appliance.h"
#include "vm/machine.h"

namespace imgcheck::guest {

struct Partition {
  std::string device;  // /dev/sda1 in the appliance
  int number = 0;
  uint64_t start = 0, end = 0, size = 0;  // bytes
  std::string gpt_type;                    // upper-case GUID, GPT only
  std::string gpt_guid;                    // the partition's own GUID (UEFI boot entries name it)
  int mbr_id = 0;                          // MBR only
};

struct DiskInfo {
  std::string device;      // /dev/sda
  std::string image;       // the image file it comes from
  std::string guest_name;  // what the VM's kernel calls it (vda, sda, nvme0n1: from the bus)
  vm::Bus bus = vm::Bus::kVirtio;  // how the VM attaches it
  std::string controller_model;    // its SCSI controller's model (lsilogic, virtio-scsi, ...)
  std::string parttype;    // "msdos", "gpt" or "" (no partition table)
  uint64_t size = 0;
  std::vector<Partition> partitions;
  std::vector<uint8_t> head;  // sectors 0..33 (MBR, GPT header, entries)
  std::vector<uint8_t> tail;  // the last 33 sectors (backup GPT)
};

struct Filesystem {
  std::string device;  // /dev/sda1, /dev/centos/root, ...
  std::string type, uuid, label, partuuid, partlabel;
  std::string mount;  // where it is mounted in the appliance ("" if not mounted)
  // btrfs root in a subvolume (Ubuntu "@", Fedora "root"): its path from the top level ("/@");
  // guest paths on this filesystem are read below it. "" otherwise.
  std::string subvol;
};

struct VolumeGroup {
  std::string name;
  bool partial = false;
  int64_t pv_count = 0;
  int64_t pv_found = 0;  // PVs that LVM found
};

struct PvLabel {
  std::string device;  // the partition or disk holding the PV
  std::string uuid;    // with dashes, as LVM prints it
  std::string vg;      // from the metadata text ("" if unreadable)
  std::string vg_id;   // the VG's UUID from the same text
};

struct OsInfo {
  std::string root;  // the root filesystem device
  std::string type, distro, product;
  int major = 0, minor = 0;
};

// A raw kernel device name as a guest writes it: /dev/vda1, /dev/sdb, /dev/xvda2, /dev/hda1,
// /dev/nvme0n1p2. `disk` is the disk's name (vda, nvme0n1), `position` its index when disks are
// named in order (vdb: 1, nvme2n1: 2), `partition` the partition number if any.
struct KernelName {
  std::string disk;
  size_t position = 0;
  std::optional<unsigned> partition;
};
std::optional<KernelName> ParseKernelName(const std::string& spec);

// A libguestfs disk or partition name (/dev/sdX[N], also vd/hd/xvd) to the appliance kernel's
// name, given the kernel names of the disks in API order; other names (LV, md, dm) unchanged;
// nullopt for a disk beyond the list.
std::optional<std::string> TranslateDiskName(const std::vector<std::string>& kernel_disks,
                                             const std::string& device);

class Guest {
 public:
  // Builds the model; the appliance must be launched with the VM's disks in order.
  static Guest Collect(Appliance& app, const std::vector<Disk>& disks);
  // Mounts every filesystem read-only at its own mount point, without journal replay (after the
  // filesystem checks, which need them unmounted).
  void MountAll();
  // Finds the root filesystem and the distribution among the mounted filesystems (our own
  // rules, from /etc/os-release; libguestfs inspection is slow and hides its reasons).
  void DetectOs();

  std::vector<DiskInfo> disks;
  std::vector<Filesystem> filesystems;
  std::vector<VolumeGroup> vgs;
  std::vector<std::string> lvs;  // /dev/VG/LV
  std::vector<PvLabel> pvs;
  std::optional<OsInfo> os;
  std::vector<std::string> notes;  // what could not be read, for the no-os message

  // Files, read through the handle. `fs` is a filesystem device; paths are absolute in it.
  std::optional<std::string> Read(const std::string& fs, const std::string& path) const;
  bool Exists(const std::string& fs, const std::string& path) const;
  bool IsDir(const std::string& fs, const std::string& path) const;
  std::optional<int64_t> Size(const std::string& fs, const std::string& path) const;
  std::vector<std::string> List(const std::string& fs, const std::string& dir) const;
  // Copies a guest file to a local path.
  bool Download(const std::string& fs, const std::string& path, const std::string& local) const;
  // Runs a command in the appliance (not the guest); returns its output and exit status.
  std::pair<std::string, int> Shell(const std::string& command) const;
  // blkid tags of many devices in one round trip.
  std::map<std::string, std::map<std::string, std::string>> Probe(
      const std::vector<std::string>& devices) const;
  // The appliance kernel's name for a libguestfs device name, for use in Shell scripts. The API
  // names disks /dev/sdX in the order they were added, but the kernel may enumerate them in
  // another order (and the appliance's own disk among them); the daemon translates through
  // /dev/disk/by-path, and so do we. LV, md and dm names pass unchanged; nullopt when a disk
  // name cannot be translated.
  std::optional<std::string> KernelName(const std::string& device) const;
  const std::vector<std::string>& kernel_disks() const { return kernel_disks_; }

  const Filesystem* FindFs(const std::string& device) const;
  const Filesystem* RootFs() const { return os ? FindFs(os->root) : nullptr; }
  // Resolves a device spec as the guest would at boot: UUID=, LABEL=, PARTUUID=, PARTLABEL=,
  // /dev/disk/by-*, /dev/mapper/VG-LV, /dev/VG/LV, raw names (/dev/vdXN, sdXN, xvdXN, hdXN,
  // nvme0nXpN, by attach order). Returns the filesystem, or null.
  const Filesystem* Resolve(const std::string& spec) const;
  // For a raw kernel name, the filesystem the VM would find there: the name is matched against
  // the disks' predicted guest names (from the bus), never guessed by position; null when this
  // VM has no such device.
  const Filesystem* ByKernelName(const std::string& spec) const;
  const DiskInfo* DiskByGuestName(const std::string& name) const;
  bool LvExists(const std::string& vg, const std::string& lv) const;

 private:
  explicit Guest(Appliance& app) : app_(&app) {}
  std::string MountPath(const std::string& fs, const std::string& path) const;
  // Kernel names of the VM's disks in API order (see KernelName).
  void MapKernelNames(size_t disk_count);
  Appliance* app_;
  std::vector<std::string> kernel_disks_;
};

}  // namespace imgcheck::guest
