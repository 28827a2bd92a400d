// Who QEMU runs as under libvirt, and whether that user can reach a file: every directory of
// the path needs search permission (supplementary groups and POSIX ACLs included, as the
// kernel decides), and, when libvirt does not chown the image for the VM, the file itself
// needs read (and write) permission.
//
// This is computed from stat() and the ACL xattr, never probed by switching to the qemu user:
// a checker must not change its privileges (setuid in a process that reads untrusted images
// is a risk of its own, a non-root user cannot do it at all, and setuid affects every thread).
// The computation is the kernel's (generic_permission, posix_acl_permission); what it does not
// see: SELinux and AppArmor (labels are not read), capabilities QEMU might keep, NFS
// root-squash, and FUSE/network filesystems whose server decides.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qcow2/result.h"
#include "vm/machine.h"

namespace imgcheck::vm {

struct Identity {
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;  // every group of the process, gid included
  std::string user, group;       // names ("" when there is none)
  std::string source;            // where it comes from: "the domain's DAC <seclabel>", ...
};

// /etc/libvirt/qemu.conf: the keys that decide who QEMU runs as and whether libvirt chowns the
// images ("key = value" lines, # comments).
struct QemuConf {
  std::optional<std::string> user, group;
  bool dynamic_ownership = true;
};
QemuConf ParseQemuConf(std::string_view text);

// USER:GROUP as libvirt writes DAC labels: names, or "+N" for a number (a bare number that is
// no name is taken as a number too). Supplementary groups are those of the user's passwd entry
// (getgrouplist), as libvirt gives the QEMU process; a uid without an entry has only its gid.
Result<Identity> ParseIdentity(std::string_view user_group, const std::string& source);

// The qemu user: the domain's DAC <seclabel> label, else `qemu_user` (--qemu-user USER[:GROUP]),
// else `qemu_conf`'s user and group, else the distribution's default (libvirt-qemu on Debian and
// Ubuntu, qemu on Fedora and RHEL); qemu:///session runs QEMU as the connecting user.
Result<Identity> QemuIdentity(const Machine& m, const std::optional<std::string>& qemu_user,
                              const QemuConf& conf);

// A POSIX ACL as the kernel stores it in the system.posix_acl_access xattr: a little-endian
// version 2 header, then (tag, perm, id) entries. nullopt when the bytes are not one.
struct AclEntry {
  uint16_t tag;
  uint16_t perm;
  uint32_t id;
};
inline constexpr uint16_t kAclUserObj = 0x01, kAclUser = 0x02, kAclGroupObj = 0x04,
                          kAclGroup = 0x08, kAclMask = 0x10, kAclOther = 0x20;
std::optional<std::vector<AclEntry>> ParseAcl(std::span<const uint8_t> xattr);

// The kernel's decision for `id` wanting `want` (4 read, 2 write, 1 search/execute) on an
// inode with this mode and owner (and ACL, when it has one).
struct Inode {
  uint32_t mode = 0, uid = 0, gid = 0;
  std::optional<std::vector<AclEntry>> acl;
};
bool Permits(const Inode& inode, const Identity& id, unsigned want);

struct Denied {
  std::string component;  // the directory (or the file) that stops the qemu user
  std::string why;        // "search permission on directory /srv/vm is denied (mode 0750, ...)"
  bool file = false;      // the file's own permission, not a directory of its path
};

// Walks `path` for `id` as the kernel resolves it (search permission on each directory,
// symbolic links followed, at most 40); with `open_mode` (4 read, 6 read-write) the file's own
// permission too. nullopt: reachable, or not there at all (a missing file is reported by the
// chain checks). An error when imgcheck itself cannot look (it is not root and may not search).
Result<std::optional<Denied>> CheckReach(const std::string& path, const Identity& id,
                                         unsigned open_mode);

}  // namespace imgcheck::vm
