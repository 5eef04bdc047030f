// SPDX-License-Identifier: Apache-2.0
// KeyProvider: one place master and verification keys come from (README "Key providers").
// KeyResolver (keys/key_resolver.h) asks each configured provider once, at creation, and
// searches the keys they yield in order. Kinds:
//   - file:        a JWK / JWK Set file; if it is a passphrase-protected envelope
//                  (format/encrypted_jwks.h), it is opened with the passphrase from
//                  `passphrase_file` (or a prompt when stdin is a terminal);
//   - credential:  a systemd credential, `$CREDENTIALS_DIRECTORY/NAME` (LoadCredential=,
//                  LoadCredentialEncrypted=), holding a JWK / JWK Set;
//   - exec:        a helper command (no shell) that prints a JWK / JWK Set on stdout,
//                  optionally with "exp" (a Unix time), bounded in time and output
//                  (keys/exec_key_provider.h);
//   - pkcs11:      a master key inside a PKCS#11 token, named by a URI (keys/pkcs11_token.h):
//                  a JWK with no bytes, whose wrapping and unwrapping the token does.
// Every error names the provider (Describe()) and the cause; key ids where known; never key
// bytes. Every secret (file text, passphrase, helper output) is held in SecretBytes.
// Thread safety: providers are immutable; Load() may be called from any thread.
#ifndef CTFS_KEYS_KEY_PROVIDER_H_
#define CTFS_KEYS_KEY_PROVIDER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "format/jwk.h"

namespace ctfs::keys {

// What a provider yields: the keys and, if the provider said so, when they stop being valid
// (a key lease: the mount refreshes it before then, fs/key_lease_keeper.h).
// `withdrawn`: the provider said the keys are withdrawn (an exec helper exiting with
// kExitKeyWithdrawn); `keys` is empty then. A mount refuses to start on it, and a running
// mount loses its leased keys at once (no grace period).
struct ProvidedKeys {
  std::vector<format::Jwk> keys;
  std::optional<int64_t> exp_unix;
  bool withdrawn = false;
};

// The exit status by which an exec helper says "the key is withdrawn" (EX_NOPERM of
// sysexits.h): any other failure is a failed refresh, retried until the grace period ends.
inline constexpr int kExitKeyWithdrawn = 77;

class KeyProvider {
 public:
  virtual ~KeyProvider() = default;
  // Describe names the provider in messages: `key file /etc/ctfs/k.jwk`,
  // `credential "llama.jwk"`, `exec helper /usr/libexec/ctfs-vault-helper`.
  virtual std::string Describe() const = 0;
  // Load fetches the keys now. Errors carry Describe() as context.
  virtual Result<ProvidedKeys> Load() const = 0;
};

// One key source as configured (config `keys:` entry or CLI), before it is turned into a
// provider. Exactly one of file / credential / exec / pkcs11 is set.
struct KeySourceSpec {
  std::string file;               // JWK / JWK Set file or passphrase-protected envelope
  std::string passphrase_file;    // file: the passphrase (one trailing newline is stripped)
  std::string credential;         // systemd credential name (a plain file name)
  std::vector<std::string> exec;  // helper argv; exec[0] an absolute path
  std::string pkcs11;             // PKCS#11 URI of a master key in a token (keys/pkcs11_uri.h)
  double timeout_s = 10;          // exec: wall-clock limit
};

// Called with each line (bounded, control bytes escaped) a helper writes to stderr.
using LogLineFn = std::function<void(std::string_view line)>;

std::unique_ptr<KeyProvider> MakeFileKeyProvider(std::string path, std::string passphrase_file);
std::unique_ptr<KeyProvider> MakeCredentialKeyProvider(std::string name);
// `uri` must parse (ParsePkcs11Uri); Load() opens the key in its token each time.
std::unique_ptr<KeyProvider> MakePkcs11KeyProvider(std::string uri);
// `log_line` defaults to writing "ctfs: exec helper PATH: LINE" to stderr.
std::unique_ptr<KeyProvider> MakeExecKeyProvider(std::vector<std::string> argv, double timeout_s,
                                                 LogLineFn log_line = nullptr);

// MakeKeyProvider checks `spec` (exactly one kind; a plain credential name; exec[0] absolute;
// timeout in (0, 3600]) and makes its provider. InvalidArgument otherwise.
Result<std::unique_ptr<KeyProvider>> MakeKeyProvider(const KeySourceSpec& spec);

// CheckCredentialName: NAME must be a plain file name (not empty, no '/', not "." or "..",
// no NUL). InvalidArgument naming it otherwise.
Status CheckCredentialName(std::string_view name);

}  // namespace ctfs::keys

#endif  // CTFS_KEYS_KEY_PROVIDER_H_
