#include "vm/access.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <boost/endian/conversion.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>

namespace imgcheck::vm {
namespace {

constexpr int kMaxSymlinks = 40;  // the kernel's limit (MAXSYMLINKS)

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::optional<uint32_t> Numeric(std::string_view s) {
  if (s.empty() || s.size() > 10 || !std::all_of(s.begin(), s.end(), ::isdigit)) return std::nullopt;
  uint64_t v = std::stoull(std::string(s));
  if (v > 0xfffffffeu) return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::string Perm(unsigned p) {
  return fmt::format("{}{}{}", p & 4 ? 'r' : '-', p & 2 ? 'w' : '-', p & 1 ? 'x' : '-');
}

std::string DescribeInode(const Inode& n) {
  std::string s = fmt::format("mode {:04o}, owner {}:{}", n.mode & 07777, n.uid, n.gid);
  if (n.acl && n.acl->size() > 3) {
    std::vector<std::string> parts;
    for (const AclEntry& e : *n.acl) {
      switch (e.tag) {
        case kAclUser: parts.push_back(fmt::format("user:{}:{}", e.id, Perm(e.perm))); break;
        case kAclGroup: parts.push_back(fmt::format("group:{}:{}", e.id, Perm(e.perm))); break;
        case kAclMask: parts.push_back(fmt::format("mask::{}", Perm(e.perm))); break;
        default: break;
      }
    }
    s += fmt::format(", ACL {}", fmt::join(parts, ","));
  }
  return s;
}

Result<Inode> ReadInode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    return Fail(ErrorKind::kIo, fmt::format("{}: {}", path, std::strerror(e)), e);
  }
  Inode n{.mode = st.st_mode, .uid = st.st_uid, .gid = st.st_gid};
  uint8_t buf[4 + 8 * 256];
  ssize_t len = ::getxattr(path.c_str(), "system.posix_acl_access", buf, sizeof buf);
  if (len > 0) n.acl = ParseAcl({buf, static_cast<size_t>(len)});
  return n;
}

std::vector<uint32_t> GroupsOf(uint32_t uid, uint32_t gid) {
  std::vector<uint32_t> out{gid};
  struct passwd* pw = ::getpwuid(uid);
  if (!pw) return out;
  int n = 64;
  std::vector<gid_t> g(static_cast<size_t>(n));
  if (::getgrouplist(pw->pw_name, gid, g.data(), &n) < 0) {
    g.resize(static_cast<size_t>(n));
    if (::getgrouplist(pw->pw_name, gid, g.data(), &n) < 0) return out;
  }
  for (int i = 0; i < n; ++i) {
    if (std::find(out.begin(), out.end(), g[static_cast<size_t>(i)]) == out.end()) {
      out.push_back(g[static_cast<size_t>(i)]);
    }
  }
  return out;
}

// Defaults of the distribution's libvirt build (its qemu_user / qemu_group).
std::string DistributionDefault(std::string& which) {
  std::ifstream in("/etc/os-release");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  std::string ids;
  std::istringstream lines(text);
  for (std::string l; std::getline(lines, l);) {
    if (l.starts_with("ID=") || l.starts_with("ID_LIKE=")) ids += " " + l.substr(l.find('=') + 1);
  }
  if (ids.find("debian") != std::string::npos || ids.find("ubuntu") != std::string::npos) {
    which = "Debian's default";
    return "libvirt-qemu:libvirt-qemu";
  }
  which = ids.find("fedora") != std::string::npos || ids.find("rhel") != std::string::npos
              ? "Fedora's default"
              : "libvirt's default";
  return "qemu:qemu";
}

std::string InGroups(const Identity& id) {
  return fmt::format("groups {}", fmt::join(id.groups, ","));
}

}  // namespace

QemuConf ParseQemuConf(std::string_view text) {
  QemuConf c;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    std::string l = Trim(line.substr(0, line.find('#')));
    size_t eq = l.find('=');
    if (eq == std::string::npos) continue;
    std::string key = Trim(std::string_view(l).substr(0, eq));
    std::string value = Trim(std::string_view(l).substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (key == "user") c.user = value;
    if (key == "group") c.group = value;
    if (key == "dynamic_ownership") c.dynamic_ownership = value != "0";
  }
  return c;
}

Result<Identity> ParseIdentity(std::string_view user_group, const std::string& source) {
  Identity id;
  id.source = source;
  size_t colon = user_group.find(':');
  std::string user(user_group.substr(0, colon));
  std::string group = colon == std::string_view::npos ? "" : std::string(user_group.substr(colon + 1));
  if (user.starts_with("+")) {
    auto n = Numeric(std::string_view(user).substr(1));
    if (!n) return Fail(ErrorKind::kInvalid, fmt::format("{}: '{}' is not a user", source, user));
    id.uid = *n;
  } else if (struct passwd* pw = ::getpwnam(user.c_str())) {
    id.uid = pw->pw_uid;
    id.user = user;
    if (group.empty()) id.gid = pw->pw_gid;
  } else if (auto n = Numeric(user)) {
    id.uid = *n;
  } else {
    return Fail(ErrorKind::kInvalid, fmt::format("{}: there is no user '{}' on this host",
                                                 source, user));
  }
  if (id.user.empty()) {
    if (struct passwd* pw = ::getpwuid(id.uid)) {
      id.user = pw->pw_name;
      if (group.empty()) id.gid = pw->pw_gid;
    }
  }
  if (!group.empty()) {
    if (group.starts_with("+")) {
      auto n = Numeric(std::string_view(group).substr(1));
      if (!n) return Fail(ErrorKind::kInvalid, fmt::format("{}: '{}' is not a group", source, group));
      id.gid = *n;
    } else if (struct group* gr = ::getgrnam(group.c_str())) {
      id.gid = gr->gr_gid;
    } else if (auto n = Numeric(group)) {
      id.gid = *n;
    } else {
      return Fail(ErrorKind::kInvalid, fmt::format("{}: there is no group '{}' on this host",
                                                   source, group));
    }
  }
  if (struct group* gr = ::getgrgid(id.gid)) id.group = gr->gr_name;
  id.groups = GroupsOf(id.uid, id.gid);
  return id;
}

Result<Identity> QemuIdentity(const Machine& m, const std::optional<std::string>& qemu_user,
                              const QemuConf& conf) {
  if (m.session) {
    Identity id{.uid = ::getuid(), .gid = ::getgid(), .source = "qemu:///session (the user)"};
    id.groups = GroupsOf(id.uid, id.gid);
    return id;
  }
  if (m.dac_label) return ParseIdentity(*m.dac_label, "the domain's DAC <seclabel>");
  if (qemu_user) return ParseIdentity(*qemu_user, "--qemu-user");
  std::string which;
  std::string fallback = DistributionDefault(which);
  std::string def_user = fallback.substr(0, fallback.find(':'));
  std::string def_group = fallback.substr(fallback.find(':') + 1);
  if (conf.user || conf.group) {
    return ParseIdentity(conf.user.value_or(def_user) + ":" + conf.group.value_or(def_group),
                         "/etc/libvirt/qemu.conf");
  }
  return ParseIdentity(fallback, which);
}

std::optional<std::vector<AclEntry>> ParseAcl(std::span<const uint8_t> x) {
  if (x.size() < 4 || (x.size() - 4) % 8 != 0) return std::nullopt;
  if (boost::endian::load_little_u32(x.data()) != 2) return std::nullopt;
  std::vector<AclEntry> out;
  for (size_t o = 4; o + 8 <= x.size(); o += 8) {
    out.push_back({boost::endian::load_little_u16(x.data() + o),
                   boost::endian::load_little_u16(x.data() + o + 2),
                   boost::endian::load_little_u32(x.data() + o + 4)});
  }
  return out;
}

bool Permits(const Inode& n, const Identity& id, unsigned want) {
  // uid 0: CAP_DAC_OVERRIDE (searching and reading or writing are never refused to root).
  if (id.uid == 0) return true;
  auto grants = [&](unsigned perm) { return (perm & want) == want; };
  auto member = [&](uint32_t gid) {
    return std::find(id.groups.begin(), id.groups.end(), gid) != id.groups.end();
  };
  if (n.uid == id.uid) return grants((n.mode >> 6) & 7);
  bool has_acl = n.acl && std::any_of(n.acl->begin(), n.acl->end(), [](const AclEntry& e) {
                   return e.tag == kAclUser || e.tag == kAclGroup || e.tag == kAclMask;
                 });
  if (!has_acl) {
    if (member(n.gid)) return grants((n.mode >> 3) & 7);
    return grants(n.mode & 7);
  }
  // posix_acl_permission: a named user entry, else any matching group entry (owning group
  // or named) that grants, each limited by the mask; else "other".
  unsigned mask = 7;
  for (const AclEntry& e : *n.acl) {
    if (e.tag == kAclMask) mask = e.perm;
  }
  for (const AclEntry& e : *n.acl) {
    if (e.tag == kAclUser && e.id == id.uid) return grants(e.perm & mask);
  }
  bool matched = false;
  for (const AclEntry& e : *n.acl) {
    bool in = (e.tag == kAclGroupObj && member(n.gid)) || (e.tag == kAclGroup && member(e.id));
    if (!in) continue;
    matched = true;
    if (grants(e.perm & mask)) return true;
  }
  if (matched) return false;
  for (const AclEntry& e : *n.acl) {
    if (e.tag == kAclOther) return grants(e.perm);
  }
  return grants(n.mode & 7);
}

Result<std::optional<Denied>> CheckReach(const std::string& path, const Identity& id,
                                         unsigned open_mode) {
  std::string start = path;
  if (!start.starts_with("/")) {
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) return Fail(ErrorKind::kIo, "cannot read the working directory");
    start = std::string(cwd) + "/" + start;
  }
  std::deque<std::string> todo;
  auto push_front = [&](const std::string& p) {
    std::vector<std::string> parts;
    std::istringstream in(p);
    for (std::string c; std::getline(in, c, '/');) {
      if (!c.empty() && c != ".") parts.push_back(c);
    }
    todo.insert(todo.begin(), parts.begin(), parts.end());
  };
  push_front(start);
  std::string dir = "/";
  int links = 0;
  auto join = [](const std::string& d, const std::string& n) { return d == "/" ? "/" + n : d + "/" + n; };
  while (!todo.empty()) {
    std::string name = todo.front();
    todo.pop_front();
    auto inode = ReadInode(dir);
    if (!inode) return tl::unexpected(inode.error());
    if (!Permits(*inode, id, 1)) {
      return std::optional<Denied>(Denied{
          dir, fmt::format("search permission on directory {} is denied to uid {} ({}; {})", dir,
                           id.uid, InGroups(id), DescribeInode(*inode))});
    }
    if (name == "..") {
      size_t slash = dir.rfind('/');
      dir = slash == 0 ? "/" : dir.substr(0, slash);
      continue;
    }
    std::string next = join(dir, name);
    struct stat st {};
    if (::lstat(next.c_str(), &st) != 0) {
      int e = errno;
      if (e == ENOENT || e == ENOTDIR) return std::optional<Denied>();  // reported elsewhere
      return Fail(ErrorKind::kIo, fmt::format("{}: {}", next, std::strerror(e)), e);
    }
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks) return Fail(ErrorKind::kInvalid, next + ": too many symbolic links");
      char target[4096];
      ssize_t n = ::readlink(next.c_str(), target, sizeof target - 1);
      if (n < 0) return Fail(ErrorKind::kIo, fmt::format("{}: {}", next, std::strerror(errno)));
      std::string t(target, static_cast<size_t>(n));
      if (t.starts_with("/")) dir = "/";
      push_front(t);
      continue;
    }
    if (todo.empty()) {
      if (open_mode == 0) return std::optional<Denied>();
      auto file = ReadInode(next);
      if (!file) return tl::unexpected(file.error());
      if (Permits(*file, id, open_mode)) return std::optional<Denied>();
      return std::optional<Denied>(Denied{
          next,
          fmt::format("{} permission on {} is denied to uid {} ({}; {})",
                      open_mode & 2 ? "read-write" : "read", next, id.uid, InGroups(id),
                      DescribeInode(*file)),
          true});
    }
    if (!S_ISDIR(st.st_mode)) return std::optional<Denied>();
    dir = next;
  }
  return std::optional<Denied>();
}

}  // namespace imgcheck::vm
