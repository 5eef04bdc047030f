// SPDX-License-Identifier: Apache-2.0
// The passphrase-protected key file (README "Passphrase-protected key files"): a JWK / JWK Set
// sealed under a passphrase, stored as one JSON object
//   {"ctfs_encrypted_jwks": 1, "kdf": "scrypt", "n": 32768, "r": 8, "p": 1,
//    "salt": B64, "nonce": B64, "ciphertext": B64}
// (standard padded base64). The key is scrypt(passphrase, salt, n, r, p) -> 32 bytes; the
// ciphertext is AES-256-GCM(key, nonce (12 bytes), AAD, the JWK Set text) followed by the
// 16-byte tag; the AAD is EncryptedJwksAad(): every parameter, so none can be changed without
// the tag failing. Unknown members, other versions and other KDFs are refused. This layer only
// parses and writes the envelope; crypto/passphrase_seal.h does the cryptography.
#ifndef CTFS_FORMAT_ENCRYPTED_JWKS_H_
#define CTFS_FORMAT_ENCRYPTED_JWKS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace ctfs::format {

inline constexpr uint64_t kEncryptedJwksVersion = 1;

struct EncryptedJwks {
  uint64_t scrypt_n = 0;
  uint32_t scrypt_r = 0;
  uint32_t scrypt_p = 0;
  Bytes salt;
  Bytes nonce;
  Bytes ciphertext;  // sealed text || 16-byte tag
};

// IsEncryptedJwksText: whether `text` is a JSON object with a "ctfs_encrypted_jwks" member
// (so a key file reader can tell an envelope from a plain JWK document). Reads the text as a
// secret document (it may be a plain key file); false for anything that is not JSON.
bool IsEncryptedJwksText(std::string_view text);

// ParseEncryptedJwks parses and checks an envelope (version 1, kdf "scrypt", integers in
// range, base64 members). Does not check the scrypt cost (crypto::CheckScryptParams does).
Result<EncryptedJwks> ParseEncryptedJwks(std::string_view text);

// SerializeEncryptedJwks writes the envelope as one line of JSON (no newline).
std::string SerializeEncryptedJwks(const EncryptedJwks& env);

// EncryptedJwksAad: the associated data of the AES-GCM seal,
//   "ctfs_encrypted_jwks:1;kdf=scrypt;n=N;r=R;p=P;salt=B64;nonce=B64"
// (decimal integers, standard padded base64).
std::string EncryptedJwksAad(const EncryptedJwks& env);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_ENCRYPTED_JWKS_H_
