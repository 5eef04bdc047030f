// SPDX-License-Identifier: Apache-2.0
// ctfs status MNT [--json]: ask the daemon of a ctfs mount what it is doing, over its control
// socket (cmd/control_socket.h). --json prints the daemon's document as it came
// (format/mount_status.h); otherwise a summary for people.
// Exit codes: 0 answered; 5 MNT is not a ctfs mount (or its daemon has no control socket);
// 6 refused (only root and the user who mounted may ask); 1 no answer.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>

#include "cmd/common.h"
#include "cmd/control_socket.h"
#include "cmd/daemon_locator.h"
#include "cmd/daemon_process.h"
#include "cmd/exit_codes.h"
#include "cmd/mount_table.h"
#include "cmd/subcommands.h"
#include "format/mount_status.h"

namespace ctfs::cmd {
namespace {

std::string Duration(double s) {
  const long long t = static_cast<long long>(s);
  char buf[64];
  if (t >= 86400) {
    std::snprintf(buf, sizeof buf, "%lldd %lldh", t / 86400, t % 86400 / 3600);
  } else if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh %lldm", t / 3600, t % 3600 / 60);
  } else if (t >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm %llds", t / 60, t % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  }
  return buf;
}

std::string LocalTime(int64_t unix_s) {
  const time_t t = static_cast<time_t>(unix_s);
  struct tm tm_t {};
  ::localtime_r(&t, &tm_t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm_t);
  return buf;
}

void PrintSummary(const format::MountStatus& s) {
  uint64_t opens = 0, denials = 0, bytes_read = 0, decrypted = 0;
  for (const format::FileStatus& f : s.files) {
    opens += f.opens;
    denials += f.denials;
    bytes_read += f.bytes_read;
    decrypted += f.bytes_decrypted;
  }
  std::printf("ctfs mount %s%s\n", s.mountpoint.c_str(), s.revoked ? " (REVOKED)" : "");
  std::printf("  daemon:   pid %lld, uid %lld, up %s, RSS %s\n", static_cast<long long>(s.pid),
              static_cast<long long>(s.uid), Duration(s.uptime_s).c_str(),
              HumanBytes(s.rss_bytes).c_str());
  std::printf("  source:   %s\n", s.source.c_str());
  std::printf("  files:    %zu served; %llu opens, %llu denied; %s read, %s decrypted\n",
              s.files.size(), static_cast<unsigned long long>(opens),
              static_cast<unsigned long long>(denials), HumanBytes(bytes_read).c_str(),
              HumanBytes(decrypted).c_str());
  std::printf("  cache:    %s of %s (peak %s); %llu hits, %llu misses\n",
              HumanBytes(s.cache_cached_bytes).c_str(), HumanBytes(s.cache_capacity_bytes).c_str(),
              HumanBytes(s.cache_peak_bytes).c_str(),
              static_cast<unsigned long long>(s.cache_hits),
              static_cast<unsigned long long>(s.cache_misses));
  std::printf("  prefetch: %s budget, %llu jobs done\n", HumanBytes(s.prefetch_budget_bytes).c_str(),
              static_cast<unsigned long long>(s.prefetch_jobs));
  if (s.policy_mode == "none") {
    std::printf("  policy:   none (file modes decide)\n");
  } else {
    std::printf("  policy:   %s, %llu rules, loaded %s (%llu reloads)%s%s\n", s.policy_mode.c_str(),
                static_cast<unsigned long long>(s.policy_rules),
                LocalTime(s.policy_loaded_unix).c_str(),
                static_cast<unsigned long long>(s.policy_reloads),
                s.policy_last_reload_error.empty() ? "" : "; last reload rejected: ",
                s.policy_last_reload_error.c_str());
  }
  for (const format::KeyLeaseStatus& k : s.keys) {
    std::printf("  key:      %s from %s: %s, expires %s\n", k.kid.c_str(), k.provider.c_str(),
                k.state.c_str(), LocalTime(k.exp_unix).c_str());
  }
  std::printf("  %8s %8s %10s %10s  %s\n", "opens", "denied", "read", "decrypted", "file");
  for (const format::FileStatus& f : s.files) {
    std::printf("  %8llu %8llu %10s %10s  %s%s\n", static_cast<unsigned long long>(f.opens),
                static_cast<unsigned long long>(f.denials), HumanBytes(f.bytes_read).c_str(),
                HumanBytes(f.bytes_decrypted).c_str(), f.path.c_str(),
                f.kind == "encrypted" ? "" : (" (" + f.kind + ")").c_str());
  }
}

// NotReadyReason: why a live daemon does not serve reads, or "" if it does. A revoked mount
// denies everything; a lost key lease denies the files of that key (README "Key leases").
std::string NotReadyReason(const format::MountStatus& s) {
  if (s.revoked) return "revoked";
  for (const format::KeyLeaseStatus& k : s.keys) {
    if (k.state == "lost") return "key lease lost: " + k.kid + " from " + k.provider;
  }
  return "";
}

}  // namespace

CLI::App* AddStatus(CLI::App& app, StatusArgs& args) {
  CLI::App* c = app.add_subcommand(
      "status", "Show what the daemon of a ctfs mount is doing: files, opens, denials, bytes "
                "decrypted, cache, policy, uptime (root or the user who mounted)");
  c->add_option("MNT", args.mountpoint, "Mountpoint of a ctfs mount")->required();
  c->add_flag("--json", args.json, "Print the daemon's JSON document (README \"ctfs status\")");
  c->add_flag("--ready", args.ready,
              "Readiness probe: print one line and exit 0 only while the mount serves reads "
              "(daemon live, not revoked, no key lease lost); exit 1 otherwise");
  return c;
}

int RunStatus(const StatusArgs& args) {
  std::string mnt = args.mountpoint;
  if (char* real = ::realpath(mnt.c_str(), nullptr)) {
    mnt = real;
    std::free(real);
  } else if (errno == ENOENT || errno == ENOTDIR) {
    return Fail(NotFoundError(args.mountpoint + ": not a ctfs mount (no such directory)"));
  } else {
    return Fail(ErrnoError(errno, args.mountpoint));
  }
  const std::optional<MountEntry> e = FindMountAt(mnt);
  if (!e || e->fstype != kCtfsFsType || e->daemon_pid() <= 0) {
    return Fail(NotFoundError(args.mountpoint + ": not a ctfs mount"));
  }
  const LocatedDaemon daemon = LocateDaemon(*e);
  if (daemon.unseen_namespace) {
    return Fail(NotFoundError(args.mountpoint + ": its daemon (" + daemon.where +
                              ") runs in a pid namespace this process cannot see: run `ctfs "
                              "status` where it runs (e.g. kubectl exec or podman exec)"));
  }
  struct stat proc_st;
  const std::string proc = "/proc/" + std::to_string(daemon.pid);
  if (daemon.pid <= 0 || ::stat(proc.c_str(), &proc_st) != 0) {
    return Fail(NotFoundError(args.mountpoint + ": its daemon (" + daemon.where +
                              ") is gone: `ctfs umount --force " + args.mountpoint + "`"));
  }
  auto answer = AskDaemon(daemon.ControlPath(proc_st.st_uid), "status");
  if (!answer.ok()) return Fail(answer.status().WithContext(args.mountpoint));
  auto doc = format::ParseMountStatus(*answer);
  if (!doc.ok()) return Fail(doc.status().WithContext(args.mountpoint));
  if (doc->pid != daemon.own_pid) {
    return Fail(InternalError(args.mountpoint + ": the control socket answered for pid " +
                              std::to_string(doc->pid) + ", not the mount's daemon (" +
                              daemon.where + ")"));
  }
  if (args.ready) {
    const std::string why = NotReadyReason(*doc);
    if (!why.empty()) {
      std::fprintf(stderr, "ctfs: %s: not ready: %s\n", args.mountpoint.c_str(), why.c_str());
      return kExitError;
    }
    std::printf("%s: ready, %zu files served\n", args.mountpoint.c_str(), doc->files.size());
    return kExitOk;
  }
  if (args.json) {
    std::fputs(answer->c_str(), stdout);
  } else {
    PrintSummary(*doc);
  }
  return kExitOk;
}

}  // namespace ctfs::cmd
