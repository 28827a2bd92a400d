// `imgcheck info` output: human text and JSON (keys as documented in the README).
#include <fmt/format.h>

#include <ctime>

#include "cli/report.h"
#include "qcow2/layout.h"

namespace imgcheck::cli {
namespace {

using namespace qcow2;

std::vector<std::string> BitNames(const Header& h, uint8_t type, uint64_t bits) {
  std::vector<std::string> names;
  for (uint8_t b = 0; b < 64; ++b) {
    if (bits & (1ull << b)) names.push_back(h.FeatureBitName(type, b));
  }
  return names;
}

std::string Bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.4g} {}", v, units[u]);
}

std::vector<std::string> BitmapFlags(uint32_t flags) {
  std::vector<std::string> f;
  if (flags & kBmeFlagInUse) f.push_back("in-use");
  if (flags & kBmeFlagAuto) f.push_back("auto");
  if (flags & kBmeFlagExtraDataCompatible) f.push_back("extra-data-compatible");
  return f;
}

const char* Encryption(uint32_t m) {
  return m == kCryptLuks ? "luks" : m == kCryptAes ? "aes" : m == kCryptNone ? "none" : "unknown";
}

std::string Date(uint32_t sec) {
  std::time_t t = sec;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

}  // namespace

nlohmann::ordered_json InfoToJson(const fsck::ImageInfo& i) {
  nlohmann::ordered_json j;
  j["filename"] = i.filename;
  j["format"] = i.format;
  if (i.failure) j["error"] = *i.failure;
  j["file-size"] = i.file_size;
  if (i.host_allocated) j["host-allocated-bytes"] = *i.host_allocated;
  if (i.host_free) j["host-free-bytes"] = *i.host_free;
  j["in-use"] = i.in_use.has_value();
  if (i.in_use) j["in-use-detail"] = *i.in_use;
  if (i.header) {
    const Header& h = *i.header;
    j["version"] = h.version;
    j["virtual-size"] = h.size;
    if (!h.fatal()) {
      j["cluster-size"] = h.cluster_size();
      j["refcount-bits"] = h.refcount_bits();
    }
    j["compression-type"] = h.compression_type == kCompressionZstd ? "zstd" : "zlib";
    nlohmann::ordered_json enc;
    enc["method"] = Encryption(h.crypt_method);
    if (h.crypto) {
      enc["luks-header-offset"] = h.crypto->offset;
      enc["luks-header-length"] = h.crypto->length;
    }
    j["encryption"] = enc;
    j["extended-l2"] = h.extended_l2();
    j["lazy-refcounts"] = (h.compatible_features & kCompatLazyRefcounts) != 0;
    j["corrupt"] = (h.incompatible_features & kIncompatCorrupt) != 0;
    j["dirty"] = (h.incompatible_features & kIncompatDirty) != 0;
    j["features"] = {{"incompatible", BitNames(h, 0, h.incompatible_features)},
                     {"compatible", BitNames(h, 1, h.compatible_features)},
                     {"autoclear", BitNames(h, 2, h.autoclear_features)}};
    nlohmann::ordered_json ext = nlohmann::ordered_json::array();
    for (const Extension& e : h.extensions) {
      ext.push_back({{"type", fmt::format("0x{:08x}", e.type)},
                     {"name", fsck::ExtensionName(e.type)},
                     {"length", e.length}});
    }
    j["header-extensions"] = ext;
    if (!h.backing_file.empty()) j["backing-filename"] = h.backing_file;
    if (h.backing_format) j["backing-format"] = *h.backing_format;
    if (h.data_file) j["data-file"] = *h.data_file;
    j["data-file-raw"] = h.data_file_raw();
  }
  nlohmann::ordered_json snaps = nlohmann::ordered_json::array();
  for (const Snapshot& s : i.snapshots) {
    nlohmann::ordered_json o{{"id", s.id},           {"name", s.name},
                             {"date-sec", s.date_sec}, {"date-nsec", s.date_nsec},
                             {"vm-clock-nsec", s.vm_clock_nsec},
                             {"vm-state-size", s.VmStateSize()}, {"l1-size", s.l1_size}};
    if (s.disk_size) o["disk-size"] = *s.disk_size;
    snaps.push_back(std::move(o));
  }
  j["snapshots"] = snaps;
  nlohmann::ordered_json bms = nlohmann::ordered_json::array();
  for (const BitmapEntry& b : i.bitmaps) {
    bms.push_back({{"name", b.name},
                   {"granularity", b.granularity_bits < 64 ? 1ull << b.granularity_bits : 0},
                   {"flags", BitmapFlags(b.flags)},
                   {"table-size", b.table_size}});
  }
  j["bitmaps"] = bms;
  const fsck::CheckResult& c = i.check;
  j["allocated-clusters"] = c.allocated_clusters;
  j["total-clusters"] = c.total_clusters;
  j["compressed-clusters"] = c.compressed_clusters;
  j["image-end-offset"] = c.image_end_offset;
  nlohmann::ordered_json chain = nlohmann::ordered_json::array();
  for (const fsck::ChainLink& l : c.chain) chain.push_back(ChainLinkJson(l, false));
  j["chain"] = chain;
  nlohmann::ordered_json problems = nlohmann::ordered_json::array();
  for (const fsck::Finding& f : c.findings) {
    if (f.severity == fsck::Severity::kInfo) continue;
    problems.push_back({{"slug", f.slug},
                        {"severity", std::string(fsck::SeverityName(f.severity))},
                        {"image", f.image},
                        {"message", f.message}});
  }
  j["problems"] = problems;
  return j;
}

void PrintInfoText(std::FILE* out, const fsck::ImageInfo& i) {
  fmt::print(out, "image: {}\n", i.filename);
  if (i.failure) {
    fmt::print(out, "error: {}\n", *i.failure);
    return;
  }
  fmt::print(out, "file: {} long", Bytes(i.file_size));
  if (i.host_allocated) fmt::print(out, ", {} allocated on the host", Bytes(*i.host_allocated));
  if (i.host_free) fmt::print(out, ", {} free on its filesystem", Bytes(*i.host_free));
  fmt::print(out, "\nin use: {}\n", i.in_use ? *i.in_use : "no (no QEMU locks held)");
  if (!i.header) {
    fmt::print(out, "format: {}\n", i.format);
    return;
  }
  const Header& h = *i.header;
  fmt::print(out, "format: qcow2 version {} ({})\n", h.version, h.version == 2 ? "compat 0.10"
                                                                             : "compat 1.1");
  fmt::print(out, "virtual size: {} ({} bytes)\n", Bytes(h.size), h.size);
  if (h.fatal()) {
    for (const auto& issue : h.issues) fmt::print(out, "header problem: {}\n", issue.message);
    return;
  }
  fmt::print(out, "cluster size: {}; refcount width: {} bits; L2 entries: {}\n",
             Bytes(h.cluster_size()), h.refcount_bits(),
             h.extended_l2() ? "extended (32 subclusters)" : "standard");
  auto list = [&](uint8_t type, uint64_t bits) {
    auto v = BitNames(h, type, bits);
    return v.empty() ? std::string("none") : fmt::format("{}", fmt::join(v, ", "));
  };
  fmt::print(out, "features: incompatible: {}; compatible: {}; autoclear: {}\n",
             list(0, h.incompatible_features), list(1, h.compatible_features),
             list(2, h.autoclear_features));
  fmt::print(out, "state: {}\n",
             h.incompatible_features & kIncompatCorrupt ? "CORRUPT (marked by QEMU)"
             : h.incompatible_features & kIncompatDirty ? "dirty (not closed cleanly)"
                                                       : "clean");
  fmt::print(out, "compression: {}; encryption: {}", h.compression_type ? "zstd" : "zlib",
             Encryption(h.crypt_method));
  if (h.crypto) {
    fmt::print(out, " (LUKS header at 0x{:x}, {})", h.crypto->offset, Bytes(h.crypto->length));
  }
  fmt::print(out, "\n");
  if (!h.backing_file.empty()) {
    fmt::print(out, "backing file: {} (format {})\n", h.backing_file,
               h.backing_format ? *h.backing_format : "not recorded");
  }
  if (h.data_file) {
    fmt::print(out, "data file: {}{}\n", *h.data_file, h.data_file_raw() ? " (raw)" : "");
  }
  if (!h.extensions.empty()) {
    fmt::print(out, "header extensions:\n");
    for (const Extension& e : h.extensions) {
      fmt::print(out, "  0x{:08x} {} ({} bytes)\n", e.type, fsck::ExtensionName(e.type), e.length);
    }
  }
  if (!i.snapshots.empty()) {
    fmt::print(out, "snapshots ({}):\n  {:<6} {:<20} {:<20} {:>12} {:>12}\n", i.snapshots.size(),
               "ID", "NAME", "DATE (UTC)", "VM STATE", "DISK SIZE");
    for (const Snapshot& s : i.snapshots) {
      fmt::print(out, "  {:<6} {:<20} {:<20} {:>12} {:>12}\n", s.id, s.name, Date(s.date_sec),
                 Bytes(s.VmStateSize()), s.disk_size ? Bytes(*s.disk_size) : "-");
    }
  }
  if (!i.bitmaps.empty()) {
    fmt::print(out, "bitmaps ({}):\n", i.bitmaps.size());
    for (const BitmapEntry& b : i.bitmaps) {
      auto flags = BitmapFlags(b.flags);
      fmt::print(out, "  {}: granularity {}, flags {}\n", b.name,
                 b.granularity_bits < 64 ? Bytes(1ull << b.granularity_bits) : "?",
                 flags.empty() ? "none" : fmt::format("{}", fmt::join(flags, ", ")));
    }
  }
  if (i.tables_problem) fmt::print(out, "tables: {}\n", *i.tables_problem);
  const fsck::CheckResult& c = i.check;
  fmt::print(out, "allocation: {} of {} clusters allocated ({} compressed); image end offset "
                  "0x{:x}\n",
             c.allocated_clusters, c.total_clusters, c.compressed_clusters, c.image_end_offset);
  if (!c.chain.empty()) {
    fmt::print(out, "chain:\n");
    for (const fsck::ChainLink& l : c.chain) {
      fmt::print(out, "  {}{}{} ({}, {} virtual, {} file)\n", std::string(2 * l.depth, ' '),
                 l.depth ? "└─ " : "", l.filename, l.format, Bytes(l.virtual_size),
                 Bytes(l.file_size));
    }
  }
  size_t problems = 0;
  for (const fsck::Finding& f : c.findings) problems += f.severity != fsck::Severity::kInfo;
  fmt::print(out, "check: {}\n", problems ? fmt::format("{} problem(s): run imgcheck check {}",
                                                        problems, i.filename)
                                          : std::string("no problems found"));
}

}  // namespace imgcheck::cli
