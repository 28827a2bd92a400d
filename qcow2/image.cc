#include "qcow2/image.h"

#include <algorithm>
#include <cstring>

namespace imgcheck::qcow2 {

Probe ProbeFormat(const Device& dev) {
  uint8_t buf[512] = {};
  if (!dev.Read(0, buf)) return {Format::kRaw, "raw"};
  auto magic = [&](const char* m, size_t off = 0) {
    return std::memcmp(buf + off, m, std::strlen(m)) == 0;
  };
  // As QEMU's qcow2_probe: the magic and a version of at least 2 (a bare magic probes as raw).
  if (magic("QFI\xfb") && boost::endian::load_big_u32(buf + 4) >= 2) {
    return {Format::kQcow2, "qcow2"};
  }
  if (magic("KDMV") || magic("# Disk DescriptorFile")) return {Format::kOther, "vmdk"};
  if (magic("<<< ")) return {Format::kOther, "vdi"};
  if (magic("vhdxfile")) return {Format::kOther, "vhdx"};
  if (magic("QED")) return {Format::kOther, "qed"};
  if (magic("conectix")) return {Format::kOther, "vpc"};
  if (magic("WithoutFreeSpace") || magic("WithouFreSpacExt")) return {Format::kOther, "parallels"};
  return {Format::kRaw, "raw"};
}

Result<Header> ReadHeader(const Device& dev) {
  auto probe = dev.ReadVec(0, kHeaderProbeBytes);
  if (!probe) return tl::unexpected(probe.error());
  uint32_t cluster_bits = 0;
  if (probe->size() >= 24) {
    cluster_bits = boost::endian::load_big_u32(&(*probe)[20]);
  }
  if (cluster_bits >= kMinClusterBits && cluster_bits <= kMaxClusterBits &&
      (1ull << cluster_bits) > kHeaderProbeBytes) {
    auto full = dev.ReadVec(0, size_t{1} << cluster_bits);
    if (!full) return tl::unexpected(full.error());
    return ParseHeader(*full);
  }
  size_t n = cluster_bits >= kMinClusterBits && cluster_bits <= kMaxClusterBits
                 ? size_t{1} << cluster_bits
                 : probe->size();
  return ParseHeader(ByteView(*probe).first(n));
}

Result<SnapshotTable> ReadSnapshots(const Device& dev, const Header& h) {
  if (h.nb_snapshots == 0) return SnapshotTable{};
  if (h.nb_snapshots > kMaxSnapshots || h.snapshots_offset % h.cluster_size()) {
    return Fail(ErrorKind::kInvalid, "the snapshot table header fields are invalid");
  }
  auto bytes = ReadSnapshotArea(dev, h, h.nb_snapshots);
  if (!bytes) return tl::unexpected(bytes.error());
  return ParseSnapshotTable(*bytes, h.nb_snapshots);
}

Result<std::vector<uint8_t>> ReadSnapshotArea(const Device& dev, const Header& h, uint32_t count) {
  return dev.ReadVec(h.snapshots_offset,
                     std::min<uint64_t>(kMaxSnapshotTableBytes, count * kMaxSnapshotEntryBytes));
}

Result<BitmapDirectory> ReadBitmaps(const Device& dev, const Header& h) {
  if (!h.bitmaps) return BitmapDirectory{};
  auto bytes = dev.ReadVec(h.bitmaps->directory_offset, h.bitmaps->directory_size);
  if (!bytes) return tl::unexpected(bytes.error());
  return ParseBitmapDirectory(*bytes, h.bitmaps->nb_bitmaps);
}

}  // namespace imgcheck::qcow2
