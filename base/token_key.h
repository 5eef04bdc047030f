// SPDX-License-Identifier: Apache-2.0
// TokenKey: a master key that stays inside a cryptographic token (a PKCS#11 HSM:
// keys/pkcs11_token.h). This process never holds its bytes; it asks the token to wrap and
// unwrap data keys the CryptoTensors way (cryptotensors-format.md §2.2: the AEAD of the file,
// a 12-byte nonce, no AAD, a 16-byte tag).
// Thread safety: implementations are thread-safe.
#ifndef CTFS_BASE_TOKEN_KEY_H_
#define CTFS_BASE_TOKEN_KEY_H_

#include <string>

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "base/status.h"

namespace ctfs {

class TokenKey {
 public:
  virtual ~TokenKey() = default;
  // Describe names the key in messages (never key bytes): `PKCS#11 key "kek" in token "ctfs"`.
  virtual std::string Describe() const = 0;
  // alg: the AEAD the token applies with this key.
  virtual AeadAlg alg() const = 0;
  // Unwrap: `dek` = AEAD-Decrypt(key, iv, wrapped || tag). DataLoss if the tag does not verify
  // (wrong key or tampered input; `dek` is wiped then); Unavailable if the token fails.
  virtual Status Unwrap(ByteSpan iv, ByteSpan wrapped, ByteSpan tag, MutableByteSpan dek) const = 0;
  // Wrap: `wrapped` || `tag` = AEAD-Encrypt(key, iv, dek); `wrapped` is dek.size() bytes.
  virtual Status Wrap(ByteSpan iv, ByteSpan dek, MutableByteSpan wrapped,
                      MutableByteSpan tag) const = 0;
};

}  // namespace ctfs

#endif  // CTFS_BASE_TOKEN_KEY_H_
