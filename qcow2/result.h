// Result<T>: the return type of every operation that can fail for operational reasons
// (I/O error, not a qcow2 image, unsupported feature). Findings about an inconsistent image are
// never returned this way; they go to a fsck::Sink.
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace imgcheck {

enum class ErrorKind {
  kIo,           // read failed, file missing or unreadable
  kNotQcow2,     // no qcow2 magic
  kUnsupported,  // valid but not supported (unknown incompatible feature, version 4, ...)
  kInvalid,      // structure QEMU itself refuses to open
  kLimit,        // a hard resource limit was reached
};

struct Error {
  ErrorKind kind;
  std::string message;
  int sys_errno = 0;  // for kIo: the errno of the failed system call
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> Fail(ErrorKind kind, std::string message, int sys_errno = 0) {
  return tl::unexpected<Error>(Error{kind, std::move(message), sys_errno});
}

}  // namespace imgcheck
