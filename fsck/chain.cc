#include "fsck/chain.h"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "fsck/check.h"
#include "fsck/host.h"
#include "qcow2/backing.h"
#include "qcow2/device.h"
#include "qcow2/image.h"

namespace imgcheck::fsck {

using namespace qcow2;

namespace {

}  // namespace

std::optional<std::string> NotDiskData(const Device& dev) {
  uint64_t size = dev.Size();
  if (size % 512) return fmt::format("its size, {} bytes, is not a multiple of 512", size);
  if (size == 0 || size > (16ull << 20)) return std::nullopt;
  std::vector<uint8_t> head(std::min<uint64_t>(size, 65536));
  if (!dev.Read(0, head)) return std::nullopt;
  bool text = std::all_of(head.begin(), head.end(), [](uint8_t c) {
    return c == '\n' || c == '\t' || c == '\r' || (c >= 0x20 && c < 0x7f);
  });
  if (text) return "it holds only printable text: a host file, not disk data";
  return std::nullopt;
}

std::optional<std::string> ChainReaches(const std::string& path, const Device& target) {
  const auto* t = dynamic_cast<const FileDevice*>(&target);
  if (!t) return std::nullopt;
  std::string current = path;
  std::vector<std::string> seen;
  for (int depth = 0; depth < 256; ++depth) {
    auto dev = FileDevice::Open(current);
    if (!dev) return std::nullopt;
    seen.push_back(current);
    if ((*dev)->dev() == t->dev() && (*dev)->ino() == t->ino()) {
      return fmt::format("{}", fmt::join(seen, " -> "));
    }
    if (ProbeFormat(**dev).format != Format::kQcow2) return std::nullopt;
    auto h = ReadHeader(**dev);
    if (!h || h->backing_file.empty() || ClassifyName(h->backing_file).kind != NameKind::kPath) {
      return std::nullopt;
    }
    current = ResolveRelative(h->backing_file, current);
  }
  return std::nullopt;
}

namespace {

// Opens a file named by an image, reporting why it could not be opened.
struct OpenNamed {
  std::unique_ptr<FileDevice> dev;
  bool reported = false;
};

OpenNamed Open(Sink& sink, const std::string& name, const std::string& resolved,
               const std::string& referrer, P missing, P unreadable, P not_image) {
  auto dev = FileDevice::Open(resolved);
  if (dev) return {std::move(*dev), false};
  const Error& e = dev.error();
  Fields f{.name = name, .owner = e.sys_errno ? std::strerror(e.sys_errno) : e.message,
           .other = resolved,
           .detail = referrer.empty() ? (name.starts_with("/") ? "absolute path"
                                                               : "relative to the working "
                                                                 "directory, as QEMU opens data "
                                                                 "files")
                                      : DescribeResolution(name, referrer)};
  if (e.kind == ErrorKind::kInvalid) {
    f.detail = "not a regular file or block device";
    sink.Report(not_image, f);
  } else if (e.sys_errno == ENOENT || e.sys_errno == ENOTDIR) {
    sink.Report(missing, f);
  } else {
    sink.Report(unreadable, f);
  }
  return {nullptr, true};
}

void CheckDataFile(CheckResult& top, const Header& h, const std::string& image,
                   uint64_t data_end, const ChainOptions& opts) {
  if (!h.has_data_file() || !h.data_file) return;
  Sink sink(top, image);
  const std::string& name = *h.data_file;
  if (opts.untrusted) {
    sink.Report(P::kUntrustedDataFile, Fields{.name = name});
    return;
  }
  if (ClassifiedName c = ClassifyName(name); c.kind != NameKind::kPath) {
    sink.Report(P::kDataFileProtocol, Fields{.name = name, .other = c.protocol});
    return;
  }
  // QEMU 7.2 opens a relative data file name relative to its working directory, not to the
  // image (unlike backing files): look where QEMU would.
  const std::string& resolved = name;
  OpenNamed f = Open(sink, name, resolved, "", P::kDataFileMissing, P::kDataFileUnreadable,
                     P::kDataFileNotImage);
  if (!f.dev) return;
  if (f.dev->Size() < data_end) {
    sink.Report(P::kDataFileShort,
                Fields{.value = f.dev->Size(), .expected = data_end, .other = resolved});
  } else if (auto why = NotDiskData(*f.dev)) {
    sink.Report(P::kDataFileNotImage, Fields{.other = resolved, .detail = *why});
  }
}

void Merge(CheckResult& top, CheckResult&& base) {
  top.check_errors += base.check_errors;
  top.corruptions += base.corruptions;
  top.leaks += base.leaks;
  top.findings_suppressed += base.findings_suppressed;
  for (Finding& f : base.findings) top.findings.push_back(std::move(f));
}

ChainLink Link(const CheckResult& r, const std::string& path, const Device& dev,
               const std::optional<Header>& h, uint32_t depth) {
  ChainLink l{.filename = path, .format = r.format, .depth = depth,
              .virtual_size = h ? h->size : dev.Size(), .file_size = dev.Size(),
              .check_errors = r.check_errors + (r.failure ? 1 : 0),
              .corruptions = r.corruptions, .leaks = r.leaks};
  if (h && !h->backing_file.empty()) l.backing_filename = h->backing_file;
  if (h && h->backing_format) l.backing_format = h->backing_format;
  return l;
}

void HostChecks(CheckResult& top, const FileDevice& dev, const std::optional<Header>& h) {
  Sink sink(top, dev.Name());
  if (auto locks = ProbeQemuLocks(dev.fd())) {
    sink.Report(P::kImageInUse, Fields{.detail = *locks});
  }
  if (!h) return;
  auto space = ProbeSpace(dev.fd());
  if (!space) return;
  uint64_t full = std::max(h->size, top.image_end_offset);
  uint64_t growth = full > space->allocated_bytes ? full - space->allocated_bytes : 0;
  if (growth > space->free_bytes) {
    sink.Report(P::kHostSpaceShort, Fields{.value = growth, .expected = space->free_bytes});
  }
}

std::optional<Header> HeaderOf(const Device& dev) {
  if (ProbeFormat(dev).format != Format::kQcow2) return std::nullopt;
  auto h = ReadHeader(dev);
  if (!h || h->fatal()) return std::nullopt;
  return *h;
}

}  // namespace

CheckResult CheckChain(const std::string& path, const CheckOptions& opts,
                       const ChainOptions& chain) {
  auto opened = FileDevice::Open(path);
  if (!opened) {
    CheckResult r;
    r.filename = path;
    r.failure = opened.error().message;
    return r;
  }
  std::unique_ptr<FileDevice> dev = std::move(*opened);
  const DeclaredFormat* declared = chain.format ? &*chain.format : nullptr;
  CheckResult top = CheckDevice(*dev, path, opts, declared);
  // A declared format is what QEMU opens: a raw disk holding a qcow2 header has no chain.
  std::optional<Header> header =
      top.format == "qcow2" ? HeaderOf(*dev) : std::nullopt;
  HostChecks(top, *dev, header);
  top.chain.push_back(Link(top, path, *dev, header, 0));
  if (header) {
    top.facts = ImageFacts{.version = header->version,
                           .cluster_size = header->cluster_size(),
                           .virtual_size = header->size,
                           .has_backing = !header->backing_file.empty(),
                           .snapshots = header->nb_snapshots,
                           .bitmaps = header->bitmaps ? header->bitmaps->nb_bitmaps : 0,
                           .encrypted = header->crypt_method != 0,
                           .data_file = header->has_data_file()};
  }

  std::vector<std::pair<uint64_t, uint64_t>> seen{{dev->dev(), dev->ino()}};
  std::vector<std::string> names{path};
  std::string current = path;
  uint64_t data_end = top.data_file_end;
  for (uint32_t depth = 1; header; ++depth) {
    CheckDataFile(top, *header, current, data_end, chain);
    if (header->backing_file.empty()) break;
    const std::string& name = header->backing_file;
    Sink sink(top, current);
    if (chain.untrusted) {
      sink.Report(P::kUntrustedBackingFile, Fields{.name = name});
      break;
    }
    if (ClassifiedName c = ClassifyName(name); c.kind != NameKind::kPath) {
      sink.Report(P::kChainBackingProtocol, Fields{.name = name, .other = c.protocol});
      break;
    }
    if (depth >= chain.max_depth) {
      sink.Report(P::kChainTooDeep, Fields{.value = chain.max_depth, .name = current});
      break;
    }
    std::string resolved = ResolveRelative(name, current);
    OpenNamed next = Open(sink, name, resolved, current, P::kChainBackingMissing,
                          P::kChainBackingUnreadable, P::kChainBackingNotImage);
    if (!next.dev) break;
    std::pair<uint64_t, uint64_t> id{next.dev->dev(), next.dev->ino()};
    if (auto it = std::find(seen.begin(), seen.end(), id); it != seen.end()) {
      std::vector<std::string> loop(names.begin() + (it - seen.begin()), names.end());
      loop.push_back(resolved);
      sink.Report(P::kChainLoop, Fields{.other = resolved,
                                        .detail = fmt::format("{}", fmt::join(loop, " -> "))});
      break;
    }
    Probe probe = ProbeFormat(*next.dev);
    if (probe.format == Format::kRaw) {
      if (auto why = NotDiskData(*next.dev)) {
        sink.Report(P::kChainBackingNotImage, Fields{.other = resolved, .detail = *why});
        break;
      }
    }
    if (!header->backing_format) {
      if (!(chain.format && chain.format->by_domain)) {
        sink.Report(P::kChainNoBackingFormat, Fields{.name = name, .other = probe.name});
      }
    } else if (*header->backing_format != probe.name) {
      bool exposed = *header->backing_format == "raw" && probe.format == Format::kQcow2;
      sink.Report(P::kChainFormatMismatch,
                  Fields{.name = name, .owner = probe.name, .other = *header->backing_format,
                         .detail = exposed ? ": the guest would read the base's qcow2 metadata "
                                             "as disk data"
                                           : ""});
    }
    if (probe.format == Format::kOther) {
      sink.Report(P::kChainBackingUnchecked, Fields{.name = probe.name, .other = resolved});
      break;
    }
    CheckResult base;
    std::optional<Header> next_header;
    if (probe.format == Format::kQcow2) {
      base = CheckDevice(*next.dev, resolved, opts);
      if (base.failure) {
        sink.Report(P::kChainBackingCheckFailed, Fields{.other = resolved,
                                                        .detail = *base.failure});
      }
      next_header = HeaderOf(*next.dev);
    } else {
      base.filename = resolved;
      base.format = probe.name;
    }
    uint64_t base_size = next_header ? next_header->size : next.dev->Size();
    if (base_size > header->size) {
      sink.Report(P::kChainBackingLarger, Fields{.value = base_size, .expected = header->size,
                                                 .name = name});
    }
    top.chain.push_back(Link(base, resolved, *next.dev, next_header, depth));
    data_end = base.data_file_end;
    Merge(top, std::move(base));
    seen.push_back(id);
    names.push_back(resolved);
    current = resolved;
    header = std::move(next_header);
    dev = std::move(next.dev);
  }
  if (top.facts) top.facts->chain_depth = static_cast<uint32_t>(top.chain.size());
  return top;
}

}  // namespace imgcheck::fsck
