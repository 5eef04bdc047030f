// SPDX-License-Identifier: Apache-2.0
// Constant-time byte comparison over CRYPTO_memcmp: the only way crypto/ and keys/ compare
// secret-dependent bytes (style rule 13). The lengths themselves are not secret.
#include "crypto/constant_time.h"

#include <openssl/crypto.h>

namespace ctfs::crypto {

bool ConstantTimeEquals(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace ctfs::crypto
