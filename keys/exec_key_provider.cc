// SPDX-License-Identifier: Apache-2.0
// The exec helper provider (keys/key_provider.h, README "Exec helper"): runs a command with
// posix_spawn (no shell, no PATH search) and reads a JWK / JWK Set from its stdout.
//
// Limits and contract:
//   - the child gets stdin = /dev/null, its own process group, default signal dispositions and
//     an empty signal mask, and the caller's environment minus CRYPTOTENSOR_KEYS (keys the
//     helper was not asked for are not handed to it);
//   - stdout is read into SecretBytes, at most kMaxStdoutLen bytes; more is an error and the
//     helper's process group is killed;
//   - stderr is forwarded line by line (each line cut to kMaxLineLen bytes, control bytes
//     escaped, at most kMaxLines lines; the rest are counted); the last line is quoted in the
//     error if the helper fails;
//   - the whole run is bounded by the timeout: then the process group gets SIGKILL and the
//     child is reaped; a non-zero exit or a signal is an error naming it.
// posix_spawn (vfork-like in glibc) is safe from the mount daemon after its fork: the child
// runs no code of ours before exec, so it never touches the secret arena (which fork() would
// show it zeroed anyway, MADV_WIPEONFORK).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "base/unique_fd.h"
#include "keys/key_provider.h"
#include "keys/key_resolver.h"

extern char** environ;

namespace ctfs::keys {
namespace {

constexpr size_t kMaxStdoutLen = size_t{1} << 20;  // 1 MiB
constexpr size_t kMaxLineLen = 512;
constexpr size_t kMaxLines = 100;
constexpr char kEnvKeysPrefix[] = "CRYPTOTENSOR_KEYS=";

int64_t NowMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string EscapeLine(std::string_view s) {
  std::string out;
  for (char ch : s.substr(0, kMaxLineLen)) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  if (s.size() > kMaxLineLen) out += "...";
  return out;
}

std::string DescribeExit(int wstatus) {
  if (WIFEXITED(wstatus)) return "exited with status " + std::to_string(WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) return "was killed by signal " + std::to_string(WTERMSIG(wstatus));
  return "ended abnormally";
}

// Spawned: a running child and the read ends of its stdout and stderr.
struct Spawned {
  pid_t pid = -1;
  UniqueFd out;
  UniqueFd err;
};

Result<Spawned> Spawn(const std::vector<std::string>& argv, const std::string& what) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError(errno, what + ": pipe");
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoError(errno, what + ": pipe");
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, out_w.get(), STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, err_w.get(), STDERR_FILENO);
  sigset_t empty_mask;
  sigset_t all_signals;
  sigemptyset(&empty_mask);
  sigfillset(&all_signals);
  ::posix_spawnattr_setsigmask(&attr, &empty_mask);
  ::posix_spawnattr_setsigdefault(&attr, &all_signals);
  ::posix_spawnattr_setpgroup(&attr, 0);
  ::posix_spawnattr_setflags(
      &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, kEnvKeysPrefix, sizeof(kEnvKeysPrefix) - 1) != 0) env.push_back(*e);
  }
  env.push_back(nullptr);

  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), env.data());
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoError(rc, what + ": cannot start it");
  Spawned s;
  s.pid = pid;
  s.out = std::move(out_r);
  s.err = std::move(err_r);
  return s;
}

// KillAndReap kills the helper's process group and waits for the helper.
void KillAndReap(pid_t pid) {
  (void)::kill(-pid, SIGKILL);
  (void)::kill(pid, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
}

class ExecKeyProvider final : public KeyProvider {
 public:
  ExecKeyProvider(std::vector<std::string> argv, double timeout_s, LogLineFn log_line)
      : argv_(std::move(argv)), timeout_s_(timeout_s), log_line_(std::move(log_line)) {
    if (!log_line_) {
      const std::string prefix = "ctfs: exec helper " + argv_[0] + ": ";
      log_line_ = [prefix](std::string_view line) {
        std::fprintf(stderr, "%s%.*s\n", prefix.c_str(), static_cast<int>(line.size()),
                     line.data());
      };
    }
  }

  std::string Describe() const override { return "exec helper " + argv_[0]; }

  Result<ProvidedKeys> Load() const override {
    const std::string what = Describe();
    CTFS_ASSIGN_OR_RETURN(Spawned child, Spawn(argv_, what));
    const int64_t deadline_ms = NowMs() + static_cast<int64_t>(timeout_s_ * 1000);

    SecretBytes out(16384);
    size_t out_len = 0;
    std::string err_partial;
    std::string last_line;
    size_t lines = 0;
    auto emit = [&](std::string_view line) {
      last_line = EscapeLine(line);
      if (++lines <= kMaxLines) log_line_(last_line);
    };
    auto fail = [&](const std::string& why) -> Status {
      KillAndReap(child.pid);
      std::string msg = what + ": " + why;
      if (!last_line.empty()) msg += " (last stderr line: " + last_line + ")";
      return UnavailableError(msg);
    };

    bool out_open = true;
    bool err_open = true;
    while (out_open || err_open) {
      const int64_t left_ms = deadline_ms - NowMs();
      if (left_ms <= 0) return fail(TimeoutText());
      pollfd fds[2] = {{out_open ? child.out.get() : -1, POLLIN, 0},
                       {err_open ? child.err.get() : -1, POLLIN, 0}};
      const int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(std::string("poll: ") + std::strerror(errno));
      if (out_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        if (out_len == out.size()) {
          if (out.size() > kMaxStdoutLen) {
            return fail("printed more than " + std::to_string(kMaxStdoutLen) +
                        " bytes on stdout (killed)");
          }
          SecretBytes bigger(std::min(out.size() * 2, kMaxStdoutLen + 1));
          std::copy(out.data(), out.data() + out_len, bigger.data());
          out = std::move(bigger);
        }
        const ssize_t r = ::read(child.out.get(), out.data() + out_len, out.size() - out_len);
        if (r > 0) {
          out_len += static_cast<size_t>(r);
        } else if (r == 0) {
          out_open = false;
        } else if (errno != EINTR && errno != EAGAIN) {
          return fail(std::string("reading stdout: ") + std::strerror(errno));
        }
      }
      if (err_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        char buf[4096];
        const ssize_t r = ::read(child.err.get(), buf, sizeof(buf));
        if (r > 0) {
          for (ssize_t i = 0; i < r; ++i) {
            if (buf[i] == '\n') {
              emit(err_partial);
              err_partial.clear();
            } else if (err_partial.size() <= kMaxLineLen) {
              err_partial += buf[i];
            }
          }
        } else if (r == 0) {
          err_open = false;
          if (!err_partial.empty()) emit(err_partial);
        } else if (errno != EINTR && errno != EAGAIN) {
          err_open = false;
        }
      }
    }
    if (lines > kMaxLines) {
      log_line_("(" + std::to_string(lines - kMaxLines) + " more stderr lines not shown)");
    }

    // Both pipes closed: wait for the exit, still within the deadline.
    int wstatus = 0;
    for (;;) {
      const pid_t r = ::waitpid(child.pid, &wstatus, WNOHANG);
      if (r == child.pid) break;
      if (r < 0 && errno != EINTR)
        return UnavailableError(what + ": waitpid: " + std::strerror(errno));
      if (NowMs() >= deadline_ms) return fail(TimeoutText());
      ::usleep(5000);
    }
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == kExitKeyWithdrawn) {
      // The documented kill switch: not an error of the helper, an answer.
      if (!last_line.empty()) log_line_("(withdrawn) " + last_line);
      return ProvidedKeys{{}, std::nullopt, true};
    }
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
      std::string msg = what + " " + DescribeExit(wstatus);
      if (!last_line.empty()) msg += ": " + last_line;
      return UnavailableError(msg);
    }
    if (out_len == 0) return InvalidArgumentError(what + ": printed nothing on stdout");
    const SecretBytes text = SecretBytes::CopyFrom(out.span().first(out_len));
    out.Wipe();
    Result<format::JwkDocument> doc = ParseKeyDocument(text);
    if (!doc.ok()) {
      return doc.status().WithContext(what + ": stdout is not a JWK or JWK Set");
    }
    return ProvidedKeys{std::move(doc->keys), doc->exp_unix};
  }

 private:
  std::string TimeoutText() const {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "did not finish within %g s (killed)", timeout_s_);
    return buf;
  }

  std::vector<std::string> argv_;
  double timeout_s_;
  LogLineFn log_line_;
};

}  // namespace

std::unique_ptr<KeyProvider> MakeExecKeyProvider(std::vector<std::string> argv, double timeout_s,
                                                 LogLineFn log_line) {
  return std::make_unique<ExecKeyProvider>(std::move(argv), timeout_s, std::move(log_line));
}

}  // namespace ctfs::keys
