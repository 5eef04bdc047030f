// SPDX-License-Identifier: Apache-2.0
// Stable, documented exit codes of the `ctfs` binary (README "Exit codes").
#ifndef CTFS_CMD_EXIT_CODES_H_
#define CTFS_CMD_EXIT_CODES_H_

#include "base/status.h"

namespace ctfs::cmd {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;             // anything else (I/O, internal)
inline constexpr int kExitUsage = 2;             // bad command line
inline constexpr int kExitInvalidInput = 3;      // malformed file, unsupported format/alg
inline constexpr int kExitAuthFailed = 4;        // bad tag/signature, wrong key, corruption
inline constexpr int kExitNotFound = 5;          // missing file or key id
inline constexpr int kExitPermissionDenied = 6;  // policy or permissions forbid it

// ExitCodeFor maps a Status to its exit code (OK -> 0).
inline int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
      return kExitInvalidInput;
    case StatusCode::kDataLoss:
      return kExitAuthFailed;
    case StatusCode::kNotFound:
      return kExitNotFound;
    case StatusCode::kPermissionDenied:
      return kExitPermissionDenied;
    default:
      return kExitError;
  }
}

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_EXIT_CODES_H_
