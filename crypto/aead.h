// SPDX-License-Identifier: Apache-2.0
// AEAD seal/open for the three CryptoTensors algorithms (12-byte nonce, 16-byte tag kept
// apart from the ciphertext, empty AAD), over OpenSSL EVP.
//
// Contract of AeadOpen: plaintext is released only after the tag verifies. On a bad tag the
// output buffer is wiped and DataLoss is returned; the caller must not have exposed it.
// Thread safety: all functions are thread-safe (no shared mutable state).
#ifndef CTFS_CRYPTO_AEAD_H_
#define CTFS_CRYPTO_AEAD_H_

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "base/status.h"

namespace ctfs::crypto {

// AeadSeal encrypts `plaintext` into `ciphertext_out` (same length; may alias `plaintext`
// exactly) and writes the 16-byte tag into `tag_out`.
// Errors: InvalidArgument for wrong key/nonce/tag/output lengths; Internal for OpenSSL
// failures.
Status AeadSeal(AeadAlg alg, ByteSpan key, ByteSpan nonce, ByteSpan plaintext,
                MutableByteSpan ciphertext_out, MutableByteSpan tag_out);

// AeadOpen authenticates and decrypts `ciphertext` into `plaintext_out` (same length; may
// alias `ciphertext` exactly). Returns DataLoss("authentication failed") if the tag does not
// verify, after wiping `plaintext_out`. InvalidArgument for wrong lengths.
Status AeadOpen(AeadAlg alg, ByteSpan key, ByteSpan nonce, ByteSpan ciphertext, ByteSpan tag,
                MutableByteSpan plaintext_out);

}  // namespace ctfs::crypto

#endif  // CTFS_CRYPTO_AEAD_H_
