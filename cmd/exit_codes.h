// SPDX-License-Identifier: Apache-2.0
// Stable, documented exit codes of the `ctfs` binary (README "Exit codes"). Codes 0-8 come from
// a Status (ExitCodeFor); 128+N means the command was stopped by signal N and removed its
// partial output (cmd/interrupt.h).
#ifndef CTFS_CMD_EXIT_CODES_H_
#define CTFS_CMD_EXIT_CODES_H_

#include "base/status.h"

namespace ctfs::cmd {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;             // anything else (I/O, internal)
inline constexpr int kExitUsage = 2;             // bad command line
inline constexpr int kExitInvalidInput = 3;      // malformed file, unsupported format/alg,
                                                 // not encrypted (decrypt, verify)
inline constexpr int kExitAuthFailed = 4;        // bad tag/signature, wrong key, corruption
inline constexpr int kExitNotFound = 5;          // missing file or key id
inline constexpr int kExitPermissionDenied = 6;  // policy or permissions forbid it
inline constexpr int kExitBusy = 7;              // in use or in the way: files open on a mount,
                                                 // mountpoint not empty or already mounted
inline constexpr int kExitExists = 8;            // output exists and --force was not given
inline constexpr int kExitSignalBase = 128;      // + signal number: interrupted (130 SIGINT,
                                                 // 143 SIGTERM, 129 SIGHUP)

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
    case StatusCode::kBusy:
      return kExitBusy;
    case StatusCode::kAlreadyExists:
      return kExitExists;
    case StatusCode::kUnavailable:
    case StatusCode::kInternal:
      return kExitError;
  }
  return kExitError;
}

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_EXIT_CODES_H_
