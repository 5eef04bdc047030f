// SPDX-License-Identifier: Apache-2.0
// Tests of the reserved CryptoTensors metadata: valid v2 (chunked) and v1 (whole-tensor) sets
// built by hand against a fixed tensor table, one negative test per validation rule of
// crypt_metadata.h / style.md §1.6, the chunk nonce vectors of cryptotensors-format.md §2.4, and
// byte-exact writer text against the §1.3 and §1.8 examples.
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

namespace ctfs::format {
namespace {

// --- Building headers by hand ------------------------------------------------------------

std::string Q(std::string_view s) { return "\"" + std::string(s) + "\""; }
std::string B64(size_t n, uint8_t fill = 0xab) { return Base64Encode(Bytes(n, fill)); }

// An object's members as (name, raw JSON value text), in order.
using Fields = std::vector<std::pair<std::string, std::string>>;

std::string ObjText(const Fields& fields) {
  std::string out = "{";
  for (const auto& [k, v] : fields) {
    if (out.size() > 1) out += ",";
    out += Q(k) + ":" + v;
  }
  return out + "}";
}

Fields With(Fields f, const std::string& key, const std::string& value) {
  for (auto& [k, v] : f) {
    if (k == key) {
      v = value;
      return f;
    }
  }
  f.emplace_back(key, value);
  return f;
}

Fields Without(Fields f, const std::string& key) {
  std::erase_if(f, [&](const auto& kv) { return kv.first == key; });
  return f;
}

Fields V2Entry(size_t num_tags, uint8_t base_iv_fill = 0x00) {
  return {{"wrapped_key", Q(B64(32, 0x11))},
          {"key_iv", Q(B64(12, 0x22))},
          {"key_tag", Q(B64(16, 0x33))},
          {"base_iv", Q(B64(12, base_iv_fill))},
          {"tags", Q(B64(16 * num_tags, 0x44))}};
}

Fields V1Entry(bool empty_tensor) {
  return {{"wrapped_key", Q(B64(32, 0x11))},
          {"key_iv", Q(B64(12, 0x22))},
          {"key_tag", Q(B64(16, 0x33))},
          {"iv", Q(empty_tensor ? "" : B64(12, 0x55))},
          {"tag", Q(empty_tensor ? "" : B64(16, 0x66))}};
}

const Fields kEncV2 = {{"alg", Q("aes256gcm")}, {"kid", Q("enc-key")}, {"kty", Q("oct")}};
const Fields kSignV2 = {{"alg", Q("ed25519")}, {"kid", Q("sign-key")}, {"kty", Q("okp")}};

Fields KeysV2() {
  return {{"chunk_size", "8"},
          {"enc", ObjText(kEncV2)},
          {"sign", ObjText(kSignV2)},
          {"version", Q("2")}};
}

Fields KeysV1() {
  return {{"enc", ObjText(kEncV2)}, {"sign", ObjText(kSignV2)}, {"version", Q("1")}};
}

constexpr char kPolicyText[] =
    R"({"local":"package model\nallow = true","remote":"package model\nallow = true"})";

TensorInfo Tensor(std::string name, Dtype dtype, std::vector<uint64_t> shape, uint64_t begin,
                  uint64_t end) {
  TensorInfo t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.begin = begin;
  t.end = end;
  return t;
}

// The tensor table of every test: b (8 bytes: 1 chunk of 8), w (16 bytes: 2 chunks), z (empty).
struct Builder {
  std::optional<std::string> crypto_keys = ObjText(KeysV2());
  std::vector<std::pair<std::string, Fields>> entries = {
      {"b", V2Entry(1)}, {"w", V2Entry(2)}, {"z", V2Entry(1)}};
  std::optional<std::string> encryption_override;  // replaces the text built from `entries`
  bool with_encryption = true;
  std::optional<std::string> policy = kPolicyText;
  std::optional<std::string> signature = B64(64, 0x77);
  std::vector<TensorInfo> tensors = {Tensor("b", Dtype::kF32, {2}, 0, 8),
                                     Tensor("w", Dtype::kF32, {2, 2}, 8, 24),
                                     Tensor("z", Dtype::kF32, {0}, 24, 24)};

  Builder& Entry(const std::string& name, Fields f) {
    for (auto& [n, e] : entries) {
      if (n == name) {
        e = std::move(f);
        return *this;
      }
    }
    entries.emplace_back(name, std::move(f));
    return *this;
  }

  std::string EncryptionText() const {
    if (encryption_override.has_value()) return *encryption_override;
    std::string out = "{";
    for (const auto& [name, fields] : entries) {
      if (out.size() > 1) out += ",";
      out += Q(name) + ":" + ObjText(fields);
    }
    return out + "}";
  }

  SafetensorsHeader Build() const {
    SafetensorsHeader h;
    h.has_metadata = true;
    h.metadata.push_back({"format", "pt"});
    if (crypto_keys) h.metadata.push_back({kCryptoKeysKey, *crypto_keys});
    if (with_encryption) h.metadata.push_back({kEncryptionKey, EncryptionText()});
    if (policy) h.metadata.push_back({kPolicyKey, *policy});
    if (signature) h.metadata.push_back({kSignatureKey, *signature});
    h.tensors = tensors;
    for (const TensorInfo& t : tensors) h.data_len = std::max(h.data_len, t.end);
    return h;
  }

  Result<CryptMetadata> Parse() const { return ParseCryptMetadata(Build()); }
};

Builder V1Builder() {
  Builder b;
  b.crypto_keys = ObjText(KeysV1());
  b.entries = {{"b", V1Entry(false)}, {"w", V1Entry(false)}, {"z", V1Entry(true)}};
  return b;
}

// ExpectInvalid: InvalidArgument whose message contains every needle.
void ExpectInvalid(const Result<CryptMetadata>& r,
                   std::initializer_list<std::string_view> needles) {
  ASSERT_FALSE(r.ok()) << "unexpectedly accepted";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  for (std::string_view n : needles) {
    EXPECT_NE(r.status().message().find(n), std::string::npos)
        << "message lacks \"" << n << "\": " << r.status().message();
  }
}

Bytes Fill(size_t n, uint8_t v) { return Bytes(n, v); }

// --- Valid sets ------------------------------------------------------------------------------

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
