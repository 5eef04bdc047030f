// SPDX-License-Identifier: Apache-2.0
// Fuzzes format/jwk (a JWK or JWK Set document). Oracles, for an accepted document:
//   * every key satisfies the documented checks (kty, alg for the kty, key lengths);
//   * SerializeJwkSet(include_private) of the keys parses back to the same keys;
//   * Jwk::Clone copies every member.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "base/secret_bytes.h"
#include "format/jwk.h"
#include "tests/fuzz/fuzz_util.h"

namespace ctfs::fuzz {
namespace {

bool SameSecret(const SecretBytes& a, const SecretBytes& b) {
  return a.size() == b.size() && std::equal(a.span().begin(), a.span().end(), b.span().begin());
}

bool SameKey(const format::Jwk& a, const format::Jwk& b) {
  return a.kty == b.kty && a.alg == b.alg && a.kid == b.kid && a.jku == b.jku &&
         SameSecret(a.k, b.k) && SameSecret(a.d, b.d) && a.x == b.x;
}

void CheckKey(const format::Jwk& k) {
  if (k.kty == "oct") {
    auto alg = ParseAeadAlg(k.alg);
    FUZZ_CHECK(alg.ok(), "oct key with alg " + k.alg);
    FUZZ_CHECK(k.k.size() == AeadKeyLen(*alg), "oct key of the wrong length");
    FUZZ_CHECK(k.d.empty() && k.x.empty(), "oct key with okp members");
  } else {
    FUZZ_CHECK(k.kty == "okp", "kty " + k.kty);
    FUZZ_CHECK(IsEd25519AlgName(k.alg), "okp key with alg " + k.alg);
    FUZZ_CHECK(k.k.empty(), "okp key with k");
    FUZZ_CHECK(!k.d.empty() || !k.x.empty(), "okp key without x or d");
    FUZZ_CHECK(k.d.empty() || k.d.size() == 32, "d length");
    FUZZ_CHECK(k.x.empty() || k.x.size() == 32, "x length");
  }
}

void FuzzJwk(ByteSpan input) {
  auto keys = format::ParseJwkDocument(AsStringView(input));
  if (!keys.ok()) {
    FUZZ_CHECK(!keys.status().message().empty(), "empty error message");
    return;
  }
  std::vector<const format::Jwk*> ptrs;
  for (const format::Jwk& k : *keys) {
    CheckKey(k);
    FUZZ_CHECK(SameKey(k.Clone(), k), "Clone differs");
    ptrs.push_back(&k);
  }
  std::string text = format::SerializeJwkSet(ptrs, /*include_private=*/true);
  auto again = format::ParseJwkDocument(text);
  WipeMemory(text.data(), text.size());
  FUZZ_CHECK(again.ok(), "serialized set rejected: " + again.status().ToString());
  FUZZ_CHECK(again->size() == keys->size(), "serialized set has another key count");
  for (size_t i = 0; i < keys->size(); ++i) {
    FUZZ_CHECK(SameKey((*again)[i], (*keys)[i]), "key " + std::to_string(i) + " changed");
  }
}

}  // namespace
}  // namespace ctfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctfs::fuzz::FuzzJwk(ctfs::ByteSpan(data, size));
  return 0;
}
