// SPDX-License-Identifier: Apache-2.0
// CSPRNG (OpenSSL RAND_bytes). Used by the writer (DEKs, nonces) and keygen only.
#ifndef CTFS_CRYPTO_RANDOM_H_
#define CTFS_CRYPTO_RANDOM_H_

#include "base/bytes.h"
#include "base/result.h"
#include "base/secret_bytes.h"

namespace ctfs::crypto {

// RandomBytes fills `out` with cryptographically secure random bytes; Internal on failure.
Status RandomBytes(MutableByteSpan out);

// RandomSecret returns `len` random bytes as a secret.
Result<SecretBytes> RandomSecret(size_t len);

}  // namespace ctfs::crypto

#endif  // CTFS_CRYPTO_RANDOM_H_
