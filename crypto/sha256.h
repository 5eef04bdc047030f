// SPDX-License-Identifier: Apache-2.0
// SHA-256, for integrity reports (`ctfs verify` prints digests) and tests.
#ifndef CTFS_CRYPTO_SHA256_H_
#define CTFS_CRYPTO_SHA256_H_

#include <string>

#include "base/bytes.h"

namespace ctfs::crypto {

// Sha256Hex returns the lowercase hex SHA-256 of `data`.
std::string Sha256Hex(ByteSpan data);

}  // namespace ctfs::crypto

#endif  // CTFS_CRYPTO_SHA256_H_
