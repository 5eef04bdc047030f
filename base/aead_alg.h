// SPDX-License-Identifier: Apache-2.0
// The AEAD algorithms of the CryptoTensors format, as vocabulary shared by format/ (which
// parses names) and crypto/ (which runs them). All use a 12-byte nonce, a 16-byte tag and no
// AAD (cryptotensors-format.md §2.1).
#ifndef CTFS_BASE_AEAD_ALG_H_
#define CTFS_BASE_AEAD_ALG_H_

#include <cstddef>
#include <string_view>

#include "base/result.h"

namespace ctfs {

enum class AeadAlg { kAes128Gcm, kAes256Gcm, kChaCha20Poly1305 };

inline constexpr size_t kAeadNonceLen = 12;
inline constexpr size_t kAeadTagLen = 16;

// AeadKeyLen returns 16 for AES-128-GCM and 32 for the others.
size_t AeadKeyLen(AeadAlg alg);

// AeadAlgName returns the canonical name the reference writes: "aes128gcm", "aes256gcm",
// "chacha20poly1305".
std::string_view AeadAlgName(AeadAlg alg);

// ParseAeadAlg parses like the reference: remove every '-', lowercase, match exactly.
// "AES-256-GCM" works; JOSE names such as "A256GCM" do not (InvalidArgument).
Result<AeadAlg> ParseAeadAlg(std::string_view name);

// IsEd25519AlgName: the reference compares the upper-cased alg with "ED25519".
bool IsEd25519AlgName(std::string_view name);

}  // namespace ctfs

#endif  // CTFS_BASE_AEAD_ALG_H_
