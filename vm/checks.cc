#include "vm/checks.h"

#include <sys/stat.h>

#include <fmt/format.h>

#include "vm/access.h"
#include "vm/resolve.h"

namespace imgcheck::vm {
namespace {

using fsck::P;

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return a == b;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// A missing backing format is refused by libvirt unless the domain declares it in
// <backingStore> (then libvirt uses the declaration and never probes).
void CheckBackingFormats(const Disk& d, fsck::CheckResult& r) {
  fsck::Sink sink(r, r.filename);
  for (size_t k = 0; k + 1 < r.chain.size(); ++k) {
    const fsck::ChainLink& link = r.chain[k];
    if (!link.backing_filename || link.backing_format) continue;
    if (d.backing_declared && k < d.backing.size() && d.backing[k].format) continue;
    const std::string& real = r.chain[k + 1].format;
    sink.Report(P::kVmBackingFormatMissing,
                fsck::Fields{.name = *link.backing_filename, .other = link.filename,
                             .fix = fmt::format("qemu-img rebase -u -F {} -b {} {}", real,
                                                *link.backing_filename, link.filename),
                             .disk = link.filename});
  }
}

// <backingStore> as declared against the chain the image headers give.
void CheckDeclaredChain(const Disk& d, fsck::CheckResult& r) {
  if (!d.backing_declared) return;
  fsck::Sink sink(r, r.filename);
  size_t real = r.chain.empty() ? 0 : r.chain.size() - 1;
  auto report = [&](std::string other, std::string detail) {
    sink.Report(P::kVmBackingMismatch,
                fsck::Fields{.name = d.target, .other = std::move(other), .detail = std::move(detail)});
  };
  if (d.backing.empty()) {
    if (!r.chain.empty() && r.chain[0].backing_filename) {
      report("no backing file (<backingStore/>)",
             fmt::format("{} names backing file '{}': QEMU opens the overlay without it and the "
                         "guest reads zeros wherever the overlay holds no data",
                         r.filename, *r.chain[0].backing_filename));
    }
    return;
  }
  for (size_t k = 0; k < d.backing.size(); ++k) {
    const DeclaredBacking& b = d.backing[k];
    std::string declared = fmt::format("backing file '{}'{} at depth {}", b.path,
                                       b.format ? " (" + *b.format + ")" : "", k + 1);
    if (k >= real) {
      const std::string& last = r.chain.empty() ? r.filename : r.chain.back().filename;
      report(declared, fmt::format("{} has no backing file{}", last,
                                   r.chain.empty() || !r.chain.back().backing_filename
                                       ? ""
                                       : " that could be opened"));
      return;
    }
    const fsck::ChainLink& link = r.chain[k + 1];
    if (!SameFile(b.path, link.filename)) {
      report(declared, fmt::format("the image chain has '{}' there", link.filename));
      return;
    }
    if (b.format && *b.format != link.format) {
      report(declared, fmt::format("'{}' is {}", link.filename, link.format));
    }
  }
}

// Every file of the chain as the qemu user reaches it: directories always (libvirt checks
// that the file exists as that user before it starts QEMU), the files' own permission only
// when libvirt does not chown them for the VM.
void CheckAccess(const Disk& d, fsck::CheckResult& r, const Identity& id, bool relabel) {
  fsck::Sink sink(r, r.filename);
  bool own = relabel && d.relabel.value_or(true);
  for (size_t k = 0; k < r.chain.size(); ++k) {
    const std::string& file = r.chain[k].filename;
    unsigned mode = own ? 0 : (k == 0 && !d.readonly ? 6 : 4);
    auto denied = CheckReach(file, id, mode);
    fsck::Fields f{.value = id.uid, .expected = id.gid, .name = file, .disk = file};
    if (!denied) {
      f.detail = denied.error().message;
      sink.Report(P::kVmAccessUnknown, f);
      continue;
    }
    if (!*denied) continue;
    f.detail = fmt::format("{} (the qemu user {}:{} from {})", (*denied)->why,
                           id.user.empty() ? std::to_string(id.uid) : id.user,
                           id.group.empty() ? std::to_string(id.gid) : id.group, id.source);
    if ((*denied)->file) {
      f.detail += "; libvirt does not chown it for the VM (relabelling is off)";
      sink.Report(P::kVmOpenDenied, f);
    } else if (k == 0) {
      sink.Report(P::kVmStorageAccessDenied, f);
    } else {
      f.other = r.chain[k - 1].filename;
      sink.Report(P::kVmBackingAccessDenied, f);
    }
  }
}

}  // namespace

bool Checkable(const Disk& d) {
  return !d.path.empty() &&
         (d.source == Source::kFile || d.source == Source::kBlock || d.source == Source::kVolume);
}

std::vector<const Disk*> CheckableDisks(const Machine& m) {
  std::vector<const Disk*> out;
  for (const Disk& d : m.disks) {
    if (Checkable(d)) out.push_back(&d);
  }
  return out;
}

void CheckVm(const Machine& m, std::vector<fsck::CheckResult>& results,
             const VmCheckOptions& opts) {
  if (results.empty()) return;
  std::vector<const Disk*> disks = CheckableDisks(m);
  fsck::Sink vm_sink(results.front(), results.front().filename);
  for (const Disk& d : m.disks) {
    if (Checkable(d)) continue;
    std::string why = d.source == Source::kNetwork ? "a network disk (" + d.source_text + ")"
                      : d.source == Source::kVolume
                          ? d.source_text + ", which needs a libvirt connection to resolve (-d, -c)"
                          : d.source_text;
    vm_sink.Report(P::kVmDiskNotCheckable, fsck::Fields{.name = d.target, .other = m.domain,
                                                        .detail = why});
  }
  for (const Machine::Skipped& s : m.skipped) {
    vm_sink.Report(P::kVmDeviceSkipped,
                   fsck::Fields{.name = s.target, .other = m.domain, .detail = s.why});
  }
  for (const auto& [what, path] : {std::pair<const char*, const std::optional<std::string>&>{
                                       "firmware <loader>", m.loader},
                                   {"NVRAM template", m.nvram_template}}) {
    struct stat st {};
    if (path && ::stat(path->c_str(), &st) != 0) {
      vm_sink.Report(P::kVmFirmwareFileMissing,
                     fsck::Fields{.name = *path, .other = what, .detail = "does not exist"});
    }
  }
  bool access = !m.assumed || opts.qemu_user;
  std::optional<Identity> id;
  QemuConf conf;
  if (access) {
    if (auto text = ReadBounded(opts.qemu_conf, 1u << 20, "qemu.conf")) conf = ParseQemuConf(*text);
    auto who = QemuIdentity(m, opts.qemu_user, conf);
    if (who) {
      id = *who;
    } else {
      vm_sink.Report(P::kVmAccessUnknown,
                     fsck::Fields{.name = results.front().filename, .detail = who.error().message});
    }
  }
  for (size_t i = 0; i < results.size() && i < disks.size(); ++i) {
    const Disk& d = *disks[i];
    fsck::CheckResult& r = results[i];
    if (!m.assumed) {
      r.vm = fsck::VmDisk{m.domain, d.target, std::string(BusName(d.bus)), d.guest_name};
    }
    fsck::Sink sink(r, r.filename);
    if (d.bus == Bus::kIde && m.q35()) {
      sink.Report(P::kVmIdeOnQ35, fsck::Fields{.name = d.target.empty() ? r.filename : d.target,
                                               .other = m.machine_type});
    }
    if (!m.assumed) {
      CheckBackingFormats(d, r);
      CheckDeclaredChain(d, r);
    }
    if (id) CheckAccess(d, r, *id, m.relabel && conf.dynamic_ownership);
  }
}

}  // namespace imgcheck::vm
