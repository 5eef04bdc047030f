// SPDX-License-Identifier: Apache-2.0
// Lines are built by hand (fs/ does not use nlohmann): a fixed field order, strings escaped by
// JsonEscape below. Coalescing keeps, per key, the start of its one-second window and the
// repeats counted in it; windows that are over are swept on Flush and, at most once a second,
// on Record, so the table holds only the keys of the last second.
#include "fs/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "base/mutex.h"
#include "base/unique_fd.h"

namespace ctfs::fs {
namespace {

using Clock = std::chrono::system_clock;
constexpr Clock::duration kWindow = std::chrono::seconds(1);

// Length of the valid UTF-8 sequence at s[i], or 0 if the byte there does not start one
// (overlong forms, surrogates and code points past U+10FFFF are invalid).
size_t Utf8SequenceLen(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) -> unsigned { return static_cast<unsigned char>(s[k]); };
  const unsigned c = byte(i);
  size_t len;
  unsigned lo = 0x80, hi = 0xbf;  // the range of the second byte
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return len;
}

// Appends s as a JSON string (quotes included): '"' and '\\' escaped, control bytes and DEL
// as \uXXXX (\n \r \t by name), invalid UTF-8 bytes as \ufffd, one per byte.
void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c == '\n') {
      out += "\\n";
      ++i;
    } else if (c == '\r') {
      out += "\\r";
      ++i;
    } else if (c == '\t') {
      out += "\\t";
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (size_t len = Utf8SequenceLen(s, i); len > 0) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
}

// RFC 3339 UTC with milliseconds: "2026-03-01T12:00:00.123Z".
std::string FormatTime(Clock::time_point t) {
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  int64_t s = ms / 1000;
  int64_t frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    --s;
  }
  const time_t tt = static_cast<time_t>(s);
  struct tm tm {};
  char date[48];
  if (gmtime_r(&tt, &tm) == nullptr || strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
    return "@" + std::to_string(ms);
  }
  char out[64];
  snprintf(out, sizeof out, "%s.%03dZ", date, static_cast<int>(frac));
  return out;
}

void AppendField(std::string& line, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  line += ',';
  AppendJsonString(line, name);
  line += ':';
  AppendJsonString(line, value);
}

void AppendNumber(std::string& line, std::string_view name, int64_t value) {
  line += ',';
  AppendJsonString(line, name);
  line += ':';
  line += std::to_string(value);
}

std::string FormatLine(const std::string& mount, const AuditEvent& e, Clock::time_point t,
                       uint64_t count) {
  std::string line = "{\"time\":";
  AppendJsonString(line, FormatTime(t));
  AppendField(line, "mount", mount);
  AppendField(line, "event", e.event);
  AppendField(line, "path", e.path);
  AppendField(line, "decision", e.decision);
  AppendField(line, "rule", e.rule);
  AppendField(line, "reason", e.reason);
  AppendField(line, "mode", e.mode);
  if (e.has_subject) {
    AppendNumber(line, "uid", e.uid);
    AppendNumber(line, "gid", e.gid);
    AppendNumber(line, "pid", e.pid);
    AppendField(line, "exe", e.exe);
    AppendField(line, "cgroup", e.cgroup);
  }
  if (count > 0) AppendNumber(line, "count", static_cast<int64_t>(count));
  line += "}\n";
  return line;
}

// The coalescing key; '\0' cannot occur in any of the fields (paths, names), so it separates.
std::string CoalescingKey(const AuditEvent& e) {
  std::string key;
  key.reserve(e.exe.size() + e.cgroup.size() + e.path.size() + e.decision.size() + e.rule.size() +
              32);
  key += std::to_string(e.uid);
  key += '\0';
  key += std::to_string(e.gid);
  key += '\0';
  key += e.exe;
  key += '\0';
  key += e.cgroup;
  key += '\0';
  key += e.path;
  key += '\0';
  key += e.decision;
  key += '\0';
  key += e.rule;
  return key;
}

bool InWindow(Clock::time_point start, Clock::time_point now) {
  return now >= start && now - start < kWindow;
}

}  // namespace

struct AuditLog::Impl {
  struct Pending {
    Clock::time_point window_start;
    uint64_t repeats = 0;  // coalesced since the written line
    AuditEvent last;       // the latest repeat
    Clock::time_point last_time;
  };

  std::string file;
  std::string mount;
  bool to_stderr = false;
  UniqueFd fd;

  Mutex mu;
  std::unordered_map<std::string, Pending> pending CTFS_GUARDED_BY(mu);
  Clock::time_point next_sweep CTFS_GUARDED_BY(mu);
  bool write_failed CTFS_GUARDED_BY(mu) = false;

  void WriteLocked(const std::string& line) CTFS_REQUIRES(mu) {
    if (fd.valid() && !WriteAll(fd.get(), line) && !write_failed) {
      write_failed = true;  // said once; the daemon keeps serving
      const std::string msg =
          "ctfs: audit log " + file + ": write failed: " + std::strerror(errno) + "\n";
      (void)WriteAll(STDERR_FILENO, msg);
    }
    if (to_stderr) (void)WriteAll(STDERR_FILENO, line);
  }

  // One write(2) (retried only when interrupted or short).
  static bool WriteAll(int out_fd, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::write(out_fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  void EmitCountLocked(const Pending& p) CTFS_REQUIRES(mu) {
    if (p.repeats > 0) WriteLocked(FormatLine(mount, p.last, p.last_time, p.repeats));
  }

  // Writes the counts of the windows over at `now` (all of them if `all`) and forgets them.
  void SweepLocked(Clock::time_point now, bool all) CTFS_REQUIRES(mu) {
    for (auto it = pending.begin(); it != pending.end();) {
      if (all || !InWindow(it->second.window_start, now)) {
        EmitCountLocked(it->second);
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
  }
};

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AuditLog::~AuditLog() {
  MutexLock lock(impl_->mu);
  impl_->SweepLocked(Clock::time_point(), /*all=*/true);
}

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const AuditOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->file = options.file;
  impl->mount = options.mount;
  impl->to_stderr = options.to_stderr;
  if (!options.file.empty()) {
    const std::string& f = options.file;
    // O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of blocking the mount.
    UniqueFd fd(::open(f.c_str(),
                       O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600));
    if (!fd.valid()) {
      if (errno == ELOOP) {
        return FailedPreconditionError("audit log " + f + ": is a symbolic link (refused)");
      }
      return ErrnoError(errno, "audit log " + f);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "audit log " + f);
    if (!S_ISREG(st.st_mode)) {
      return FailedPreconditionError("audit log " + f + ": not a regular file (refused)");
    }
    if ((st.st_mode & 077) != 0) {
      char mode[8];
      snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return FailedPreconditionError("audit log " + f + ": mode " + mode +
                                     " gives group/other access; want 0600 (chmod 600 " + f + ")");
    }
    if (st.st_uid != ::geteuid()) {
      return FailedPreconditionError("audit log " + f + ": owned by uid " +
                                     std::to_string(st.st_uid) + ", not by this process's uid " +
                                     std::to_string(::geteuid()) + " (refused)");
    }
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
      return ErrnoError(errno, "audit log " + f);
    }
    impl->fd = std::move(fd);
  }
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(impl)));
}

void AuditLog::Record(const AuditEvent& event, Clock::time_point now) {
  Impl& impl = *impl_;
  MutexLock lock(impl.mu);
  if (now >= impl.next_sweep) {
    impl.SweepLocked(now, /*all=*/false);
    impl.next_sweep = now + kWindow;
  }
  if (event.event != "open") {
    impl.WriteLocked(FormatLine(impl.mount, event, now, 0));
    return;
  }
  auto [it, inserted] = impl.pending.try_emplace(CoalescingKey(event));
  Impl::Pending& p = it->second;
  if (!inserted) {
    if (InWindow(p.window_start, now)) {
      ++p.repeats;
      p.last = event;
      p.last_time = now;
      return;
    }
    impl.EmitCountLocked(p);  // that window is over: its count, then a new window
  }
  p.window_start = now;
  p.repeats = 0;
  impl.WriteLocked(FormatLine(impl.mount, event, now, 0));
}

void AuditLog::Flush(Clock::time_point now) {
  MutexLock lock(impl_->mu);
  impl_->SweepLocked(now, /*all=*/false);
}

}  // namespace ctfs::fs
