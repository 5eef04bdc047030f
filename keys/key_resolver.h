// SPDX-License-Identifier: Apache-2.0
// KeyResolver: finds the master (enc) key and the signature key named by a file's
// __crypto_keys__ descriptors, from the sources a user configured, in this order
// (after the reference registry, cryptotensors-format.md §4.2-4.3):
//   1. explicit key providers (keys/key_provider.h: `--key FILE`, then the config's `keys:`
//      entries: files, passphrase-protected files, systemd credentials, exec helpers), like the
//      reference's DirectKeyProvider: the key of the right kty whose kid equals the descriptor's
//      kid; if the descriptor has no kid, the first key of that kty;
//   2. the descriptor's `jku`, if it is a file:// URL (file:///abs, file://~/x; relative paths
//      resolve to nothing, as in the reference); the file is re-read on each lookup;
//   3. the CRYPTOTENSOR_KEYS environment variable (a JWK or JWK Set), same matching as 1.
// A source that fails to load (unreadable file, bad JSON) is an error, not silently skipped,
// when the user named it explicitly (--key); for jku and env the error is kept and reported
// only if no later source has the key ("no key with kid X: jku file://..: <reason>").
// A provider that fails at Create is an error naming it (e.g. "credential \"x\": ...").
// Key files that are group/world-writable, or owned by anyone but the caller or root, are
// refused.
// Thread safety: immutable after construction; all methods are thread-safe.
#ifndef CTFS_KEYS_KEY_RESOLVER_H_
#define CTFS_KEYS_KEY_RESOLVER_H_

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/secret_bytes.h"
#include "format/jwk.h"
#include "keys/key_provider.h"

namespace ctfs::keys {

struct KeySourceOptions {
  // A constructor rather than an aggregate: callers write {files, use_env, use_jku} and the
  // later members keep their defaults without -Wmissing-field-initializers.
  KeySourceOptions(std::vector<std::string> key_files_in = {}, bool use_env_in = true,
                   bool use_jku_in = true, std::string passphrase_file_in = {},
                   std::vector<KeySourceSpec> sources_in = {})
      : key_files(std::move(key_files_in)),
        use_env(use_env_in),
        use_jku(use_jku_in),
        passphrase_file(std::move(passphrase_file_in)),
        sources(std::move(sources_in)) {}

  std::vector<std::string> key_files;  // --key FILE, in order
  bool use_env = true;                 // read CRYPTOTENSOR_KEYS
  bool use_jku = true;                 // follow file:// jku of the descriptor
  // --passphrase-file: opens those key_files that are passphrase-protected (plain ones ignore
  // it). Empty: such a file is an error, or a prompt when stdin is a terminal.
  std::string passphrase_file;
  // Further providers (config `keys:` entries: credential, exec, file with passphrase_file),
  // searched after key_files, in order, as part of source 1.
  std::vector<KeySourceSpec> sources;
};

class KeyResolver {
 public:
  // Create loads and validates the explicit key files now (so a bad --key fails early), and
  // snapshots CRYPTOTENSOR_KEYS.
  static Result<KeyResolver> Create(const KeySourceOptions& options);

  // FindKey returns a copy of the matching key of type `kty` ("oct" or "okp") for a descriptor
  // with this kid/jku. NotFound names the kid and the places searched.
  Result<format::Jwk> FindKey(const std::string& kty, const std::optional<std::string>& kid,
                              const std::optional<std::string>& jku) const;

  // Keys loaded from --key files (for the writer, which signs with the first okp key that has
  // a private part and encrypts with the first oct key).
  const std::vector<format::Jwk>& explicit_keys() const { return explicit_keys_; }

  // The providers asked at Create, with the expiry each reported (for `ctfs status`, leases).
  // `source_index`: the KeySourceOptions::sources entry it came from (-1: a key_files entry).
  // `kids`: the kids of its keys, in order; `key_digest`: KeyDigest of its keys (a key lease
  // compares a refresh against it).
  struct ProviderInfo {
    std::string description;
    std::optional<int64_t> exp_unix;
    int source_index = -1;
    std::vector<std::string> kids;
    std::string key_digest;
  };
  const std::vector<ProviderInfo>& providers() const { return providers_; }

 private:
  KeyResolver() = default;
  std::vector<format::Jwk> explicit_keys_;
  std::vector<ProviderInfo> providers_;
  std::vector<format::Jwk> env_keys_;
  std::string env_error_;  // why CRYPTOTENSOR_KEYS failed to parse, if it did
  bool use_jku_ = true;
  bool only_key_files_ = true;  // no config sources: messages say "--key files"
};

// WipeKeysFromEnvironment zeroes the value of CRYPTOTENSOR_KEYS in this process's environment,
// in place (the variable stays, empty). For the mount daemon, once its KeyResolver is created
// (Create parses the value then): the value is key text, which would otherwise stay in the
// daemon's memory and /proc/PID/environ for its whole life. Not thread-safe against getenv.
void WipeKeysFromEnvironment();

// KeyDigest: the hex SHA-256 of `keys` (kty, kid and key bytes of each, in order), computed in
// wiped memory: it identifies a key set without keeping it (a lease refresh must yield the
// same keys). Compare digests with crypto::ConstantTimeEquals.
std::string KeyDigest(const std::vector<format::Jwk>& keys);

// LoadJwkFile reads and parses a JWK / JWK Set file, refusing unsafe permissions (see above).
// A passphrase-protected file is FailedPrecondition saying how to give the passphrase.
Result<std::vector<format::Jwk>> LoadJwkFile(const std::string& path);

// CheckSecretFileStat: the permission checks of key files, for any file holding a secret
// (`kind` names it in messages: "key file", "passphrase file", "credential"): a regular
// file, not group/world-writable, owned by the caller or root.
Status CheckSecretFileStat(const struct stat& st, std::string_view kind, const std::string& path);

// ReadSecretFile opens `path` (never blocking on a FIFO), applies CheckSecretFileStat and the
// 1 MiB size limit, and reads it into SecretBytes.
Result<SecretBytes> ReadSecretFile(const std::string& path, std::string_view kind);

// ParseKeyText parses a JWK document held in `text` (okp keys completed with x);
// ParseKeyDocument also reads its "exp".
Result<std::vector<format::Jwk>> ParseKeyText(const SecretBytes& text);
Result<format::JwkDocument> ParseKeyDocument(const SecretBytes& text);

// FileUrlToPath maps a jku to a local path: "file:///abs" -> "/abs", "file://~/x" ->
// "$HOME/x"; scheme case-insensitive. nullopt for non-file URLs and relative paths.
std::optional<std::string> FileUrlToPath(const std::string& jku);

}  // namespace ctfs::keys

#endif  // CTFS_KEYS_KEY_RESOLVER_H_
