// SPDX-License-Identifier: Apache-2.0
// Status: the error value every fallible ctfs function returns. A small, fixed set of codes
// with documented meanings (after abseil's StatusCode) and a human-readable message that
// names the file, tensor or chunk concerned. Never carries secret bytes.
#ifndef CTFS_BASE_STATUS_H_
#define CTFS_BASE_STATUS_H_

#include <string>
#include <string_view>
#include <utility>

namespace ctfs {

enum class StatusCode {
  kOk = 0,
  // Malformed input: bad header, bad JSON, bad flag value, unsupported version or algorithm.
  kInvalidArgument,
  // A file, key id or tensor does not exist.
  kNotFound,
  // Policy or file permissions forbid the operation.
  kPermissionDenied,
  // Authentication failed or data is corrupt: bad tag, bad signature, truncated data.
  kDataLoss,
  // A key source or the OS is not able to serve now (I/O error, provider down).
  kUnavailable,
  // The operation does not apply to this input (e.g. decrypting a plain file).
  kFailedPrecondition,
  // A bug or an unexpected library failure.
  kInternal,
  // The output already exists and the caller did not ask to replace it.
  kAlreadyExists,
  // The target is in use or in the way: a mount with files open or mapped, a mountpoint that
  // is not empty or is already mounted.
  kBusy,
};

// StatusCodeName returns a stable lowercase name such as "data_loss".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  // Status() is OK.
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // ToString returns "ok" or "<code name>: <message>".
  std::string ToString() const;

  // WithContext returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgumentError(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status NotFoundError(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status PermissionDeniedError(std::string m) {
  return Status(StatusCode::kPermissionDenied, std::move(m));
}
inline Status DataLossError(std::string m) { return Status(StatusCode::kDataLoss, std::move(m)); }
inline Status UnavailableError(std::string m) {
  return Status(StatusCode::kUnavailable, std::move(m));
}
inline Status FailedPreconditionError(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
inline Status InternalError(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }
inline Status AlreadyExistsError(std::string m) {
  return Status(StatusCode::kAlreadyExists, std::move(m));
}
inline Status BusyError(std::string m) { return Status(StatusCode::kBusy, std::move(m)); }

// ErrnoError builds a Status from an errno value: ENOENT/ENOTDIR -> NotFound, EACCES/EPERM ->
// PermissionDenied, EEXIST -> AlreadyExists, EBUSY -> Busy, otherwise Unavailable. The message is
// "<what>: <strerror>".
Status ErrnoError(int err, std::string_view what);

}  // namespace ctfs

#define CTFS_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::ctfs::Status ctfs_status_ = (expr);        \
    if (!ctfs_status_.ok()) return ctfs_status_; \
  } while (0)

#endif  // CTFS_BASE_STATUS_H_
