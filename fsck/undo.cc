#include "fsck/undo.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace imgcheck::fsck {
namespace {

constexpr char kMagic[] = "IMGCHECK-UNDO-01";  // 16 bytes, no NUL written
constexpr uint64_t kSector = 512;

Error Sys(const std::string& what) {
  int e = errno;
  return Error{ErrorKind::kIo, what + ": " + std::strerror(e), e};
}

Result<void> PreadAll(int fd, uint64_t off, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tl::unexpected(Sys("read"));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  std::fill(out.begin() + static_cast<long>(done), out.end(), uint8_t{0});
  return {};
}

Result<void> PwriteAll(int fd, uint64_t off, std::span<const uint8_t> in) {
  size_t done = 0;
  while (done < in.size()) {
    ssize_t n = ::pwrite(fd, in.data() + done, in.size() - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tl::unexpected(Sys("write"));
    done += static_cast<size_t>(n);
  }
  return {};
}

std::vector<uint32_t> SectorCrcs(std::span<const uint8_t> b) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < b.size(); i += kSector) {
    size_t n = std::min<size_t>(kSector, b.size() - i);
    out.push_back(static_cast<uint32_t>(crc32(0, b.data() + i, static_cast<uInt>(n))));
  }
  return out;
}

class Writer {
 public:
  void Put(const void* p, size_t n) {
    auto b = static_cast<const uint8_t*>(p);
    buf.insert(buf.end(), b, b + n);
  }
  void U32(uint32_t v) { Put(&v, 4); }  // little-endian hosts only (x86-64, arm64)
  void U64(uint64_t v) { Put(&v, 8); }
  std::vector<uint8_t> buf;
};

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& b) : b_(b) {}
  bool Get(void* p, size_t n) {
    if (n == 0) return true;  // p may be null (an empty vector's data())
    if (n > b_.size() - pos_) return ok_ = false;
    std::memcpy(p, b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  uint32_t U32() { uint32_t v = 0; Get(&v, 4); return v; }
  uint64_t U64() { uint64_t v = 0; Get(&v, 8); return v; }
  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }
  size_t left() const { return b_.size() - pos_; }

 private:
  const std::vector<uint8_t>& b_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

Result<Journal> MakeJournal(int fd, const std::string& image_path, const Plan& plan) {
  Journal j;
  j.image_path = image_path;
  j.original_size = plan.original_size;
  j.final_size = std::max(plan.original_size, plan.final_size);
  for (const PlannedWrite& w : plan.writes) {
    JournalRegion r;
    r.offset = w.offset;
    r.length = w.bytes.size();
    uint64_t inside = w.offset < j.original_size ? std::min<uint64_t>(r.length, j.original_size - w.offset) : 0;
    std::vector<uint8_t> old(r.length, 0);  // past the original end: zeros
    if (auto rr = PreadAll(fd, w.offset, std::span(old).first(inside)); !rr) return tl::unexpected(rr.error());
    r.old_crcs = SectorCrcs(old);
    r.new_crcs = SectorCrcs(w.bytes);
    old.resize(inside);
    r.old_bytes = std::move(old);
    j.regions.push_back(std::move(r));
  }
  return j;
}

Result<void> WriteJournal(const Journal& j, const std::string& path) {
  Writer w;
  w.Put(kMagic, 16);
  w.U64(j.original_size);
  w.U64(j.final_size);
  w.U32(static_cast<uint32_t>(j.image_path.size()));
  w.Put(j.image_path.data(), j.image_path.size());
  w.U32(static_cast<uint32_t>(j.regions.size()));
  for (const JournalRegion& r : j.regions) {
    w.U64(r.offset);
    w.U64(r.length);
    w.U64(r.old_bytes.size());
    w.Put(r.old_bytes.data(), r.old_bytes.size());
    for (uint32_t c : r.old_crcs) w.U32(c);
    for (uint32_t c : r.new_crcs) w.U32(c);
  }
  w.U32(static_cast<uint32_t>(crc32(0, w.buf.data(), static_cast<uInt>(w.buf.size()))));

  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return tl::unexpected(Sys("cannot create journal " + path));
  auto r = PwriteAll(fd, 0, w.buf);
  if (r && ::fsync(fd) != 0) r = tl::unexpected(Sys("fsync " + path));
  ::close(fd);
  if (!r) {
    ::unlink(path.c_str());
    return r;
  }
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || ::fsync(dfd) != 0) {
    Error e = Sys("fsync directory " + dir);
    if (dfd >= 0) ::close(dfd);
    ::unlink(path.c_str());
    return tl::unexpected(e);
  }
  ::close(dfd);
  return {};
}

Result<Journal> ReadJournal(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block
  if (fd < 0) return tl::unexpected(Sys("cannot open journal " + path));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Fail(ErrorKind::kInvalid, path + ": the journal is not a regular file");
  }
  // Journals hold the original bytes of metadata regions only; anything larger is not ours,
  // and reading it whole would take unbounded memory.
  constexpr uint64_t kMaxJournal = uint64_t{4} << 30;
  if (static_cast<uint64_t>(st.st_size) > kMaxJournal) {
    ::close(fd);
    return Fail(ErrorKind::kInvalid, fmt::format("{} is not a valid imgcheck journal: {} bytes, "
                                                 "more than any journal ({} GiB)",
                                                 path, st.st_size, kMaxJournal >> 30));
  }
  std::vector<uint8_t> buf(static_cast<size_t>(st.st_size));
  auto rr = PreadAll(fd, 0, buf);
  ::close(fd);
  if (!rr) return tl::unexpected(rr.error());
  auto bad = [&](const char* why) {
    return Fail(ErrorKind::kInvalid, fmt::format("{} is not a valid imgcheck journal: {}", path, why));
  };
  if (buf.size() < 20 || std::memcmp(buf.data(), kMagic, 16) != 0) return bad("no journal magic");
  uint32_t stored;
  std::memcpy(&stored, buf.data() + buf.size() - 4, 4);
  if (stored != crc32(0, buf.data(), static_cast<uInt>(buf.size() - 4))) return bad("checksum mismatch");
  Reader r(buf);
  char magic[16];
  r.Get(magic, 16);
  Journal j;
  j.original_size = r.U64();
  j.final_size = r.U64();
  uint32_t plen = r.U32();
  if (plen > 4096) return bad("path too long");
  j.image_path.resize(plen);
  r.Get(j.image_path.data(), plen);
  uint32_t n = r.U32();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    JournalRegion g;
    g.offset = r.U64();
    g.length = r.U64();
    uint64_t present = r.U64();
    if (present > g.length || present > r.left()) return bad("truncated region");
    g.old_bytes.resize(present);
    r.Get(g.old_bytes.data(), present);
    uint64_t sectors = (g.length + kSector - 1) / kSector;
    if (sectors * 8 > r.left()) return bad("truncated region");
    g.old_crcs.resize(sectors);
    g.new_crcs.resize(sectors);
    for (auto& c : g.old_crcs) c = r.U32();
    for (auto& c : g.new_crcs) c = r.U32();
    j.regions.push_back(std::move(g));
  }
  if (!r.ok() || r.left() != 4) return bad("truncated");
  return j;
}

Result<UndoReport> Undo(int fd, const Journal& j, bool dry_run) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return tl::unexpected(Sys("stat"));
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < j.original_size || size > j.final_size) {
    return Fail(ErrorKind::kInvalid,
                fmt::format("the image is {} bytes; the repair left it between {} and {}: it is "
                            "not the image this journal was made for, or it changed since",
                            size, j.original_size, j.final_size));
  }
  UndoReport rep;
  for (const JournalRegion& g : j.regions) {
    std::vector<uint8_t> cur(g.length);
    if (auto r = PreadAll(fd, g.offset, cur); !r) return tl::unexpected(r.error());
    auto crcs = SectorCrcs(cur);
    bool original = true;
    for (size_t s = 0; s < crcs.size(); ++s) {
      // A sector past the current end reads as zeros: fine where it is new space.
      if (crcs[s] == g.old_crcs[s]) continue;
      original = false;
      if (crcs[s] != g.new_crcs[s]) {
        return Fail(ErrorKind::kInvalid,
                    fmt::format("bytes at 0x{:x} hold neither what the repair found nor what it "
                                "wrote: this is not the image the journal was made for, or it "
                                "changed since the repair; nothing was restored",
                                g.offset + s * kSector));
      }
    }
    rep.already_original += original;
  }
  rep.regions = j.regions.size();
  for (const JournalRegion& g : j.regions) rep.bytes += g.old_bytes.size();
  if (dry_run) return rep;
  for (auto it = j.regions.rbegin(); it != j.regions.rend(); ++it) {
    if (auto r = PwriteAll(fd, it->offset, it->old_bytes); !r) return tl::unexpected(r.error());
  }
  if (size != j.original_size && ::ftruncate(fd, static_cast<off_t>(j.original_size)) != 0) {
    return tl::unexpected(Sys("truncate"));
  }
  if (::fsync(fd) != 0) return tl::unexpected(Sys("fsync"));
  return rep;
}

}  // namespace imgcheck::fsck
