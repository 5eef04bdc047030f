// SPDX-License-Identifier: Apache-2.0
// Constant-time comparison for anything secret-dependent (tags, keys).
#ifndef CTFS_CRYPTO_CONSTANT_TIME_H_
#define CTFS_CRYPTO_CONSTANT_TIME_H_

#include "base/bytes.h"

namespace ctfs::crypto {

// ConstantTimeEquals: true iff a and b have equal length and equal bytes. The time taken
// depends only on the lengths (CRYPTO_memcmp).
bool ConstantTimeEquals(ByteSpan a, ByteSpan b);

}  // namespace ctfs::crypto

#endif  // CTFS_CRYPTO_CONSTANT_TIME_H_
