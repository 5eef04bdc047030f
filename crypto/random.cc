// SPDX-License-Identifier: Apache-2.0
// CSPRNG over OpenSSL RAND_bytes (the default DRBG, seeded from the OS). RAND_bytes takes an
// int length, so large requests are filled in pieces.
#include "crypto/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <string>
#include <utility>

#include "crypto/openssl_error.h"

namespace ctfs::crypto {
namespace {

// The most bytes requested from RAND_bytes per call.
constexpr size_t kMaxRandPieceLen = size_t{1} << 28;
static_assert(kMaxRandPieceLen <= INT_MAX);

}  // namespace

Status RandomBytes(MutableByteSpan out) {
  for (size_t done = 0; done < out.size();) {
    const size_t n = std::min(kMaxRandPieceLen, out.size() - done);
    if (RAND_bytes(out.data() + done, static_cast<int>(n)) != 1) {
      return OpenSslError("random: RAND_bytes(" + std::to_string(n) + ")");
    }
    done += n;
  }
  return Status::Ok();
}

Result<SecretBytes> RandomSecret(size_t len) {
  SecretBytes secret(len);
  CTFS_RETURN_IF_ERROR(RandomBytes(secret.mutable_span()));
  return secret;
}

}  // namespace ctfs::crypto
