// SPDX-License-Identifier: Apache-2.0
// The frozen fixtures' keys for tests (tests/testdata/encrypted/keys.jwk), and re-signing a
// (changed) CryptoTensors header with their signing key, so that a test reaches the checks
// behind the signature: key unwrap, policy, chunk tags.
#ifndef CTFS_TESTS_UNIT_FS_RESIGN_UTIL_H_
#define CTFS_TESTS_UNIT_FS_RESIGN_UTIL_H_

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/signature.h"
#include "format/base64.h"
#include "format/crypt_metadata.h"
#include "format/jwk.h"
#include "format/safetensors_header.h"
#include "format/signing_message.h"
#include "keys/key_resolver.h"
#include "tests/testing/temp_dir.h"

namespace ctfs::fs {

// FixtureKeys: keys.jwk of `fixtures_dir` copied into a test's temp dir (mode 0600, as the
// resolver requires of key files), a resolver over it, and its keys.
struct FixtureKeys {
  std::string file;
  std::optional<keys::KeyResolver> resolver;
  std::vector<format::Jwk> jwks;
};
inline void LoadFixtureKeys(const std::string& fixtures_dir, const testing::TempDir& dir,
                            FixtureKeys* out) {
  out->file = dir.File("keys.jwk");
  testing::WriteFile(out->file, testing::ReadFile(fixtures_dir + "keys.jwk"));
  ASSERT_EQ(::chmod(out->file.c_str(), 0600), 0);
  auto r = keys::KeyResolver::Create({{out->file}, false, false});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  out->resolver.emplace(std::move(*r));
  auto jwks = format::ParseJwkDocument(testing::ReadFile(out->file));
  ASSERT_TRUE(jwks.ok()) << jwks.status().ToString();
  out->jwks = std::move(*jwks);
}

// FindSigner returns the first Ed25519 key with a private part in `keys`, or nullptr.
inline const format::Jwk* FindSigner(const std::vector<format::Jwk>& keys) {
  for (const auto& k : keys) {
    if (k.kty == "okp" && !k.d.empty()) return &k;
  }
  return nullptr;
}

// ResignedFile returns the bytes of a file made of `header` (its __signature__ replaced by one
// made with `signer` over the canonical message) followed by `data`.
inline Result<std::string> ResignedFile(format::SafetensorsHeader header, const format::Jwk& signer,
                                        std::string_view data) {
  std::erase_if(header.metadata, [](const auto& m) { return m.key == format::kSignatureKey; });
  auto sig = crypto::Ed25519Sign(signer.d, AsBytes(format::BuildSigningMessage(header)));
  if (!sig.ok()) return sig.status();
  header.metadata.push_back({format::kSignatureKey, format::Base64Encode(*sig)});
  Bytes prefix = format::BuildHeaderPrefix(format::SerializeHeaderJson(header));
  std::string bytes(prefix.begin(), prefix.end());
  bytes += data;
  return bytes;
}

}  // namespace ctfs::fs

#endif  // CTFS_TESTS_UNIT_FS_RESIGN_UTIL_H_
