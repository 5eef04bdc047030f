// SPDX-License-Identifier: Apache-2.0
// SHA-256 over OpenSSL EVP_Digest, rendered as lowercase hex. The EVP_MD is fetched once per
// process. The API has no error channel: SHA-256 over memory fails only if the library itself
// is broken (no default provider), which is a deployment bug, so that aborts via CTFS_CHECK.
#include "crypto/sha256.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>

#include "base/check.h"

namespace ctfs::crypto {
namespace {

// FetchSha256 returns the process-wide SHA-256 EVP_MD (never freed; thread-safe init).
const EVP_MD* FetchSha256() {
  static const EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  return kSha256;
}

}  // namespace

std::string Sha256Hex(ByteSpan data) {
  const EVP_MD* md = FetchSha256();
  CTFS_CHECK(md != nullptr);
  std::array<uint8_t, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  static const uint8_t kEmpty = 0;
  const uint8_t* bytes = data.empty() ? &kEmpty : data.data();
  CTFS_CHECK(EVP_Digest(bytes, data.size(), digest.data(), &digest_len, md, nullptr) == 1);
  CTFS_CHECK(digest_len == 32);

  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * digest_len);
  for (unsigned int i = 0; i < digest_len; ++i) {
    hex.push_back(kHexDigits[digest[i] >> 4]);
    hex.push_back(kHexDigits[digest[i] & 0x0f]);
  }
  return hex;
}

}  // namespace ctfs::crypto
