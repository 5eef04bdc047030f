// SPDX-License-Identifier: Apache-2.0
// ctfs mount SRC MNT: serve a directory of encrypted models read-only as plain safetensors.
// Everything that can fail for a user reason (paths, keys, signatures, policy) is checked in
// the foreground before the daemon detaches, so the command's exit code tells whether the
// mount is live. Background mode returns once the mount is ready.
#include <fcntl.h>
#include <malloc.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>

#include "cmd/common.h"
#include "cmd/control_socket.h"
#include "cmd/daemon_locator.h"
#include "cmd/daemon_process.h"
#include "cmd/daemon_status.h"
#include "cmd/exit_codes.h"
#include "cmd/key_options.h"
#include "cmd/metrics_file.h"
#include "cmd/mount_access.h"
#include "cmd/mount_config_merge.h"
#include "cmd/mount_table.h"
#include "cmd/service_notify.h"
#include "cmd/subcommands.h"
#include "base/secret_arena.h"
#include "format/prometheus_text.h"
#include "fs/fuse/daemon.h"
#include "fs/key_lease_keeper.h"
#include "fs/mount_stats.h"
#include "fs/served_tree.h"
#include "keys/key_resolver.h"

namespace ctfs::cmd {
namespace {

// CheckMountpointFree: MNT must not already be a ctfs mount, nor a FUSE mount whose daemon is
// gone (every access then fails with ENOTCONN), and must be empty. Other file systems mounted at
// an empty MNT (e.g. a container's bind mount) are fine to mount over.
Status CheckMountpointFree(const std::string& mnt) {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(mnt, ec).lexically_normal().string();
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  if (char* real = ::realpath(mnt.c_str(), nullptr)) {
    abs = real;
    std::free(real);
  }
  std::optional<MountEntry> e = FindMountAt(abs);
  // A ctfs mount is judged by its daemon (a stat could wait on a hung one), another FUSE mount
  // by whether it still answers.
  struct stat st;
  const bool ctfs = e && e->fstype == kCtfsFsType;
  const bool dead_fuse = e && !ctfs && e->fstype.rfind("fuse", 0) == 0 &&
                         ::stat(abs.c_str(), &st) != 0 && errno == ENOTCONN;
  if (ctfs || dead_fuse) {
    const std::string what = mnt + ": already mounted (" + e->fstype + ", " + e->source + ")";
    const LocatedDaemon daemon = ctfs ? LocateDaemon(*e) : LocatedDaemon{};
    const bool daemon_gone =
        dead_fuse || (!daemon.unseen_namespace && DaemonProcess::Inspect(daemon.pid).state() !=
                                                      DaemonProcess::State::kRunning);
    if (daemon_gone) {
      return BusyError(what + " and its daemon is gone (killed?): `ctfs umount --force " + mnt +
                       "` detaches it");
    }
    return BusyError(what + ": `ctfs umount " + mnt + "` first");
  }
  if (!PathExists(mnt)) {
    return NotFoundError(mnt + ": mountpoint does not exist (create an empty directory)");
  }
  if (!IsDirectory(mnt)) return InvalidArgumentError(mnt + ": mountpoint is not a directory");
  bool empty = std::filesystem::is_empty(mnt, ec);
  if (ec) return ErrnoError(ec.value(), mnt);
  if (!empty) return BusyError(mnt + ": mountpoint is not empty");
  return Status::Ok();
}

Status CheckPaths(const MountArgs& args) {
  if (!PathExists(args.src)) return NotFoundError(args.src + ": source directory does not exist");
  if (!IsDirectory(args.src)) return InvalidArgumentError(args.src + ": not a directory");
  CTFS_RETURN_IF_ERROR(CheckMountpointFree(args.mountpoint));
  int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return UnavailableError(
        "/dev/fuse is missing or not accessible (" + std::string(std::strerror(errno)) +
        "): load the fuse module, or run in a container with --device /dev/fuse");
  }
  ::close(fd);
  return Status::Ok();
}

void SetupLogging(const MountArgs& args, bool foreground) {
  std::shared_ptr<spdlog::logger> logger;
  if (!args.log_file.empty()) {
    logger = spdlog::basic_logger_mt("ctfs", args.log_file);
  } else if (foreground) {
    logger = spdlog::stderr_color_mt("ctfs");
  } else {
    logger = spdlog::syslog_logger_mt("ctfs", "ctfs", LOG_PID, LOG_DAEMON);
  }
  logger->set_level(spdlog::level::from_str(args.log_level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// TuneAllocator keeps the daemon's remaining large heap buffers (the per-thread reply buffers of
// reads that cannot be answered from chunk buffers, up to 1 MiB each) on the heap instead of
// fresh mmaps, keeps freed memory for reuse instead of trimming it, and limits fragmentation
// with few malloc arenas (bench/RESULTS.md). Decrypted chunks use fs::ChunkBufferPool.
void TuneAllocator() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  mallopt(M_ARENA_MAX, 2);
}

// KeySourcesOf: where the mount's keys come from (also asked again by key leases).
keys::KeySourceOptions KeySourcesOf(const MountArgs& args) {
  std::vector<keys::KeySourceSpec> sources = Pkcs11Sources(args.pkcs11_uris);
  sources.insert(sources.end(), args.key_sources.begin(), args.key_sources.end());
  return {args.key_files, true, true, args.passphrase_file, std::move(sources)};
}

// LocalTimeNow: "YYYY-MM-DD HH:MM:SS" for status lines.
std::string LocalTimeNow() {
  const time_t now = ::time(nullptr);
  struct tm tm_now {};
  ::localtime_r(&now, &tm_now);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm_now);
  return buf;
}

int Serve(fs::ServedTree& tree, const MountArgs& args, fs::AccessControl* access,
          const std::vector<keys::KeyResolver::ProviderInfo>& providers, int ready_fd) {
  TuneAllocator();
  tree.StartWorkers();
  fs::DaemonOptions opt;
  // Key leases (README "Key leases"): keys an exec helper handed out with an "exp".
  std::unique_ptr<fs::KeyLeaseKeeper> leases = fs::KeyLeaseKeeper::Create(
      KeySourcesOf(args), providers,
      {.grace_s = args.lease_grace_s,
       .on_key_loss = args.unmount_on_key_loss ? fs::KeyLossAction::kUnmount
                                               : fs::KeyLossAction::kDeny},
      &tree, access, [](bool error, const std::string& line) {
        if (error) {
          spdlog::error("{}", line);
        } else {
          spdlog::info("{}", line);
        }
      });
  if (leases != nullptr) {
    for (const fs::KeyLeaseInfo& l : leases->Leases()) {
      spdlog::info("key lease: kid {} from {} until {} (grace {} s, on loss: {})", l.kids,
                   l.provider, l.exp_unix, args.lease_grace_s,
                   args.unmount_on_key_loss ? "unmount" : "deny");
    }
  }
  opt.leases = leases.get();
  opt.mountpoint = args.mountpoint;
  opt.allow_other = args.allow_other;
  opt.fuse_threads = args.threads;
  opt.read_ahead_kb = args.read_ahead_kb;
  opt.access = access;
  if (access != nullptr && !args.config_path.empty()) {
    // SIGHUP re-reads the policy from the config file.
    opt.reload = [&args, access] { return ReloadPolicy(args.config_path, access->files()); };
  }
  // `ctfs status`: counters, and the control socket that answers with them once mounted.
  fs::MountStats stats(tree.tree().nodes().size());
  opt.stats = &stats;
  DaemonStatus status(tree, stats, access, args.src, args.mountpoint, args.cache_mb << 20,
                      args.prefetch_mb << 20, leases.get());
  std::unique_ptr<ControlServer> control;
  std::unique_ptr<MetricsFile> metrics;
  // The service manager (systemd Type=notify) hears what the daemon does.
  const std::string serving = "serving " + std::to_string(tree.tree().FileCount()) +
                              " files from " + args.src + " at " + args.mountpoint;
  opt.on_event = [&serving, &status](fs::DaemonEvent e, const std::string& detail) {
    switch (e) {
      case fs::DaemonEvent::kRevoking:
        NotifyService("STOPPING=1\nSTATUS=revoking access (" + detail + ")");
        break;
      case fs::DaemonEvent::kUnmounted:
        NotifyService("STOPPING=1\nSTATUS=unmounted; wiping keys");
        break;
      case fs::DaemonEvent::kReloading:
        NotifyService("RELOADING=1\nSTATUS=reloading the access policy");
        break;
      case fs::DaemonEvent::kReloaded:
        status.PolicyReloaded();
        NotifyReady(serving + "; policy reloaded at " + LocalTimeNow());
        break;
      case fs::DaemonEvent::kKeyLeaseLost:
        NotifyService("STATUS=" + serving + "; key lease lost at " + LocalTimeNow() +
                      ": encrypted files denied until the key is renewed");
        break;
      case fs::DaemonEvent::kKeyLeaseRestored:
        NotifyService("STATUS=" + serving + "; key lease restored at " + LocalTimeNow());
        break;
      case fs::DaemonEvent::kReloadRejected:
        status.PolicyReloadRejected(detail);
        NotifyReady(serving + "; policy reload rejected at " + LocalTimeNow() + ": " + detail);
        break;
    }
  };
  Status st = fs::MountAndServe(tree, opt, [&](const Status& s) {
    // Called after a statvfs() of the mountpoint was answered by the running loop: reads
    // through the mount work from here on.
    if (s.ok()) {
      auto server = ControlServer::Start(
          [&status](const std::string& request) -> std::string {
            if (request != "revoke") return status.Answer(request);
            fs::RequestRevoke();  // `ctfs revoke`: the client waits for this daemon's exit
            return "revoking\n";
          });
      if (server.ok()) {
        control = std::move(*server);
        spdlog::info("control socket {} (`ctfs status {}`)", control->path(), args.mountpoint);
      } else {
        spdlog::warn("no control socket (`ctfs status` will not work): {}",
                     server.status().message());
      }
      if (!args.metrics_file.empty()) {
        auto started = MetricsFile::Start(
            args.metrics_file, std::chrono::seconds(args.metrics_interval_s),
            [&status] { return format::MountStatusToPrometheus(status.Collect()); });
        if (started.ok()) {
          metrics = std::move(*started);
        } else {
          spdlog::warn("no metrics file: {}", started.status().message());
        }
      }
      NotifyReady(serving);
    }
    if (ready_fd < 0) {
      if (s.ok() && !args.quiet) {
        std::printf("mounted %s at %s (foreground; Ctrl-C or `ctfs umount` to stop)\n",
                    args.src.c_str(), args.mountpoint.c_str());
        std::fflush(stdout);
      }
      return;
    }
    std::string msg = s.ok() ? "OK" : std::to_string(ExitCodeFor(s)) + " " + s.message();
    (void)!::write(ready_fd, msg.data(), msg.size());
    ::close(ready_fd);
    if (s.ok()) {  // detach from the terminal now that the parent has its answer
      int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
      if (null_fd >= 0) {
        ::dup2(null_fd, 0);
        ::dup2(null_fd, 1);
        ::dup2(null_fd, 2);
        ::close(null_fd);
      }
    }
  });
  metrics.reset();  // stops its thread and removes the file
  control.reset();  // stops its thread and removes the socket file
  if (!st.ok()) {
    spdlog::error("{}", st.message());
    return ExitCodeFor(st);
  }
  return kExitOk;
}

// RaiseOpenFileLimit lifts the soft limit on open files to the hard one: the daemon keeps two
// descriptors per encrypted file (page-cache and O_DIRECT reads), and the usual soft limit of
// 1024 would refuse a directory of a few hundred shards. Best effort.
void RaiseOpenFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  lim.rlim_cur = lim.rlim_max;
  (void)::setrlimit(RLIMIT_NOFILE, &lim);
}

// LoadAndServe does everything that touches keys, in one scope, so that every key (master
// keys, data keys) is wiped before it returns: it resolves the keys, opens and verifies the
// tree (which unwraps the data keys; the master keys are wiped right after), reports the
// outcome on `ready_fd` (background) or stderr (foreground), and serves until unmounted.
int LoadAndServe(const MountArgs& args, int ready_fd) {
  NotifyStatus("verifying " + args.src + " and loading keys");
  auto fail = [&](const Status& st) {
    NotifyStatus("failed: " + st.message());
    if (ready_fd < 0) return Fail(st);
    const std::string msg = std::to_string(ExitCodeFor(st)) + " " + st.message();
    (void)!::write(ready_fd, msg.data(), msg.size());
    ::close(ready_fd);
    return ExitCodeFor(st);
  };
  std::unique_ptr<fs::ServedTree> tree;
  std::vector<keys::KeyResolver::ProviderInfo> providers;  // no keys: kids, expiry, digest
  {
    auto resolver = keys::KeyResolver::Create(KeySourcesOf(args));
    keys::WipeKeysFromEnvironment();  // parsed by Create: the key text must not outlive it
    if (!resolver.ok()) return fail(resolver.status());
    providers = resolver->providers();
    RaiseOpenFileLimit();
    const fs::ServeOptions sopt = ServeOptionsOf(args);
    std::vector<std::string> warnings;
    auto created = fs::ServedTree::Create(args.src, *resolver, sopt, &warnings);
    if (!created.ok()) return fail(created.status());
    tree = std::move(*created);
    // stderr is still the caller's terminal (a background daemon detaches once ready).
    if (SecretArena::Stats().lock_failures > 0) {
      warnings.push_back("keys could not be locked in memory (RLIMIT_MEMLOCK): they may be swapped");
    }
    for (const std::string& w : warnings) std::fprintf(stderr, "ctfs: warning: %s\n", w.c_str());
  }  // the resolver (master keys) is wiped here: the tree holds the unwrapped data keys
  SetupLogging(args, ready_fd < 0);
  // The access policy and audit log (config file): errors here are the user's, reported like
  // the tree's.
  auto access = BuildAccessControl(*tree, args.policy, args.audit, args.mountpoint,
                                   args.config_path);
  if (!access.ok()) return fail(access.status());
  if (*access != nullptr && args.policy) {
    spdlog::info("access policy: {} rule(s), mode {}", args.policy->rules.size(),
                 (*access)->policy()->permissive() ? "permissive" : "enforce");
  }
  const int rc = Serve(*tree, args, access->get(), providers, ready_fd);
  tree.reset();  // data keys and cached plaintext (Serve revoked already)
  // Every key-holding object is gone: the secret arena (base/secret_arena.h) says whether any
  // key byte is left in this process.
  const SecretArenaStats left = SecretArena::Stats();
  if (left.live_bytes == 0) {
    spdlog::info("keys wiped: 0 secret bytes left in memory");
  } else {
    spdlog::error("{} secret bytes ({} keys) still in memory at exit (a bug)", left.live_bytes,
                  left.live_blocks);
  }
  return rc;
}

int Mount(const MountArgs& raw_args) {
  Status st = CheckPaths(raw_args);
  if (!st.ok()) return Fail(st);
  // Absolute paths: the daemon changes to "/" and the mount table holds absolute paths.
  MountArgs args = raw_args;
  std::error_code ec;
  args.src = std::filesystem::canonical(raw_args.src, ec).string();
  if (ec) return Fail(ErrnoError(ec.value(), raw_args.src));
  args.mountpoint = std::filesystem::canonical(raw_args.mountpoint, ec).string();
  if (ec) return Fail(ErrnoError(ec.value(), raw_args.mountpoint));
  if (!args.log_file.empty()) args.log_file = std::filesystem::absolute(args.log_file).string();
  if (!args.metrics_file.empty()) {
    args.metrics_file = std::filesystem::absolute(args.metrics_file).string();
    const std::filesystem::path folder = std::filesystem::path(args.metrics_file).parent_path();
    if (!std::filesystem::is_directory(folder, ec)) {
      return Fail(NotFoundError("--metrics-file " + args.metrics_file + ": no folder " +
                                folder.string()));
    }
  }
  // The daemon re-reads the config on SIGHUP from "/".
  if (!args.config_path.empty()) {
    args.config_path = std::filesystem::absolute(args.config_path).string();
  }

  if (args.foreground) return LoadAndServe(args, -1);
  // Fork before any key is read: memory locks are not inherited across fork(), and secrets
  // are zero in a child (MADV_WIPEONFORK), so the daemon loads its keys itself. This process
  // only waits for its answer ("OK", or "<exit code> <message>").
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Fail(ErrnoError(errno, "pipe"));
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return Fail(ErrnoError(errno, "fork"));
  if (pid == 0) {
    ::close(fds[0]);
    ::setsid();
    if (::chdir("/") != 0) _exit(kExitError);
    const int rc = LoadAndServe(args, fds[1]);
    std::fflush(nullptr);
    _exit(rc);  // after LoadAndServe's scope: every key-holding object has been destroyed
  }
  ::close(fds[1]);
  std::string answer;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(fds[0]);
  if (answer == "OK") {
    if (!args.quiet) {
      std::printf("mounted %s at %s (daemon pid %d)\n", args.src.c_str(), args.mountpoint.c_str(),
                  static_cast<int>(pid));
    }
    return kExitOk;
  }
  if (answer.empty()) return Fail(InternalError("the mount daemon exited before mounting"));
  size_t space = answer.find(' ');
  std::fprintf(stderr, "ctfs: error: %s\n", answer.substr(space + 1).c_str());
  return std::atoi(answer.substr(0, space).c_str());
}

}  // namespace

CLI::App* AddMount(CLI::App& app, MountArgs& args) {
  CLI::App* c = app.add_subcommand(
      "mount",
      "Mount a directory of encrypted models read-only as plain safetensors. Every encrypted "
      "file is verified (signature, keys) before the mount goes live.");
  // SRC and MNT may come from --config (source:, mountpoint:); RunMount checks they are set.
  c->add_option("SRC", args.src, "Directory of encrypted models (from ctfs encrypt)");
  c->add_option("MNT", args.mountpoint, "Empty directory to mount on");
  c->add_option("--config", args.config_path,
                "YAML file with the mount's settings and access policy (README \"Configuration "
                "file\"); options given here override its keys");
  c->add_option("-k,--key", args.key_files,
                "JWK / JWK Set key file (repeatable); also CRYPTOTENSOR_KEYS and file:// jku");
  c->add_option("--passphrase-file", args.passphrase_file,
                "Passphrase of passphrase-protected --key files (one trailing newline is "
                "stripped; without it such a file is prompted for on a terminal)");
  AddPkcs11Option(c, args.pkcs11_uris, "Master key of the models");
  c->add_flag("-f,--foreground", args.foreground, "Stay in the foreground, log to stderr");
  // Ranges keep the byte counts (MiB << 20, KiB) far from overflow and thread counts sane.
  c->add_option("--cache-mb", args.cache_mb, "Decrypted-chunk cache size in MiB (default 256)")
      ->check(CLI::Range(size_t{0}, size_t{1} << 20));
  c->add_option("--threads", args.threads, "Max FUSE worker threads (default 16)")
      ->check(CLI::Range(size_t{1}, size_t{1024}));
  c->add_option("--decrypt-threads", args.decrypt_threads,
                "Extra threads decrypting chunks of one read in parallel (default 2)")
      ->check(CLI::Range(size_t{0}, size_t{256}));
  c->add_option("--prefetch-mb", args.prefetch_mb,
                "Decrypt up to this many MiB ahead of sequential readers (default 64; 0 = off; "
                "files read at once share it, down to 4 MiB each; a stream's window starts "
                "at 1 MiB and doubles with what it reads; more than --cache-mb only evicts what "
                "was decrypted ahead)")
      ->check(CLI::Range(size_t{0}, size_t{1} << 16));
  c->add_option("--prefetch-threads", args.prefetch_threads,
                "Threads decrypting ahead (default 4); with direct I/O each keeps one read of "
                "up to 4 MiB in flight (at most --prefetch-mb / 4 in all)")
      ->check(CLI::Range(size_t{1}, size_t{256}));
  c->add_option("--read-ahead-kb", args.read_ahead_kb,
                "Readahead window of the mount in KiB (default 4096; 0 = kernel default)")
      ->check(CLI::Range(size_t{0}, size_t{1} << 20));
  c->add_flag("--direct-io,!--no-direct-io", args.direct_io,
              "Read ciphertext with O_DIRECT: no copy out of, and no second copy in, the page "
              "cache (default on; files whose file system cannot are read normally)");
  c->add_flag("--allow-other", args.allow_other,
              "Let other users read the mount (file modes still apply)");
  c->add_flag("--allow-bad-files", args.allow_bad_files,
              "Mount even if some encrypted files fail verification; they answer EIO");
  c->add_option("--log-file", args.log_file,
                "Log to this file (default: stderr in foreground, "
                "syslog in background)");
  c->add_option("--metrics-file", args.metrics_file,
                "Write the `ctfs status` figures to this file in the Prometheus text format "
                "(node_exporter textfile collector), atomically, every --metrics-interval-s");
  c->add_option("--metrics-interval-s", args.metrics_interval_s,
                "Seconds between --metrics-file rewrites (default 5)")
      ->check(CLI::Range(size_t{1}, size_t{3600}));
  c->add_option("--log-level", args.log_level, "trace, debug, info (default), warn, error")
      ->check(
          CLI::IsMember({"trace", "debug", "info", "warn", "warning", "error", "critical", "off"}));
  c->add_flag("-q,--quiet", args.quiet, "Print nothing on success");
  // What was given on the command line overrides the config file (MergeMountConfig).
  c->parse_complete_callback([c, &args] {
    args.given.clear();
    for (const CLI::Option* o : c->get_options()) {
      if (o->count() > 0) args.given.insert(o->get_name());
    }
  });
  return c;
}

int RunMount(const MountArgs& cli_args) {
  MountArgs args = cli_args;
  Status st = ApplyMountConfig(args);
  if (!st.ok()) return Fail(st);
  if (args.src.empty() || args.mountpoint.empty()) {
    std::fprintf(stderr, "ctfs: error: mount needs %s (as arguments, or source: and mountpoint: "
                         "in the --config file)\n",
                 args.src.empty() ? "SRC and MNT" : "MNT");
    return kExitUsage;
  }
  return Mount(args);
}

}  // namespace ctfs::cmd
