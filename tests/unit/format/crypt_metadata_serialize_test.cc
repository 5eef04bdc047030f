// SPDX-License-Identifier: Apache-2.0
// ChunkNonce vectors and the writer-side text of the reserved keys (split from
// crypt_metadata_test.cc, which covers parsing and validation).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "format/base64.h"
#include "format/crypt_metadata.h"
#include "format/limits.h"
#include "tests/unit/format/crypt_metadata_test_util.h"

namespace ctfs::format {
namespace {

using namespace testutil;  // NOLINT: test helpers

// Vectors of the reference's derive_chunk_iv tests (cryptotensors-format.md §2.4).
TEST(ChunkNonceTest, ReferenceVectors) {
  const Bytes base = {0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0};
  Result<std::array<uint8_t, 12>> n = ChunkNonce(base, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(Bytes(n->begin(), n->end()), base);
  n = ChunkNonce(base, 1);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(Bytes(n->begin(), n->end()), (Bytes{0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 1}));
  n = ChunkNonce(base, 256);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(Bytes(n->begin(), n->end()), (Bytes{0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 1, 0}));
}

TEST(ChunkNonceTest, CounterIsBigEndianWithCarry) {
  const Bytes base = {9, 9, 9, 9, 9, 9, 9, 9, 0x00, 0x00, 0xff, 0xff};
  Result<std::array<uint8_t, 12>> n = ChunkNonce(base, 1);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(Bytes(n->begin(), n->end()), (Bytes{9, 9, 9, 9, 9, 9, 9, 9, 0, 1, 0, 0}));
}

TEST(ChunkNonceTest, OverflowIsDataLoss) {
  const Bytes max = {0, 1, 2, 3, 4, 5, 6, 7, 0xff, 0xff, 0xff, 0xff};
  Result<std::array<uint8_t, 12>> n = ChunkNonce(max, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(Bytes(n->begin(), n->end()), max);
  n = ChunkNonce(max, 1);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kDataLoss);
  const Bytes near = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe};
  EXPECT_TRUE(ChunkNonce(near, 1).ok());
  EXPECT_EQ(ChunkNonce(near, 2).status().code(), StatusCode::kDataLoss);
}

TEST(ChunkNonceTest, IndexBeyondU32IsDataLoss) {
  const Bytes zero(12, 0);
  EXPECT_TRUE(ChunkNonce(zero, 0xffffffffu).ok());
  EXPECT_EQ(ChunkNonce(zero, uint64_t{1} << 32).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ChunkNonce(zero, UINT64_MAX).status().code(), StatusCode::kDataLoss);
}

TEST(ChunkNonceTest, RejectsWrongBaseLength) {
  EXPECT_FALSE(ChunkNonce(Bytes(11, 0), 0).ok());
  EXPECT_FALSE(ChunkNonce(Bytes(13, 0), 0).ok());
}

// --- Writer text -----------------------------------------------------------------------------

TEST(CryptMetadataSerializeTest, CryptoKeysMatchesFormatDocV2) {
  CryptoKeys keys;
  keys.version = "2";
  keys.chunk_size = kDefaultChunkSize;
  keys.enc = {"oct", "aes256gcm", "my-enc", std::nullopt};
  keys.sign = {"okp", "ed25519", "my-sign", std::nullopt};
  // cryptotensors-format.md §1.3, "As written by v0.2.3 (v2 default)".
  EXPECT_EQ(SerializeCryptoKeys(keys),
            R"({"chunk_size":2097152,"enc":{"alg":"aes256gcm","kid":"my-enc","kty":"oct"},)"
            R"("sign":{"alg":"ed25519","kid":"my-sign","kty":"okp"},"version":"2"})");
}

TEST(CryptMetadataSerializeTest, CryptoKeysV1AndOptionalMembers) {
  CryptoKeys keys;
  keys.version = "1";
  keys.enc = {"oct", "aes128gcm", std::nullopt, "file:///k.jwk"};
  keys.sign = {"okp", "ed25519", "s\"1", "file:///k.jwk"};
  EXPECT_EQ(SerializeCryptoKeys(keys),
            R"({"enc":{"alg":"aes128gcm","jku":"file:///k.jwk","kty":"oct"},)"
            R"("sign":{"alg":"ed25519","jku":"file:///k.jwk","kid":"s\"1","kty":"okp"},)"
            R"("version":"1"})");
}

TEST(CryptMetadataSerializeTest, EncryptionWholeModeAndSorting) {
  TensorCrypto w;
  w.tensor_name = "w";
  w.wrapped_key = Fill(32, 0);
  w.key_iv = Fill(12, 0);
  w.key_tag = Fill(16, 0);
  w.iv = Fill(12, 0);
  w.tag = Fill(16, 0);
  TensorCrypto e;
  e.tensor_name = "e";
  e.wrapped_key = Fill(32, 0);
  e.key_iv = Fill(12, 0);
  e.key_tag = Fill(16, 0);  // empty tensor: iv and tag empty
  const std::string k32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  const std::string n12 = "AAAAAAAAAAAAAAAA";
  const std::string t16 = "AAAAAAAAAAAAAAAAAAAAAA==";
  EXPECT_EQ(SerializeEncryption({w, e}, /*chunked=*/false),
            "{\"e\":{\"wrapped_key\":\"" + k32 + "\",\"key_iv\":\"" + n12 + "\",\"key_tag\":\"" +
                t16 + "\",\"iv\":\"\",\"tag\":\"\"},\"w\":{\"wrapped_key\":\"" + k32 +
                "\",\"key_iv\":\"" + n12 + "\",\"key_tag\":\"" + t16 + "\",\"iv\":\"" + n12 +
                "\",\"tag\":\"" + t16 + "\"}}");
  EXPECT_EQ(SerializeEncryption({}, true), "{}");
}

TEST(CryptMetadataSerializeTest, PolicyText) {
  EXPECT_EQ(SerializePolicy(Policy()), kPolicyText);
  Policy p;
  p.local = "a\tb\x01";
  EXPECT_EQ(SerializePolicy(p), R"({"local":"a\tb\u0001","remote":"package model\nallow = true"})");
}

TEST(CryptMetadataSerializeTest, RoundTripsThroughParse) {
  Builder b;
  Result<CryptMetadata> first = b.Parse();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  b.crypto_keys = SerializeCryptoKeys(first->keys);
  b.encryption_override = SerializeEncryption(first->entries, first->keys.chunked());
  b.policy = SerializePolicy(first->policy);
  Result<CryptMetadata> second = b.Parse();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(SerializeCryptoKeys(second->keys), *b.crypto_keys);
  EXPECT_EQ(SerializeEncryption(second->entries, true), *b.encryption_override);
  ASSERT_EQ(second->entries.size(), first->entries.size());
  for (size_t i = 0; i < first->entries.size(); ++i) {
    EXPECT_EQ(second->entries[i].tags, first->entries[i].tags);
    EXPECT_EQ(second->entries[i].base_iv, first->entries[i].base_iv);
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(CryptMetadataSerializeTest, ReproducesFormatDocExample) {
  // cryptotensors-format.md §1.8: parse the header, then each reserved value must be exactly
  // what our writer produces from the parsed structs.
  const std::string text = ReadFile(std::string(CTFS_TESTDATA_DIR) + "/vectors/header_1_8.json");
  ASSERT_EQ(text.size(), 1024u);
  Result<SafetensorsHeader> h = ParseHeaderJson(AsBytes(text));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_TRUE(IsEncrypted(*h));
  Result<CryptMetadata> m = ParseCryptMetadata(*h);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->keys.version, "2");
  EXPECT_EQ(m->keys.chunk_size, 8u);
  ASSERT_EQ(m->entries.size(), 2u);
  EXPECT_EQ(m->FindEntry("w")->tags.size(), 32u);  // 16 bytes at chunk_size 8: 2 chunks
  EXPECT_EQ(m->FindEntry("b")->tags.size(), 16u);
  // base_iv of b is a0 x 8 || 00000000 (the example's deterministic nonces).
  EXPECT_EQ(m->FindEntry("b")->base_iv,
            (Bytes{0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0, 0, 0, 0}));
  EXPECT_EQ(SerializeCryptoKeys(m->keys), *h->FindMetadata(kCryptoKeysKey));
  EXPECT_EQ(SerializeEncryption(m->entries, m->keys.chunked()), *h->FindMetadata(kEncryptionKey));
  EXPECT_EQ(SerializePolicy(m->policy), *h->FindMetadata(kPolicyKey));
  EXPECT_EQ(Base64Encode(m->signature), *h->FindMetadata(kSignatureKey));
}

TEST(CryptMetadataTest, ManyEncryptedTensors) {
  // Smoke test against quadratic lookups in this layer: 5000 encrypted tensors of 4 bytes.
  constexpr size_t kCount = 5000;
  Builder b;
  b.tensors.clear();
  b.entries.clear();
  for (size_t i = 0; i < kCount; ++i) {
    const std::string name = "layer." + std::to_string(i) + ".weight";
    b.tensors.push_back(Tensor(name, Dtype::kF32, {1}, 4 * i, 4 * i + 4));
    b.entries.emplace_back(name, V2Entry(1));
  }
  Result<CryptMetadata> r = b.Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->entries.size(), kCount);
  EXPECT_NE(r->FindEntry("layer.4999.weight"), nullptr);
  EXPECT_TRUE(std::is_sorted(
      r->entries.begin(), r->entries.end(),
      [](const TensorCrypto& x, const TensorCrypto& y) { return x.tensor_name < y.tensor_name; }));
}

}  // namespace
}  // namespace ctfs::format
