// SPDX-License-Identifier: Apache-2.0
// Internals of crypto/aead.cc exposed for tests only: the seal/open core with an explicit
// piece length, so the multi-piece path (inputs over INT_MAX bytes are fed to EVP in pieces)
// can be exercised on small buffers. Production code calls AeadSeal/AeadOpen (aead.h).
#ifndef CTFS_CRYPTO_AEAD_INTERNAL_H_
#define CTFS_CRYPTO_AEAD_INTERNAL_H_

#include <cstddef>

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "base/status.h"

namespace ctfs::crypto::internal {

// kAeadMaxPieceLen: the most bytes AeadSeal/AeadOpen hand to one EVP_CipherUpdate call
// (which takes an int length). 256 MiB: well under INT_MAX and a multiple of every block
// size, so piecing never changes the output.
inline constexpr size_t kAeadMaxPieceLen = size_t{1} << 28;

// AeadSealInPieces is AeadSeal feeding EVP at most `piece_len` bytes per update.
// REQUIRES: 0 < piece_len <= kAeadMaxPieceLen (a bug otherwise: aborts).
Status AeadSealInPieces(AeadAlg alg, ByteSpan key, ByteSpan nonce, ByteSpan plaintext,
                        MutableByteSpan ciphertext_out, MutableByteSpan tag_out, size_t piece_len);

// AeadOpenInPieces is AeadOpen feeding EVP at most `piece_len` bytes per update.
// REQUIRES: 0 < piece_len <= kAeadMaxPieceLen (a bug otherwise: aborts).
Status AeadOpenInPieces(AeadAlg alg, ByteSpan key, ByteSpan nonce, ByteSpan ciphertext,
                        ByteSpan tag, MutableByteSpan plaintext_out, size_t piece_len);

}  // namespace ctfs::crypto::internal

#endif  // CTFS_CRYPTO_AEAD_INTERNAL_H_
