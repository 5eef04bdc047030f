// SPDX-License-Identifier: Apache-2.0
// The CryptoTensors JWK dialect (cryptotensors-format.md §4.1): kty "oct" (k) or "okp" (x, d),
// alg required, kid/jku optional, standard padded base64, no crv. A document is a single JWK
// or a JWK Set {"keys":[...]}.
#ifndef CTFS_FORMAT_JWK_H_
#define CTFS_FORMAT_JWK_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "base/secret_bytes.h"
#include "base/token_key.h"

namespace ctfs::format {

struct Jwk {
  std::string kty;  // "oct" or "okp"
  std::string alg;
  std::optional<std::string> kid;
  std::optional<std::string> jku;
  SecretBytes k;  // oct: master key, length = AeadKeyLen(alg); empty for a token key
  // oct only: a master key held in a token (PKCS#11); set instead of k. Never serialized.
  std::shared_ptr<const TokenKey> token;
  SecretBytes d;  // okp: 32-byte private seed (optional)
  Bytes x;        // okp: 32-byte public key (optional if d is present; derive it then)

  Jwk Clone() const;
};

// ParseJwkDocument parses a single JWK or a JWK Set. Checks: kty is "oct"/"okp"; alg present and
// valid for the kty (ParseAeadAlg for oct, IsEd25519AlgName for okp); oct needs k of the right
// length; okp needs x or d, each 32 bytes. Unknown members are ignored (JWK allows extras).
// Errors are InvalidArgument naming the key's kid/index, never key bytes. `json` is read in
// place; every copy of it the parser makes lives in the SecretArena and is wiped when freed.
Result<std::vector<Jwk>> ParseJwkDocument(std::string_view json);

// A key document with its optional top-level "exp" (a Unix time in seconds, as printed by
// key helpers that lease keys; for a single JWK, its own "exp" member).
struct JwkDocument {
  std::vector<Jwk> keys;
  std::optional<int64_t> exp_unix;
};

// ParseJwkDocumentWithExp is ParseJwkDocument that also reads "exp" (a non-negative integer;
// anything else is InvalidArgument).
Result<JwkDocument> ParseJwkDocumentWithExp(std::string_view json);

// SerializeJwkSet writes {"keys":[...]} with members kty, alg, kid, (jku), k | x, d. If
// `include_private` is false, k is still written (symmetric) but d is omitted. Token keys
// (Jwk::token) have no bytes to write: callers must not pass them (CHECKed).
// The returned string holds secrets (for tests and tools; it is allocated once, at its final
// size): wipe it (WipeMemory) after use.
std::string SerializeJwkSet(const std::vector<const Jwk*>& keys, bool include_private);
// SerializeJwkSetSecret is SerializeJwkSet into a SecretBytes (the only copy there is): what
// writers of key files use.
SecretBytes SerializeJwkSetSecret(const std::vector<const Jwk*>& keys, bool include_private);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_JWK_H_
