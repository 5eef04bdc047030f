// SPDX-License-Identifier: Apache-2.0
// The subcommands of `ctfs`. Each has an Add* that registers its CLI11 subcommand and options
// into an argument struct, and a Run* that executes it and returns the exit code.
#ifndef CTFS_CMD_SUBCOMMANDS_H_
#define CTFS_CMD_SUBCOMMANDS_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/mount_config.h"
#include "keys/key_provider.h"

namespace ctfs::cmd {

struct KeygenArgs {
  std::string out;
  std::string reader_out;
  std::string alg = "aes256gcm";
  std::string enc_kid;
  std::string sign_kid;
  bool force = false;
  std::string passphrase_file;  // --passphrase-file: write both files passphrase-protected
  bool ask_passphrase = false;  // --ask-passphrase: prompt for it on the terminal
  std::string pkcs11_uri;       // --pkcs11: create the master key in this token instead
  std::string import_key;       // --import-key: with --pkcs11, its oct key goes into the token
};
CLI::App* AddKeygen(CLI::App& app, KeygenArgs& args);
int RunKeygen(const KeygenArgs& args);

struct EncryptArgs {
  std::string src, dst;
  std::vector<std::string> key_files;
  std::vector<std::string> tensors;
  uint64_t chunk_size = 0;  // 0 = default
  std::string alg;
  std::string format_version = "2";
  std::vector<std::string> lock_globs;      // --lock
  std::vector<std::string> lock_key_files;  // --lock-key
  std::string passphrase_file;              // opens passphrase-protected --key/--lock-key files
  std::vector<std::string> pkcs11_uris;     // --pkcs11: the master key in a token
  bool force = false;
  bool quiet = false;
};
CLI::App* AddEncrypt(CLI::App& app, EncryptArgs& args);
int RunEncrypt(const EncryptArgs& args);

struct DecryptArgs {
  std::string src, dst;
  std::vector<std::string> key_files;
  std::string passphrase_file;  // opens passphrase-protected --key files
  std::vector<std::string> pkcs11_uris;  // --pkcs11: master keys in tokens
  bool force = false;
  bool quiet = false;
};
CLI::App* AddDecrypt(CLI::App& app, DecryptArgs& args);
int RunDecrypt(const DecryptArgs& args);

struct InspectArgs {
  std::string file;
  bool json = false;
};
CLI::App* AddInspect(CLI::App& app, InspectArgs& args);
int RunInspect(const InspectArgs& args);

struct VerifyArgs {
  std::string path;
  std::vector<std::string> key_files;
  std::string passphrase_file;  // opens passphrase-protected --key files
  std::vector<std::string> pkcs11_uris;  // --pkcs11: master keys in tokens
  bool allow_plain = false;
  bool quiet = false;
};
CLI::App* AddVerify(CLI::App& app, VerifyArgs& args);
int RunVerify(const VerifyArgs& args);

struct MountArgs {
  std::string src, mountpoint;
  std::vector<std::string> key_files;
  std::string passphrase_file;  // opens passphrase-protected --key files
  // The config's `keys:` entries (credential, exec, pkcs11, files with passphrase_file),
  // searched after key_files; replaced by --key / --pkcs11 like the file entries.
  std::vector<keys::KeySourceSpec> key_sources;
  std::vector<std::string> pkcs11_uris;  // --pkcs11: searched after key_files
  bool foreground = false;
  size_t cache_mb = 256;
  size_t threads = 16;
  size_t decrypt_threads = 2;
  size_t prefetch_mb = 64;
  size_t prefetch_threads = 4;
  bool direct_io = true;
  size_t read_ahead_kb = 4096;
  bool allow_other = false;
  bool allow_bad_files = false;
  std::string log_file;
  std::string log_level = "info";
  std::string metrics_file;  // empty: none
  size_t metrics_interval_s = 5;
  // Config `key_lease:` (README "Key leases").
  int64_t lease_grace_s = 30;
  bool unmount_on_key_loss = false;  // on_key_loss: unmount (default deny)
  bool quiet = false;
  // --config FILE (cmd/mount_config_merge.h): the file, made absolute (for SIGHUP re-reads),
  // and what only the file can say. Empty / absent without --config.
  std::string config_path;
  std::optional<config::PolicyConfig> policy;  // absent: file modes decide, as without a config
  config::AuditConfig audit;
  config::EmbeddedPolicyMode embedded_policy = config::EmbeddedPolicyMode::kReference;
  // The options given on the command line (long names, "SRC", "MNT"), filled by AddMount's
  // parse callback: they override the file.
  std::set<std::string> given;
};
CLI::App* AddMount(CLI::App& app, MountArgs& args);
int RunMount(const MountArgs& args);

struct CheckConfigArgs {
  std::string file;
};
CLI::App* AddCheckConfig(CLI::App& app, CheckConfigArgs& args);
int RunCheckConfig(const CheckConfigArgs& args);

struct UmountArgs {
  std::string mountpoint;
  bool force = false;
  bool quiet = false;
  double timeout_s = 10;
  bool via_revoke = false;  // `ctfs revoke MNT` was used
};
CLI::App* AddUmount(CLI::App& app, UmountArgs& args);
int RunUmount(const UmountArgs& args);

struct StatusArgs {
  std::string mountpoint;
  bool json = false;
  bool ready = false;  // readiness probe: exit 0 only while the mount serves reads
};
CLI::App* AddStatus(CLI::App& app, StatusArgs& args);
int RunStatus(const StatusArgs& args);

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_SUBCOMMANDS_H_
