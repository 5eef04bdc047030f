// SPDX-License-Identifier: Apache-2.0
// Wrapping and unwrapping data keys under a master key (cryptotensors-format.md §2.2), wherever
// the master key lives: its bytes in the JWK (k), or inside a token (Jwk::token, PKCS#11),
// which does the AEAD itself so the master key never enters this process.
#ifndef CTFS_KEYS_MASTER_KEY_H_
#define CTFS_KEYS_MASTER_KEY_H_

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "base/status.h"
#include "format/jwk.h"

namespace ctfs::keys {

// IsMasterKey: an oct JWK with its bytes or a token behind it.
bool IsMasterKey(const format::Jwk& key);

// UnwrapDataKey: `dek` = AEAD-Decrypt(master, iv, wrapped || tag) with `alg`. DataLoss if the
// tag does not verify (`dek` wiped); FailedPrecondition if a token key does not do `alg`.
Status UnwrapDataKey(const format::Jwk& master, AeadAlg alg, ByteSpan iv, ByteSpan wrapped,
                     ByteSpan tag, MutableByteSpan dek);

// WrapDataKey: `wrapped` || `tag` = AEAD-Encrypt(master, iv, dek) with `alg`.
Status WrapDataKey(const format::Jwk& master, AeadAlg alg, ByteSpan iv, ByteSpan dek,
                   MutableByteSpan wrapped, MutableByteSpan tag);

}  // namespace ctfs::keys

#endif  // CTFS_KEYS_MASTER_KEY_H_
