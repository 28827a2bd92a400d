#include "fsck/apply.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "fsck/check.h"
#include "fsck/host.h"
#include "fsck/undo.h"
#include "qcow2/device.h"
#include "qcow2/image.h"

namespace imgcheck::fsck {

using namespace qcow2;

namespace {

// Holds QEMU-style locks on an image for the duration of a repair: every "permission" byte and
// every "shared permission" byte, so a QEMU process cannot open it for anything.
class ImageLock {
 public:
  static std::optional<std::string> Take(int fd) {
    struct flock fl {};
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    for (off_t start : {off_t{100}, off_t{200}}) {
      fl.l_start = start;
      fl.l_len = 64;
      if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        return fmt::format("cannot lock the image: {}", std::strerror(errno));
      }
    }
    return std::nullopt;
  }
};

std::optional<uint64_t> FreeBytes(const std::string& path) {
  struct statvfs v {};
  if (::statvfs(path.c_str(), &v) != 0) return std::nullopt;
  return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash + 1);
}

bool FsyncDir(const std::string& path) {
  int d = ::open(DirOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  bool ok = d >= 0 && ::fsync(d) == 0;
  if (d >= 0) ::close(d);
  return ok;
}

// A sparse copy: only the data extents are copied (copy_file_range reflinks where it can).
std::optional<std::string> SparseCopy(int in, const std::string& to, uint64_t size) {
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) return fmt::format("cannot create {}: {}", to, std::strerror(errno));
  auto fail = [&](const std::string& why) {
    ::close(out);
    ::unlink(to.c_str());
    return std::optional<std::string>(why);
  };
  if (::ftruncate(out, static_cast<off_t>(size)) != 0) return fail(std::strerror(errno));
  off_t pos = 0;
  while (static_cast<uint64_t>(pos) < size) {
    off_t data = ::lseek(in, pos, SEEK_DATA);
    if (data < 0) break;  // no more data
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0) hole = static_cast<off_t>(size);
    off_t src = data, dst = data;
    while (src < hole) {
      ssize_t n = ::copy_file_range(in, &src, out, &dst, static_cast<size_t>(hole - src), 0);
      if (n <= 0) return fail(fmt::format("copy failed: {}", std::strerror(errno)));
    }
    pos = hole;
  }
  if (::fsync(out) != 0) return fail(std::strerror(errno));
  ::close(out);
  if (!FsyncDir(to)) return std::optional<std::string>("cannot fsync the backup's directory");
  return std::nullopt;
}

}  // namespace

int RepairOutcome::ExitCode() const {
  if (refused || failed) return 1;
  if (after) return after->ExitCode();
  if (plan.writes.empty()) return plan.before.ExitCode();
  return plan.expected.ExitCode();  // dry run: the state the repair would leave
}

namespace {

// Refuses, before anything is opened for writing, what must not be repaired as qcow2.
std::optional<std::string> FormatRefusal(const std::string& image, const RepairOptions& opts) {
  auto dev = FileDevice::Open(image);
  if (!dev) return std::nullopt;  // reported by the open below
  Probe probe = ProbeFormat(**dev);
  if (opts.format == "raw") {
    return fmt::format("declared raw: a raw disk has no metadata to repair, and its first bytes "
                       "are guest data{}; nothing was written",
                       probe.format == Format::kQcow2 ? " even though they look like a qcow2 header"
                                                      : "");
  }
  if (opts.format && *opts.format != "qcow2") {
    return fmt::format("declared {}: imgcheck repairs only qcow2 images; nothing was written",
                       *opts.format);
  }
  if (opts.format && probe.format != Format::kQcow2) {
    return fmt::format("declared qcow2, but the file is {} (no qcow2 header); nothing was written",
                       probe.name);
  }
  std::string lower = image;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!opts.format && probe.format == Format::kQcow2 &&
      (lower.ends_with(".raw") || lower.ends_with(".img"))) {
    return fmt::format("the name ({}) says raw disk, but the file starts with a qcow2 header: a "
                       "raw disk whose guest wrote such a header must never be repaired as qcow2; "
                       "give --format qcow2 if it is a qcow2 image (--format raw if it is a raw "
                       "disk); nothing was written",
                       lower.substr(lower.size() - 4));
  }
  return std::nullopt;
}

}  // namespace

RepairOutcome Repair(const std::string& image, const RepairOptions& opts, const ApplyOptions& ao) {
  RepairOutcome out;
  if (auto why = FormatRefusal(image, opts)) {
    out.refused = *why;
    return out;
  }
  char real[PATH_MAX];
  if (!::realpath(image.c_str(), real)) {
    out.refused = fmt::format("cannot open {}: {}", image, std::strerror(errno));
    return out;
  }
  std::string abs = real;
  int fd = ::open(abs.c_str(), (ao.dry_run ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    out.refused = e == EACCES || e == EROFS || e == EPERM
                      ? fmt::format("{} is read-only ({}): refusing to repair", image, std::strerror(e))
                      : fmt::format("cannot open {}: {}", image, std::strerror(e));
    return out;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (auto locks = ProbeQemuLocks(fd)) {
    out.refused = fmt::format("the image is in use ({}): refusing to repair a live image", *locks);
    return out;
  }
  if (!ao.dry_run) {
    if (auto err = ImageLock::Take(fd)) {
      out.refused = *err;
      return out;
    }
  }
  auto dev = FileDevice::Open(abs);
  if (!dev) {
    out.refused = dev.error().message;
    return out;
  }
  out.plan = PlanRepair(**dev, image, opts);
  Plan& plan = out.plan;
  if (plan.refused) {
    out.refused = plan.refused;
    return out;
  }
  if (plan.writes.empty() || ao.dry_run) return out;

  // Space: the journal beside its path, growth and the backup beside the image.
  uint64_t journal_bytes = 4096, growth = plan.final_size > plan.original_size
                                              ? plan.final_size - plan.original_size
                                              : 0;
  for (const PlannedWrite& w : plan.writes) journal_bytes += w.bytes.size() + w.bytes.size() / 64 + 64;
  std::string journal = ao.journal_path.empty() ? abs + ".imgcheck-undo" : ao.journal_path;
  std::string backup = abs + ".imgcheck-backup";
  struct stat st {};
  ::fstat(fd, &st);
  uint64_t backup_bytes = ao.backup_copy ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
  auto jfree = FreeBytes(DirOf(journal)), ifree = FreeBytes(DirOf(abs));
  if (!jfree || !ifree || *jfree < journal_bytes ||
      *ifree < growth + backup_bytes + (DirOf(journal) == DirOf(abs) ? journal_bytes : 0)) {
    out.refused = fmt::format("not enough free space for the undo journal ({} bytes), the backup "
                              "({} bytes) and the repair's growth ({} bytes): nothing was written",
                              journal_bytes, backup_bytes, growth);
    return out;
  }
  if (ao.backup_copy) {
    if (auto err = SparseCopy(fd, backup, plan.original_size)) {
      out.refused = "backup copy failed: " + *err + "; nothing was written to the image";
      return out;
    }
    out.backup = backup;
  }
  auto j = MakeJournal(fd, abs, plan);
  if (!j) {
    out.refused = j.error().message;
    return out;
  }
  if (auto w = WriteJournal(*j, journal); !w) {
    out.refused = w.error().message + "; nothing was written to the image";
    return out;
  }
  out.journal = journal;

  size_t done = 0;
  for (const PlannedWrite& w : plan.writes) {
    size_t off = 0;
    while (off < w.bytes.size()) {
      ssize_t n = ::pwrite(fd, w.bytes.data() + off, w.bytes.size() - off,
                           static_cast<off_t>(w.offset + off));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        out.failed = fmt::format("write at 0x{:x} failed: {}", w.offset + off, std::strerror(errno));
        auto u = Undo(fd, *j, false);
        out.rolled_back = u.has_value();
        if (!u) *out.failed += "; rollback failed too (" + u.error().message + "): run imgcheck undo " + journal;
        return out;
      }
      off += static_cast<size_t>(n);
    }
    ++done;
    if (ao.progress) {
      fmt::print(stderr, "\rrepairing: {}/{} writes ({}%)", done, plan.writes.size(),
                 done * 100 / plan.writes.size());
    }
  }
  if (ao.progress) fmt::print(stderr, "\n");
  if (::fsync(fd) != 0) {
    out.failed = fmt::format("fsync failed: {}", std::strerror(errno));
    return out;
  }
  auto fresh = FileDevice::Open(abs);
  if (fresh) out.after = CheckDevice(**fresh, image, {});
  return out;
}

}  // namespace imgcheck::fsck
