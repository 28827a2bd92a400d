#include "qcow2/compress.h"

#include <zlib.h>
#include <zstd.h>

#include <vector>

#include "qcow2/layout.h"

namespace imgcheck::qcow2 {
namespace {

std::optional<std::string> Inflate(ByteView in, std::vector<uint8_t>& out) {
  z_stream s{};
  if (inflateInit2(&s, -12) != Z_OK) return "zlib initialisation failed";
  s.next_in = const_cast<Bytef*>(in.data());
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&s, Z_FINISH);
  bool full = s.avail_out == 0;
  inflateEnd(&s);
  if ((rc == Z_STREAM_END || rc == Z_OK || rc == Z_BUF_ERROR) && full) return std::nullopt;
  if (rc == Z_STREAM_END) return "deflate stream ends before a full cluster";
  return std::string("deflate error: ") + (s.msg ? s.msg : "truncated or invalid stream");
}

std::optional<std::string> Unzstd(ByteView in, std::vector<uint8_t>& out) {
  ZSTD_DStream* d = ZSTD_createDStream();
  if (!d) return "zstd initialisation failed";
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  std::optional<std::string> err;
  while (ob.pos < ob.size) {
    size_t rc = ZSTD_decompressStream(d, &ob, &ib);
    if (ZSTD_isError(rc)) {
      err = std::string("zstd error: ") + ZSTD_getErrorName(rc);
      break;
    }
    if (rc == 0 && ob.pos < ob.size) {
      err = "zstd frame ends before a full cluster";
      break;
    }
    if (ib.pos == ib.size && ob.pos < ob.size) {
      err = "zstd data truncated";
      break;
    }
  }
  ZSTD_freeDStream(d);
  return err;
}

}  // namespace

std::optional<std::string> VerifyCompressed(ByteView stored, uint8_t type, uint64_t cluster_size) {
  std::vector<uint8_t> out(cluster_size);
  return type == kCompressionZstd ? Unzstd(stored, out) : Inflate(stored, out);
}

}  // namespace imgcheck::qcow2
