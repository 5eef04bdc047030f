// SPDX-License-Identifier: Apache-2.0
// Passphrase-based sealing of small secrets (key files, README "Passphrase-protected key
// files"): scrypt (RFC 7914) derives a 32-byte key from the passphrase and a random salt, and
// AES-256-GCM (12-byte nonce, 16-byte tag, caller-chosen AAD) seals the secret under it.
// The envelope that carries the parameters is format/encrypted_jwks.h; this file only does the
// arithmetic.
// Thread safety: all functions are thread-safe.
#ifndef CTFS_CRYPTO_PASSPHRASE_SEAL_H_
#define CTFS_CRYPTO_PASSPHRASE_SEAL_H_

#include <cstdint>

#include "base/bytes.h"
#include "base/result.h"
#include "base/secret_bytes.h"

namespace ctfs::crypto {

// scrypt cost parameters. Memory use is about 128 * r * n bytes.
struct ScryptParams {
  uint64_t n = uint64_t{1} << 15;  // CPU/memory cost, a power of two
  uint32_t r = 8;                  // block size
  uint32_t p = 1;                  // parallelism
};

// The defaults written by `ctfs keygen --passphrase-file`: n = 2^15, r = 8, p = 1, i.e. 32 MiB
// of memory and roughly 0.1 s of one core per derivation.
inline constexpr ScryptParams kDefaultScryptParams{};
// The most memory a derivation may use (parameters read from a file are hostile input):
// 256 MiB, i.e. n up to 2^18 at r = 8.
inline constexpr uint64_t kScryptMaxMemBytes = uint64_t{256} << 20;
inline constexpr size_t kPassphraseKeyLen = 32;   // AES-256
inline constexpr size_t kPassphraseSaltLen = 16;  // written by keygen; 16..64 accepted
inline constexpr size_t kPassphraseNonceLen = 12;
inline constexpr size_t kPassphraseTagLen = 16;

// CheckScryptParams: n a power of two in [2^10, 2^20], r in [1, 32], p in [1, 16], and
// 128 * r * n within kScryptMaxMemBytes. InvalidArgument naming the bad parameter.
Status CheckScryptParams(const ScryptParams& params);

// ScryptDerive derives a kPassphraseKeyLen-byte key. The salt must be 16..64 bytes.
Result<SecretBytes> ScryptDerive(ByteSpan passphrase, ByteSpan salt, const ScryptParams& params);

// PassphraseSeal encrypts `plaintext` with AES-256-GCM under `key` (kPassphraseKeyLen bytes)
// and `nonce` (12 bytes), authenticating `aad` too. Returns ciphertext || 16-byte tag.
Result<Bytes> PassphraseSeal(const SecretBytes& key, ByteSpan nonce, ByteSpan aad,
                             ByteSpan plaintext);

// PassphraseOpen reverses PassphraseSeal. DataLoss("authentication failed") when the tag does
// not verify (wrong passphrase, or a damaged/tampered envelope); no plaintext is returned then.
Result<SecretBytes> PassphraseOpen(const SecretBytes& key, ByteSpan nonce, ByteSpan aad,
                                   ByteSpan sealed);

}  // namespace ctfs::crypto

#endif  // CTFS_CRYPTO_PASSPHRASE_SEAL_H_
