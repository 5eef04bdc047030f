// SPDX-License-Identifier: Apache-2.0
// MountConfig: one YAML file describing one mount (README "Configuration file"), parsed into
// plain structs. yaml-cpp is used only in config/. Every `ctfs mount` flag has a key; a key
// left out is std::nullopt / empty here, so the command line can tell "not set" from a value
// and override the file only where a flag was given.
//
// The loader rejects, with "FILE:LINE:COLUMN: message" (InvalidArgument): YAML syntax errors,
// unknown keys (at every level), wrong types, out-of-range numbers, bad globs (base/glob.h),
// bad times (RFC 3339 with a zone, e.g. 2027-06-30T00:00:00Z), unknown user and group names,
// a not_before after its not_after, duplicate rule names, an empty rule list under `policy:`,
// and key files that do not exist or cannot be read. Relative paths (source, mountpoint, key
// files, log and audit files) are resolved against the directory of the config file.
#ifndef CTFS_CONFIG_MOUNT_CONFIG_H_
#define CTFS_CONFIG_MOUNT_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace ctfs::config {

// Where a value was written (1-based; 0 = unknown), for errors found after parsing
// (e.g. a key file that is not a JWK).
struct SourcePos {
  int line = 0;
  int column = 0;
};

// One entry of `keys:` (README "Key providers"): exactly one of
//   {file: PATH}                     a JWK / JWK Set file,
//   {file: PATH, passphrase_file: P} a passphrase-protected key file (keygen --passphrase-file),
//   {credential: NAME}               $CREDENTIALS_DIRECTORY/NAME (systemd credentials),
//   {exec: [/abs/helper, ARG...], timeout_s: N}  a helper printing a JWK / JWK Set.
// Files (key and passphrase) must exist at load; a credential is checked at load only when
// CREDENTIALS_DIRECTORY is set (otherwise the mount reports it); an exec helper must be an
// existing executable file at load (relative paths resolve against the config's directory).
struct KeySourceConfig {
  std::string file;                   // absolute; empty unless a file source
  std::string passphrase_file;        // absolute; only with file
  std::string credential;             // a plain file name
  std::vector<std::string> exec;      // argv; exec[0] absolute
  std::string pkcs11;                 // a PKCS#11 URI (starts with "pkcs11:")
  std::optional<uint64_t> timeout_s;  // exec only: 1..3600 (default 10)
  SourcePos pos;                      // of the entry's first key
};

// Who: every listed field must match (AND); within a list, any entry (OR). An empty list
// matches everyone.
struct SubjectConfig {
  std::vector<uint32_t> uids;             // `uid:` numbers and `user:` names (resolved at load)
  std::vector<uint32_t> gids;             // `gid:` / `group:`; primary or supplementary group
  std::vector<std::string> exe;           // kPath globs on the executable's absolute path
  std::vector<std::string> exe_sha256;    // 64 lowercase hex digits each
  std::vector<std::string> comm;          // kName globs on /proc/PID/comm (a label only)
  std::vector<std::string> cgroup;        // kPath globs; match the cgroup v2 path or an ancestor
  std::vector<std::string> machine_id;    // 32 lowercase hex digits each
};

// What: a file matches if its path matches one of `path` (kPath globs, relative to the mount
// root) and, if `tensor` is not empty, it holds a tensor whose name matches one of `tensor`
// (kName globs).
struct ObjectConfig {
  std::vector<std::string> path;    // empty = every file
  std::vector<std::string> tensor;  // empty = any content
};

struct RuleConfig {
  std::string name;  // unique in the policy
  bool allow = false;
  SubjectConfig subject;
  ObjectConfig object;
  std::optional<int64_t> not_before_unix;  // the rule applies from (inclusive)
  std::optional<int64_t> not_after_unix;   // until (exclusive)
  // hide (deny rules only): the files this rule denies to a caller are also hidden from it
  // (lookup: ENOENT, left out of directory listings).
  bool hide = false;
  SourcePos pos;                           // of the rule's mapping
};

struct PolicyConfig {
  enum class Mode { kEnforce, kPermissive };
  Mode mode = Mode::kEnforce;
  std::vector<RuleConfig> rules;  // first match wins; no match denies
};

struct LogConfig {
  std::optional<std::string> level;  // trace, debug, info, warn, error, critical, off
  std::optional<std::string> file;   // absolute
};

struct MetricsConfig {
  std::optional<std::string> file;  // absolute; Prometheus text format, rewritten atomically
  std::optional<size_t> interval_s;  // how often (1..3600)
};

struct AuditConfig {
  std::optional<std::string> file;  // absolute; JSON lines, append-only, mode 0600
  bool to_stderr = false;           // also write each line to stderr (journal under systemd)
};

// key_lease: what a mount does with keys that a provider leases with an "exp" (README "Key
// leases").
enum class KeyLossMode { kDeny, kUnmount };
struct KeyLeaseConfig {
  std::optional<uint64_t> grace_s;           // 0..86400 (default 30)
  std::optional<KeyLossMode> on_key_loss;  // default deny
};

// What decides a file's embedded `__policy__` (policy/embedded_policy.h).
enum class EmbeddedPolicyMode { kReference, kOperator };

struct MountConfig {
  std::string path;  // the config file, as given (for messages and reload)
  std::optional<std::string> source;
  std::optional<std::string> mountpoint;
  std::vector<KeySourceConfig> keys;
  std::optional<bool> foreground;
  std::optional<bool> quiet;
  std::optional<size_t> cache_mb;
  std::optional<size_t> threads;
  std::optional<size_t> decrypt_threads;
  std::optional<size_t> prefetch_mb;
  std::optional<size_t> prefetch_threads;
  std::optional<size_t> read_ahead_kb;
  std::optional<bool> direct_io;
  std::optional<bool> allow_other;
  std::optional<bool> allow_bad_files;
  LogConfig log;
  MetricsConfig metrics;
  AuditConfig audit;
  KeyLeaseConfig key_lease;
  std::optional<EmbeddedPolicyMode> embedded_policy;
  std::optional<PolicyConfig> policy;  // absent: no policy (the mount behaves as without one)
};

// LoadMountConfig reads and parses the file at `path`.
Result<MountConfig> LoadMountConfig(const std::string& path);

// ParseMountConfig parses `yaml`; `path` names the file in errors and anchors relative paths.
Result<MountConfig> ParseMountConfig(std::string_view yaml, const std::string& path);

}  // namespace ctfs::config

#endif  // CTFS_CONFIG_MOUNT_CONFIG_H_
