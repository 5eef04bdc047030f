// SPDX-License-Identifier: Apache-2.0
// KeyResolver: finds the master (enc) key and the signature key named by a file's
// __crypto_keys__ descriptors, from the sources a user configured, in this order
// (after the reference registry, cryptotensors-format.md §4.2-4.3):
//   1. explicit key files (`--key FILE`, a JWK or JWK Set each), like the reference's
//      DirectKeyProvider: the key of the right kty whose kid equals the descriptor's kid; if
//      the descriptor has no kid, the first key of that kty;
//   2. the descriptor's `jku`, if it is a file:// URL (file:///abs, file://~/x; relative paths
//      resolve to nothing, as in the reference); the file is re-read on each lookup;
//   3. the CRYPTOTENSOR_KEYS environment variable (a JWK or JWK Set), same matching as 1.
// A source that fails to load (unreadable file, bad JSON) is an error, not silently skipped,
// when the user named it explicitly (--key); for jku and env the error is kept and reported
// only if no later source has the key ("no key with kid X: jku file://..: <reason>").
// Key files that are group/world-writable, or owned by anyone but the caller or root, are
// refused.
// Thread safety: immutable after construction; all methods are thread-safe.
#ifndef CTFS_KEYS_KEY_RESOLVER_H_
#define CTFS_KEYS_KEY_RESOLVER_H_

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "format/jwk.h"

namespace ctfs::keys {

struct KeySourceOptions {
  std::vector<std::string> key_files;  // --key FILE, in order
  bool use_env = true;                 // read CRYPTOTENSOR_KEYS
  bool use_jku = true;                 // follow file:// jku of the descriptor
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

 private:
  KeyResolver() = default;
  std::vector<format::Jwk> explicit_keys_;
  std::vector<format::Jwk> env_keys_;
  std::string env_error_;  // why CRYPTOTENSOR_KEYS failed to parse, if it did
  bool use_jku_ = true;
};

// LoadJwkFile reads and parses a JWK / JWK Set file, refusing unsafe permissions (see above).
Result<std::vector<format::Jwk>> LoadJwkFile(const std::string& path);

// FileUrlToPath maps a jku to a local path: "file:///abs" -> "/abs", "file://~/x" ->
// "$HOME/x"; scheme case-insensitive. nullopt for non-file URLs and relative paths.
std::optional<std::string> FileUrlToPath(const std::string& jku);

}  // namespace ctfs::keys

#endif  // CTFS_KEYS_KEY_RESOLVER_H_
