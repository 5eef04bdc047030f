// SPDX-License-Identifier: Apache-2.0
#include "cmd/mount_config_merge.h"

#include <filesystem>
#include <optional>
#include <string>

namespace ctfs::cmd {
namespace {

// Set copies a key the file set into `field` unless `option` was given on the command line.
template <typename T, typename U>
void Set(const MountArgs& args, const char* option, const std::optional<U>& value, T& field) {
  if (value.has_value() && args.given.count(option) == 0) field = static_cast<T>(*value);
}

}  // namespace

keys::KeySourceSpec KeySpecOf(const config::KeySourceConfig& k) {
  keys::KeySourceSpec spec;
  spec.file = k.file;
  spec.passphrase_file = k.passphrase_file;
  spec.credential = k.credential;
  spec.exec = k.exec;
  spec.pkcs11 = k.pkcs11;
  if (k.timeout_s) spec.timeout_s = static_cast<double>(*k.timeout_s);
  return spec;
}

void MergeMountConfig(const config::MountConfig& c, MountArgs& args) {
  Set(args, "SRC", c.source, args.src);
  Set(args, "MNT", c.mountpoint, args.mountpoint);
  if (!c.keys.empty() && args.given.count("--key") == 0 && args.given.count("--pkcs11") == 0) {
    args.key_files.clear();
    args.key_sources.clear();
    for (const config::KeySourceConfig& k : c.keys) args.key_sources.push_back(KeySpecOf(k));
  }
  Set(args, "--foreground", c.foreground, args.foreground);
  Set(args, "--quiet", c.quiet, args.quiet);
  Set(args, "--cache-mb", c.cache_mb, args.cache_mb);
  Set(args, "--threads", c.threads, args.threads);
  Set(args, "--decrypt-threads", c.decrypt_threads, args.decrypt_threads);
  Set(args, "--prefetch-mb", c.prefetch_mb, args.prefetch_mb);
  Set(args, "--prefetch-threads", c.prefetch_threads, args.prefetch_threads);
  Set(args, "--read-ahead-kb", c.read_ahead_kb, args.read_ahead_kb);
  Set(args, "--direct-io", c.direct_io, args.direct_io);
  Set(args, "--allow-other", c.allow_other, args.allow_other);
  Set(args, "--allow-bad-files", c.allow_bad_files, args.allow_bad_files);
  Set(args, "--log-level", c.log.level, args.log_level);
  Set(args, "--log-file", c.log.file, args.log_file);
  Set(args, "--metrics-file", c.metrics.file, args.metrics_file);
  Set(args, "--metrics-interval-s", c.metrics.interval_s, args.metrics_interval_s);
  if (c.key_lease.grace_s) args.lease_grace_s = static_cast<int64_t>(*c.key_lease.grace_s);
  if (c.key_lease.on_key_loss) {
    args.unmount_on_key_loss = *c.key_lease.on_key_loss == config::KeyLossMode::kUnmount;
  }
  args.policy = c.policy;
  args.audit = c.audit;
  args.embedded_policy = c.embedded_policy.value_or(config::EmbeddedPolicyMode::kReference);
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(c.path, ec);
  args.config_path = ec ? c.path : abs.lexically_normal().string();
}

Status ApplyMountConfig(MountArgs& args) {
  if (args.config_path.empty()) return Status::Ok();
  Result<config::MountConfig> c = config::LoadMountConfig(args.config_path);
  if (!c.ok()) return c.status();
  MergeMountConfig(*c, args);
  return Status::Ok();
}

}  // namespace ctfs::cmd
