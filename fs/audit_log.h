// SPDX-License-Identifier: Apache-2.0
// AuditLog: one JSON object per line for every access decision and every policy event
// (README "Audit log"). The file is opened O_APPEND|O_CLOEXEC|O_NOFOLLOW, created mode 0600
// (an existing file with group/other permissions, another owner, or that is not a regular file
// is refused, naming the file); lines are written with one write(2) each so concurrent writers
// never interleave. Optionally each line also goes to stderr (the journal under systemd).
//
// Line fields: "time" (RFC 3339 UTC, milliseconds), "mount", "event" ("open", "window",
// "reload", "revoke", ...), "path", "decision" ("allow", "deny", "would-deny"), "rule",
// "reason", "mode" ("enforce", "permissive"), "uid", "gid", "pid", "exe", "cgroup", and
// "count" (how many decisions the line stands for; absent means 1). Fields that do not apply,
// and empty strings, are omitted. Strings are JSON-escaped; bytes that are not valid UTF-8
// are written as U+FFFD, so every line is valid JSON whatever the path holds.
//
// Coalescing: an open event whose (uid, gid, exe, cgroup, path, decision, rule) equals one
// written less than a second before is not written but counted; when that second is over
// (Flush, called by a timer, or the next event with that key) one line with "count": N
// stands for the N repeats (the fields and time of the last one). So 1,000 identical opens
// within a second give two lines: the first open, then "count": 999; the counts of a key sum
// to its decisions. Other events are never coalesced.
// Thread safety: thread-safe.
#ifndef CTFS_FS_AUDIT_LOG_H_
#define CTFS_FS_AUDIT_LOG_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"

namespace ctfs::fs {

struct AuditEvent {
  std::string event = "open";
  std::string path;
  std::string decision;
  std::string rule;
  std::string reason;
  std::string mode;
  // The caller; has_subject = false for events that have none (reload, window end).
  bool has_subject = false;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int32_t pid = 0;
  std::string exe;
  std::string cgroup;
};

struct AuditOptions {
  std::string file;        // empty: no file
  bool to_stderr = false;
  std::string mount;       // the mountpoint, written in every line
};

class AuditLog {
 public:
  static Result<std::unique_ptr<AuditLog>> Open(const AuditOptions& options);
  ~AuditLog();  // flushes
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Record writes or counts `event`, which happened at `now`.
  void Record(const AuditEvent& event,
              std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
  // Flush writes the counts of coalescing windows that ended before `now`.
  void Flush(std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

 private:
  struct Impl;
  explicit AuditLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_AUDIT_LOG_H_
