// SPDX-License-Identifier: Apache-2.0
// Tests of the reserved CryptoTensors metadata: valid v2 (chunked) and v1 (whole-tensor) sets
// built by hand against a fixed tensor table, one negative test per validation rule of
// crypt_metadata.h / style.md §1.6. Nonce vectors and writer text:
// crypt_metadata_serialize_test.cc.
#include "format/crypt_metadata.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "format/base64.h"
#include "format/limits.h"
#include "tests/unit/format/crypt_metadata_test_util.h"

namespace ctfs::format {
namespace {
using namespace testutil;  // NOLINT: test helpers

TEST(CryptMetadataTest, ParsesValidV2) {
  Result<CryptMetadata> r = Builder().Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const CryptMetadata& m = *r;
  EXPECT_EQ(m.keys.version, "2");
  ASSERT_TRUE(m.keys.chunk_size.has_value());
  EXPECT_EQ(*m.keys.chunk_size, 8u);
  EXPECT_TRUE(m.keys.chunked());
  EXPECT_EQ(m.keys.EffectiveChunkSize(), 8u);
  EXPECT_EQ(m.keys.enc.kty, "oct");
  EXPECT_EQ(m.keys.enc.alg, "aes256gcm");
  EXPECT_EQ(m.keys.enc.kid, "enc-key");
  EXPECT_FALSE(m.keys.enc.jku.has_value());
  EXPECT_EQ(m.keys.sign.kty, "okp");
  EXPECT_EQ(m.keys.sign.alg, "ed25519");
  EXPECT_EQ(m.keys.sign.kid, "sign-key");
  EXPECT_EQ(m.enc_alg, AeadAlg::kAes256Gcm);
  ASSERT_EQ(m.entries.size(), 3u);
  const TensorCrypto* w = m.FindEntry("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->tensor_name, "w");
  EXPECT_EQ(w->wrapped_key, Fill(32, 0x11));
  EXPECT_EQ(w->key_iv, Fill(12, 0x22));
  EXPECT_EQ(w->key_tag, Fill(16, 0x33));
  EXPECT_EQ(w->base_iv, Fill(12, 0x00));
  EXPECT_EQ(w->tags, Fill(32, 0x44));
  EXPECT_TRUE(w->iv.empty());
  EXPECT_TRUE(w->tag.empty());
  EXPECT_EQ(m.policy.local, kDefaultPolicyText);
  EXPECT_EQ(m.policy.remote, kDefaultPolicyText);
  EXPECT_EQ(m.signature, Fill(64, 0x77));
}

TEST(CryptMetadataTest, ParsesValidV1) {
  Result<CryptMetadata> r = V1Builder().Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->keys.version, "1");
  EXPECT_FALSE(r->keys.chunk_size.has_value());
  EXPECT_FALSE(r->keys.chunked());
  const TensorCrypto* b = r->FindEntry("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->iv, Fill(12, 0x55));
  EXPECT_EQ(b->tag, Fill(16, 0x66));
  EXPECT_TRUE(b->base_iv.empty());
  EXPECT_TRUE(b->tags.empty());
  const TensorCrypto* z = r->FindEntry("z");
  ASSERT_NE(z, nullptr);
  EXPECT_TRUE(z->iv.empty());
  EXPECT_TRUE(z->tag.empty());
}

TEST(CryptMetadataTest, V1EmptyTensorMayAlsoCarryFullIvAndTag) {
  Result<CryptMetadata> r = V1Builder().Entry("z", V1Entry(false)).Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

TEST(CryptMetadataTest, V2WithoutChunkSizeUsesDefault) {
  Builder b;
  b.crypto_keys = ObjText(Without(KeysV2(), "chunk_size"));
  b.Entry("w", V2Entry(1));  // 16 bytes fit in one 2 MiB chunk
  Result<CryptMetadata> r = b.Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->keys.chunked());
  EXPECT_FALSE(r->keys.chunk_size.has_value());
  EXPECT_EQ(r->keys.EffectiveChunkSize(), kDefaultChunkSize);
}

TEST(CryptMetadataTest, ChunkSizeMakesV1Chunked) {
  // §1.3: chunk_size present means chunked, whatever version says.
  Builder b;
  b.crypto_keys = ObjText(With(KeysV1(), "chunk_size", "8"));
  Result<CryptMetadata> r = b.Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->keys.version, "1");
  EXPECT_TRUE(r->keys.chunked());
  // ... so v1-style entries are then wrong.
  Builder v1 = V1Builder();
  v1.crypto_keys = ObjText(With(KeysV1(), "chunk_size", "8"));
  ExpectInvalid(v1.Parse(), {"\"iv\"", "chunked"});
}

TEST(CryptMetadataTest, AcceptsHugeChunkSize) {
  // The reference reads any u64 > 0 (no 2^48 cap here).
  Builder b;
  b.crypto_keys = ObjText(With(KeysV2(), "chunk_size", "18446744073709551615"));
  Result<CryptMetadata> r = b.Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r->keys.chunk_size, UINT64_MAX);
}

TEST(CryptMetadataTest, EntriesSortedByNameAndPartialEncryption) {
  Builder b;
  b.entries = {{"z", V2Entry(1)}, {"b", V2Entry(1)}};  // w stays plaintext
  Result<CryptMetadata> r = b.Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries[0].tensor_name, "b");
  EXPECT_EQ(r->entries[1].tensor_name, "z");
  EXPECT_EQ(r->FindEntry("w"), nullptr);
  EXPECT_EQ(r->FindEntry("a"), nullptr);
  EXPECT_EQ(r->FindEntry("zz"), nullptr);
  EXPECT_NE(r->FindEntry("z"), nullptr);
}

TEST(CryptMetadataTest, EmptyEncryptionObjectIsValid) {
  Builder b;
  b.entries.clear();
  Result<CryptMetadata> r = b.Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->entries.empty());
}

TEST(CryptMetadataTest, ExtraTrailingTagsAreIgnored) {
  Result<CryptMetadata> r = Builder().Entry("w", V2Entry(5)).Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->FindEntry("w")->tags.size(), 80u);
}

TEST(CryptMetadataTest, AlgorithmsAndKeyLengths) {
  Builder b;
  b.crypto_keys = ObjText(With(KeysV2(), "enc", ObjText(With(kEncV2, "alg", Q("AES-128-GCM")))));
  // AES-128: wrapped DEK is 16 bytes.
  ExpectInvalid(b.Parse(), {"wrapped_key", "expected 16 bytes, got 32", "\"b\""});
  for (auto& [name, fields] : b.entries) fields = With(fields, "wrapped_key", Q(B64(16)));
  Result<CryptMetadata> r = b.Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->enc_alg, AeadAlg::kAes128Gcm);
  EXPECT_EQ(r->keys.enc.alg, "AES-128-GCM");  // kept as written

  Builder c;
  c.crypto_keys =
      ObjText(With(KeysV2(), "enc", ObjText(With(kEncV2, "alg", Q("chacha20-poly1305")))));
  r = c.Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->enc_alg, AeadAlg::kChaCha20Poly1305);

  Builder d;
  d.crypto_keys = ObjText(With(KeysV2(), "sign", ObjText(With(kSignV2, "alg", Q("Ed25519")))));
  EXPECT_TRUE(d.Parse().ok());
}

TEST(CryptMetadataTest, OptionalKidAndJku) {
  Builder b;
  Fields enc = {{"alg", Q("aes256gcm")}, {"jku", Q("file:///etc/keys.jwk")}, {"kty", Q("oct")}};
  Fields sign = {{"alg", Q("ed25519")}, {"kty", Q("okp")}};
  b.crypto_keys = ObjText({{"enc", ObjText(enc)}, {"sign", ObjText(sign)}, {"version", Q("2")}});
  b.Entry("w", V2Entry(1));
  Result<CryptMetadata> r = b.Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->keys.enc.jku, "file:///etc/keys.jwk");
  EXPECT_FALSE(r->keys.enc.kid.has_value());
  EXPECT_FALSE(r->keys.sign.kid.has_value());
  EXPECT_FALSE(r->keys.sign.jku.has_value());
}

TEST(CryptMetadataTest, PolicyMembersOptionalWithDefaults) {
  Builder b;
  b.policy = R"({"local":"package model\nallow = false"})";
  Result<CryptMetadata> r = b.Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->policy.local, "package model\nallow = false");
  EXPECT_EQ(r->policy.remote, kDefaultPolicyText);
  b.policy = "{}";
  r = b.Parse();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->policy.local, kDefaultPolicyText);
  EXPECT_EQ(r->policy.remote, kDefaultPolicyText);
}

// --- Negative: the four keys -----------------------------------------------------------------

TEST(CryptMetadataTest, RejectsMissingCryptoKeys) {
  Builder b;
  b.crypto_keys.reset();
  ExpectInvalid(b.Parse(), {"__crypto_keys__"});
}

TEST(CryptMetadataTest, RejectsMissingSignature) {
  Builder b;
  b.signature.reset();
  ExpectInvalid(b.Parse(), {"__signature__"});
}

TEST(CryptMetadataTest, RejectsMissingPolicy) {
  Builder b;
  b.policy.reset();
  ExpectInvalid(b.Parse(), {"__policy__"});
}

TEST(CryptMetadataTest, RejectsHeaderWithoutEncryption) {
  Builder b;
  b.with_encryption = false;
  EXPECT_FALSE(IsEncrypted(b.Build()));
  ExpectInvalid(b.Parse(), {"__encryption__"});
}

// --- Negative: __crypto_keys__ ---------------------------------------------------------------

Result<CryptMetadata> ParseWithKeys(const std::string& keys_text) {
  Builder b;
  b.crypto_keys = keys_text;
  return b.Parse();
}

TEST(CryptMetadataTest, RejectsCryptoKeysNotJson) {
  ExpectInvalid(ParseWithKeys("{\"version\":\"2\""), {"__crypto_keys__"});
  ExpectInvalid(ParseWithKeys("[]"), {"__crypto_keys__", "object"});
  ExpectInvalid(ParseWithKeys(R"({"version":"2","version":"2"})"), {"duplicate"});
}

TEST(CryptMetadataTest, RejectsUnsupportedVersion) {
  ExpectInvalid(ParseWithKeys(ObjText(With(KeysV2(), "version", Q("3")))),
                {"unsupported version", "\"3\""});
  ExpectInvalid(ParseWithKeys(ObjText(With(KeysV2(), "version", Q("")))), {"unsupported version"});
  ExpectInvalid(ParseWithKeys(ObjText(With(KeysV2(), "version", Q("v2")))),
                {"unsupported version"});
}

TEST(CryptMetadataTest, RejectsMissingOrNonStringVersion) {
  ExpectInvalid(ParseWithKeys(ObjText(Without(KeysV2(), "version"))), {"version"});
  ExpectInvalid(ParseWithKeys(ObjText(With(KeysV2(), "version", "2"))), {"version", "string"});
}

TEST(CryptMetadataTest, RejectsBadChunkSize) {
  for (const char* bad : {"0", "-1", "8.0", "8e0", "\"8\"", "null", "true", "1e30"}) {
    ExpectInvalid(ParseWithKeys(ObjText(With(KeysV2(), "chunk_size", bad))), {"chunk_size"});
  }
}

TEST(CryptMetadataTest, RejectsUnknownCryptoKeysMember) {
  ExpectInvalid(ParseWithKeys(ObjText(With(KeysV2(), "k", Q(B64(32))))),
                {"unknown member", "\"k\""});
}

TEST(CryptMetadataTest, RejectsMissingEncOrSign) {
  ExpectInvalid(ParseWithKeys(ObjText(Without(KeysV2(), "enc"))), {"enc"});
  ExpectInvalid(ParseWithKeys(ObjText(Without(KeysV2(), "sign"))), {"sign"});
  ExpectInvalid(ParseWithKeys(ObjText(With(KeysV2(), "enc", Q("oct")))), {"enc", "object"});
}

std::string KeysWithEnc(const Fields& enc) { return ObjText(With(KeysV2(), "enc", ObjText(enc))); }
std::string KeysWithSign(const Fields& sign) {
  return ObjText(With(KeysV2(), "sign", ObjText(sign)));
}

TEST(CryptMetadataTest, RejectsWrongEncKty) {
  ExpectInvalid(ParseWithKeys(KeysWithEnc(With(kEncV2, "kty", Q("okp")))), {"enc.kty", "\"oct\""});
  ExpectInvalid(ParseWithKeys(KeysWithEnc(With(kEncV2, "kty", Q("OCT")))), {"enc.kty"});
  ExpectInvalid(ParseWithKeys(KeysWithEnc(Without(kEncV2, "kty"))), {"enc", "kty"});
}

TEST(CryptMetadataTest, RejectsWrongSignKty) {
  ExpectInvalid(ParseWithKeys(KeysWithSign(With(kSignV2, "kty", Q("oct")))),
                {"sign.kty", "\"okp\""});
  ExpectInvalid(ParseWithKeys(KeysWithSign(With(kSignV2, "kty", Q("OKP")))), {"sign.kty"});
}

TEST(CryptMetadataTest, RejectsUnsupportedEncAlg) {
  ExpectInvalid(ParseWithKeys(KeysWithEnc(With(kEncV2, "alg", Q("A256GCM")))),
                {"enc.alg", "A256GCM"});
  ExpectInvalid(ParseWithKeys(KeysWithEnc(Without(kEncV2, "alg"))), {"enc", "alg"});
  ExpectInvalid(ParseWithKeys(KeysWithEnc(With(kEncV2, "alg", "256"))), {"enc.alg"});
}

TEST(CryptMetadataTest, RejectsUnsupportedSignAlg) {
  ExpectInvalid(ParseWithKeys(KeysWithSign(With(kSignV2, "alg", Q("EdDSA")))),
                {"sign.alg", "EdDSA"});
  ExpectInvalid(ParseWithKeys(KeysWithSign(Without(kSignV2, "alg"))), {"sign", "alg"});
}

TEST(CryptMetadataTest, RejectsNonStringKidOrJku) {
  ExpectInvalid(ParseWithKeys(KeysWithEnc(With(kEncV2, "kid", "7"))), {"enc.kid"});
  ExpectInvalid(ParseWithKeys(KeysWithSign(With(kSignV2, "jku", "null"))), {"sign.jku"});
}

TEST(CryptMetadataTest, RejectsUnknownDescriptorMember) {
  // The public key is never written into the file (§1.3); "x" here is an unknown member.
  ExpectInvalid(ParseWithKeys(KeysWithSign(With(kSignV2, "x", Q(B64(32))))),
                {"sign", "unknown member", "\"x\""});
  ExpectInvalid(ParseWithKeys(KeysWithEnc(With(kEncV2, "crv", Q("X")))), {"enc", "unknown member"});
}

// --- Negative: __encryption__ ----------------------------------------------------------------

TEST(CryptMetadataTest, RejectsEncryptionNotAnObject) {
  Builder b;
  b.encryption_override = "[]";
  ExpectInvalid(b.Parse(), {"__encryption__", "object"});
  b.encryption_override = "{";
  ExpectInvalid(b.Parse(), {"__encryption__"});
  b.encryption_override = R"({"b":{},"b":{}})";
  ExpectInvalid(b.Parse(), {"__encryption__", "duplicate"});
}

TEST(CryptMetadataTest, RejectsEntryForUnknownTensor) {
  ExpectInvalid(Builder().Entry("ghost", V2Entry(1)).Parse(), {"unknown tensor", "\"ghost\""});
}

TEST(CryptMetadataTest, RejectsEntryNotAnObject) {
  Builder b;
  b.encryption_override = R"({"w":"x"})";
  ExpectInvalid(b.Parse(), {"\"w\"", "object"});
}

TEST(CryptMetadataTest, RejectsUnknownEntryField) {
  ExpectInvalid(Builder().Entry("w", With(V2Entry(2), "enc_algo", Q("aes256gcm"))).Parse(),
                {"\"w\"", "unknown field", "enc_algo"});
}

TEST(CryptMetadataTest, RejectsMissingCommonFields) {
  for (const char* field : {"wrapped_key", "key_iv", "key_tag"}) {
    ExpectInvalid(Builder().Entry("w", Without(V2Entry(2), field)).Parse(),
                  {"\"w\"", "missing field", field});
    ExpectInvalid(V1Builder().Entry("w", Without(V1Entry(false), field)).Parse(),
                  {"\"w\"", "missing field", field});
  }
}

TEST(CryptMetadataTest, RejectsWrongWrappedKeyLength) {
  ExpectInvalid(Builder().Entry("w", With(V2Entry(2), "wrapped_key", Q(B64(16)))).Parse(),
                {"\"w\"", "wrapped_key", "expected 32 bytes, got 16"});
}

TEST(CryptMetadataTest, RejectsWrongKeyIvLength) {
  ExpectInvalid(Builder().Entry("w", With(V2Entry(2), "key_iv", Q(B64(16)))).Parse(),
                {"\"w\"", "key_iv", "expected 12 bytes"});
}

TEST(CryptMetadataTest, RejectsWrongKeyTagLength) {
  ExpectInvalid(Builder().Entry("w", With(V2Entry(2), "key_tag", Q(B64(12)))).Parse(),
                {"\"w\"", "key_tag", "expected 16 bytes"});
}

TEST(CryptMetadataTest, RejectsBadBase64InEntry) {
  ExpectInvalid(Builder().Entry("w", With(V2Entry(2), "key_iv", Q("____________AAAA"))).Parse(),
                {"\"w\"", "key_iv", "invalid base64"});
  ExpectInvalid(Builder().Entry("w", With(V2Entry(2), "key_tag", "16")).Parse(),
                {"\"w\"", "key_tag", "base64 string"});
}

TEST(CryptMetadataTest, ChunkedRejectsMissingBaseIvOrTags) {
  ExpectInvalid(Builder().Entry("w", Without(V2Entry(2), "base_iv")).Parse(),
                {"\"w\"", "missing field", "base_iv"});
  ExpectInvalid(Builder().Entry("w", Without(V2Entry(2), "tags")).Parse(),
                {"\"w\"", "missing field", "tags"});
}

TEST(CryptMetadataTest, ChunkedRejectsWrongBaseIvLength) {
  ExpectInvalid(Builder().Entry("w", With(V2Entry(2), "base_iv", Q(B64(8)))).Parse(),
                {"\"w\"", "base_iv", "expected 12 bytes"});
}

TEST(CryptMetadataTest, ChunkedRejectsTagsNotMultipleOf16) {
  ExpectInvalid(Builder().Entry("w", With(V2Entry(2), "tags", Q(B64(33)))).Parse(),
                {"\"w\"", "tags", "multiple of 16"});
}

TEST(CryptMetadataTest, ChunkedRejectsTooFewTags) {
  // w is 16 bytes at chunk_size 8: two chunks.
  ExpectInvalid(Builder().Entry("w", V2Entry(1)).Parse(), {"\"w\"", "tags", "needs 2"});
  // An empty tensor still needs one tag (§2.4).
  ExpectInvalid(Builder().Entry("z", With(V2Entry(1), "tags", Q(""))).Parse(),
                {"\"z\"", "tags", "needs 1"});
}

TEST(CryptMetadataTest, ChunkedRejectsWholeModeFields) {
  ExpectInvalid(Builder().Entry("w", With(V2Entry(2), "iv", Q(B64(12)))).Parse(),
                {"\"w\"", "\"iv\"", "not allowed"});
  ExpectInvalid(Builder().Entry("w", With(V2Entry(2), "tag", Q(B64(16)))).Parse(),
                {"\"w\"", "\"tag\"", "not allowed"});
}

TEST(CryptMetadataTest, ChunkedRejectsTooManyChunks) {
  Builder b;
  b.crypto_keys = ObjText(With(KeysV2(), "chunk_size", "1"));
  const uint64_t len = kMaxChunksPerTensor + 1;
  b.tensors = {Tensor("big", Dtype::kU8, {len}, 0, len)};
  b.entries = {{"big", V2Entry(1)}};
  ExpectInvalid(b.Parse(), {"\"big\"", "chunks exceed"});
}

TEST(CryptMetadataTest, ChunkedRejectsNonceCounterOverflow) {
  // base_iv ff..ff: counter 0xffffffff. One chunk is fine (nonce = base_iv), two overflow.
  Builder b;
  b.Entry("b", V2Entry(1, 0xff));
  ASSERT_TRUE(b.Parse().ok()) << b.Parse().status().ToString();
  b.Entry("w", V2Entry(2, 0xff));
  ExpectInvalid(b.Parse(), {"\"w\"", "base_iv", "overflow"});
}

TEST(CryptMetadataTest, WholeRejectsMissingIvOrTag) {
  ExpectInvalid(V1Builder().Entry("w", Without(V1Entry(false), "iv")).Parse(),
                {"\"w\"", "missing field", "iv"});
  ExpectInvalid(V1Builder().Entry("w", Without(V1Entry(false), "tag")).Parse(),
                {"\"w\"", "missing field", "tag"});
}

TEST(CryptMetadataTest, WholeRejectsWrongIvOrTagLength) {
  ExpectInvalid(V1Builder().Entry("w", With(V1Entry(false), "iv", Q(B64(11)))).Parse(),
                {"\"w\"", ".iv", "expected 12 bytes, got 11"});
  ExpectInvalid(V1Builder().Entry("w", With(V1Entry(false), "tag", Q(B64(15)))).Parse(),
                {"\"w\"", ".tag", "expected 16 bytes, got 15"});
}

TEST(CryptMetadataTest, WholeRejectsEmptyIvTagForNonEmptyTensor) {
  ExpectInvalid(V1Builder().Entry("w", V1Entry(true)).Parse(), {"\"w\"", ".iv"});
}

TEST(CryptMetadataTest, WholeRejectsHalfEmptyPairForEmptyTensor) {
  ExpectInvalid(V1Builder().Entry("z", With(V1Entry(true), "tag", Q(B64(16)))).Parse(),
                {"\"z\"", ".iv"});
  ExpectInvalid(V1Builder().Entry("z", With(V1Entry(true), "iv", Q(B64(12)))).Parse(),
                {"\"z\"", ".tag"});
}

TEST(CryptMetadataTest, WholeRejectsChunkedModeFields) {
  ExpectInvalid(V1Builder().Entry("w", With(V1Entry(false), "base_iv", Q(B64(12)))).Parse(),
                {"\"w\"", "\"base_iv\"", "not allowed"});
  ExpectInvalid(V1Builder().Entry("w", With(V1Entry(false), "tags", Q(B64(16)))).Parse(),
                {"\"w\"", "\"tags\"", "not allowed"});
}

// --- Negative: __policy__ and __signature__ --------------------------------------------------

TEST(CryptMetadataTest, RejectsBadPolicy) {
  Builder b;
  b.policy = "package model";
  ExpectInvalid(b.Parse(), {"__policy__"});
  b.policy = R"(["package model"])";
  ExpectInvalid(b.Parse(), {"__policy__", "object"});
  b.policy = R"({"local":true})";
  ExpectInvalid(b.Parse(), {"__policy__", "local"});
  b.policy = R"({"local":"package model\nallow = true","input":"x"})";
  ExpectInvalid(b.Parse(), {"__policy__", "unknown member", "\"input\""});
}

TEST(CryptMetadataTest, RejectsBadSignature) {
  Builder b;
  b.signature = B64(63);
  ExpectInvalid(b.Parse(), {"__signature__", "64 bytes, got 63"});
  b.signature = B64(65);
  ExpectInvalid(b.Parse(), {"__signature__", "64 bytes, got 65"});
  std::string url = B64(64, 0xfb);  // '+' and '/' in standard base64
  for (char& c : url) c = c == '+' ? '-' : c == '/' ? '_' : c;
  b.signature = url;
  ExpectInvalid(b.Parse(), {"__signature__", "invalid base64"});
  b.signature = B64(64) + "\n";
  ExpectInvalid(b.Parse(), {"__signature__", "invalid base64"});
}

// --- Small helpers ---------------------------------------------------------------------------

TEST(CryptMetadataTest, NumChunks) {
  EXPECT_EQ(NumChunks(0, 8), 1u);
  EXPECT_EQ(NumChunks(1, 8), 1u);
  EXPECT_EQ(NumChunks(8, 8), 1u);
  EXPECT_EQ(NumChunks(9, 8), 2u);
  EXPECT_EQ(NumChunks(16, 8), 2u);
  EXPECT_EQ(NumChunks(UINT64_MAX, 1), UINT64_MAX);
  EXPECT_EQ(NumChunks(UINT64_MAX, UINT64_MAX), 1u);
  EXPECT_EQ(NumChunks(5 * kDefaultChunkSize + 1, kDefaultChunkSize), 6u);
}

TEST(CryptMetadataTest, ReservedKeysAndIsEncrypted) {
  EXPECT_TRUE(IsReservedKey("__crypto_keys__"));
  EXPECT_TRUE(IsReservedKey("__encryption__"));
  EXPECT_TRUE(IsReservedKey("__policy__"));
  EXPECT_TRUE(IsReservedKey("__signature__"));
  EXPECT_FALSE(IsReservedKey("format"));
  EXPECT_FALSE(IsReservedKey("__metadata__"));
  EXPECT_FALSE(IsReservedKey("__signature"));
  EXPECT_TRUE(IsEncrypted(Builder().Build()));
  SafetensorsHeader plain;
  EXPECT_FALSE(IsEncrypted(plain));
}

}  // namespace
}  // namespace ctfs::format
