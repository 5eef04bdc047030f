// SPDX-License-Identifier: Apache-2.0
// Ed25519 (RFC 8032, pure: no prehash, no context) over OpenSSL EVP_PKEY_ED25519.
// Thread safety: thread-safe.
#ifndef CTFS_CRYPTO_SIGNATURE_H_
#define CTFS_CRYPTO_SIGNATURE_H_

#include <array>
#include <cstdint>

#include "base/bytes.h"
#include "base/result.h"
#include "base/secret_bytes.h"

namespace ctfs::crypto {

inline constexpr size_t kEd25519PublicKeyLen = 32;
inline constexpr size_t kEd25519SeedLen = 32;
inline constexpr size_t kEd25519SignatureLen = 64;

using Ed25519PublicKey = std::array<uint8_t, kEd25519PublicKeyLen>;
using Ed25519Signature = std::array<uint8_t, kEd25519SignatureLen>;

// Ed25519Verify returns OK if `signature` is a valid signature of `message` under
// `public_key`; DataLoss("signature verification failed") if not; InvalidArgument if a length
// is wrong (public key 32, signature 64).
Status Ed25519Verify(ByteSpan public_key, ByteSpan message, ByteSpan signature);

// Ed25519Sign signs `message` with the 32-byte private seed.
Result<Ed25519Signature> Ed25519Sign(const SecretBytes& seed, ByteSpan message);

// Ed25519PublicKeyFromSeed derives the public key of a 32-byte private seed.
Result<Ed25519PublicKey> Ed25519PublicKeyFromSeed(const SecretBytes& seed);

}  // namespace ctfs::crypto

#endif  // CTFS_CRYPTO_SIGNATURE_H_
