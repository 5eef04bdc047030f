// SPDX-License-Identifier: Apache-2.0
// The frozen fixtures' keys for tests (tests/testdata/encrypted/keys.jwk), and re-signing a
// (changed) CryptoTensors header with their signing key (tests/testing/resign.h), so that a
// test reaches the checks behind the signature: key unwrap, policy, chunk tags.
#ifndef CTFS_TESTS_UNIT_FS_RESIGN_UTIL_H_
#define CTFS_TESTS_UNIT_FS_RESIGN_UTIL_H_

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <optional>
#include <string>
#include <vector>

#include "format/jwk.h"
#include "keys/key_resolver.h"
#include "tests/testing/resign.h"
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

using ctfs::testing::FindSigner;
using ctfs::testing::ResignedFile;

}  // namespace ctfs::fs

#endif  // CTFS_TESTS_UNIT_FS_RESIGN_UTIL_H_
