#include "vm/resolve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "vm/domain.h"
#include "vm/libvirt.h"

namespace imgcheck::vm {

Result<std::string> ReadBounded(const std::string& path, size_t limit, const char* what) {
  int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::string name = path == "-" ? "standard input" : path;
  if (fd < 0) {
    return Fail(ErrorKind::kIo, fmt::format("{}: cannot read the {}: {}", name, what,
                                            std::strerror(errno)), errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    if (fd != STDIN_FILENO) ::close(fd);
    return Fail(ErrorKind::kIo, fmt::format("{}: the {} is a directory", name, what));
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      if (fd != STDIN_FILENO) ::close(fd);
      return Fail(ErrorKind::kIo, fmt::format("{}: cannot read the {}: {}", name, what,
                                              std::strerror(e)), e);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) {  // stop reading: a hostile input never fills memory
      if (fd != STDIN_FILENO) ::close(fd);
      return Fail(ErrorKind::kLimit, fmt::format("{}: the {} is larger than {} MiB", name, what,
                                                 limit >> 20));
    }
  }
  if (fd != STDIN_FILENO) ::close(fd);
  return out;
}

Result<Machine> ResolveMachine(const MachineArgs& a) {
  bool domain = a.domain_xml || a.domain;
  if (a.domain_xml && a.domain) {
    return Fail(ErrorKind::kInvalid, "--domain-xml and -d both name a domain: give one");
  }
  if (domain && !a.images.empty()) {
    return Fail(ErrorKind::kInvalid,
                "a domain names its own disks: give IMAGE arguments or a domain, not both");
  }
  if (domain && a.format) {
    return Fail(ErrorKind::kInvalid,
                "--format and a domain exclude each other: the domain declares each disk's "
                "format (<driver type>)");
  }
  if (domain && a.bus) {
    return Fail(ErrorKind::kInvalid,
                "--bus and a domain exclude each other: the domain attaches each disk");
  }
  if (!domain && a.connect) {
    return Fail(ErrorKind::kInvalid, "-c needs a domain (-d NAME or --domain-xml FILE)");
  }
  if (!domain) {
    Machine m = DefaultMachine(a.images, a.format);
    if (a.bus) {
      for (Disk& d : m.disks) {
        d.bus = *a.bus;
        if (*a.bus == Bus::kSata) d.controller_model = "ahci";
        if (*a.bus == Bus::kVirtioScsi) d.controller_model = "virtio-scsi";
        if (*a.bus == Bus::kScsi) d.controller_model = "lsilogic";
      }
      PredictGuestNames(m);
    }
    return m;
  }
  std::unique_ptr<Libvirt> conn;
  std::string xml, origin;
  if (a.domain || a.connect) {
    auto c = Libvirt::Connect(a.connect);
    if (!c) return tl::unexpected(c.error());
    conn = std::move(*c);
  }
  if (a.domain) {
    auto x = conn->DomainXml(*a.domain);
    if (!x) return tl::unexpected(x.error());
    xml = std::move(*x);
    origin = fmt::format("libvirt domain {} on {}", *a.domain, conn->uri());
  } else {
    auto x = ReadBounded(*a.domain_xml, kMaxDomainXml, "domain XML");
    if (!x) return tl::unexpected(x.error());
    xml = std::move(*x);
    origin = *a.domain_xml == "-" ? "standard input" : *a.domain_xml;
  }
  auto m = ParseDomainXml(xml, origin);
  if (!m) return m;
  if (conn) {
    m->session = conn->uri().find("/session") != std::string::npos;
    for (Disk& d : m->disks) {
      if (d.source != Source::kVolume) continue;
      auto path = conn->VolumePath(d.pool, d.volume);
      if (path) d.path = *path;
    }
  }
  return m;
}

}  // namespace imgcheck::vm
