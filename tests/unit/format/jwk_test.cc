// SPDX-License-Identifier: Apache-2.0
// Tests of the CryptoTensors JWK dialect (cryptotensors-format.md §4.1) with the reference
// repo's fixed test key pair (§1.8): single JWK and JWK Set, every rejection (kty, alg, key
// lengths, base64url), error messages naming kid or index but never key bytes, and a round trip
// through SerializeJwkSet.
#include "format/jwk.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/secret_arena.h"
#include "format/base64.h"

namespace ctfs::format {
namespace {

// The reference repo's public test pair (cryptotensors-format.md §1.8).
constexpr char kEncK[] = "L+xl38kCEteXk+6Tm1mzu5JvFriVibzAsgpYX2WmAgA=";
constexpr char kSignD[] = "uTKTjQL6pX1Tqb7Hpor4A1s+TdgHReQEITZWWAf7DIc=";
constexpr char kSignX[] = "xkqFcGjXCBMk75q0259N1ggRJsqc+FTAiXMuKX72fd8=";
// Their bytes, from Python base64.b64decode(validate=True).hex().
constexpr char kEncKHex[] = "2fec65dfc90212d79793ee939b59b3bb926f16b89589bcc0b20a585f65a60200";
constexpr char kSignDHex[] = "b932938d02faa57d53a9bec7a68af8035b3e4dd80745e4042136565807fb0c87";
constexpr char kSignXHex[] = "c64a857068d7081324ef9ab4db9f4dd6081126ca9cf854c089732e297ef67ddf";

std::string Hex(ByteSpan b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t v : b) {
    out += kDigits[v >> 4];
    out += kDigits[v & 15];
  }
  return out;
}

std::string EncJwk(const std::string& extra = "") {
  return std::string(R"({"kty":"oct","alg":"aes256gcm","kid":"enc-key","k":")") + kEncK + "\"" +
         extra + "}";
}
std::string SignJwk(const std::string& extra = "") {
  return std::string(R"({"kty":"okp","alg":"ed25519","kid":"sign-key","x":")") + kSignX +
         R"(","d":")" + kSignD + "\"" + extra + "}";
}

void ExpectInvalid(const Result<std::vector<Jwk>>& r,
                   std::initializer_list<std::string_view> needles) {
  ASSERT_FALSE(r.ok()) << "unexpectedly accepted";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  for (std::string_view n : needles) {
    EXPECT_NE(r.status().message().find(n), std::string::npos)
        << "message lacks \"" << n << "\": " << r.status().message();
  }
  for (const char* secret : {kEncK, kSignD}) {
    EXPECT_EQ(r.status().message().find(std::string(secret).substr(0, 12)), std::string::npos)
        << "message leaks key material: " << r.status().message();
  }
}

TEST(JwkTest, ParsesSingleOctJwk) {
  Result<std::vector<Jwk>> r = ParseJwkDocument(EncJwk());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  const Jwk& k = (*r)[0];
  EXPECT_EQ(k.kty, "oct");
  EXPECT_EQ(k.alg, "aes256gcm");
  EXPECT_EQ(k.kid, "enc-key");
  EXPECT_FALSE(k.jku.has_value());
  EXPECT_EQ(Hex(k.k.span()), kEncKHex);
  EXPECT_TRUE(k.d.empty());
  EXPECT_TRUE(k.x.empty());
}

TEST(JwkTest, ParsesSingleOkpJwk) {
  Result<std::vector<Jwk>> r = ParseJwkDocument(SignJwk());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  const Jwk& k = (*r)[0];
  EXPECT_EQ(k.kty, "okp");
  EXPECT_EQ(k.alg, "ed25519");
  EXPECT_EQ(k.kid, "sign-key");
  EXPECT_EQ(Hex(k.x), kSignXHex);
  EXPECT_EQ(Hex(k.d.span()), kSignDHex);
  EXPECT_TRUE(k.k.empty());
}

TEST(JwkTest, ParsesJwkSet) {
  const std::string doc =
      "{\"keys\":[" + EncJwk() + "," + SignJwk() + R"(,{"kty":"okp","alg":"Ed25519","x":")" +
      kSignX + "\"}" + R"(,{"kty":"okp","alg":"ED25519","kid":"d-only","d":")" + kSignD + "\"}]}";
  Result<std::vector<Jwk>> r = ParseJwkDocument(doc);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].kty, "oct");
  EXPECT_EQ((*r)[1].kid, "sign-key");
  EXPECT_FALSE((*r)[2].kid.has_value());
  EXPECT_EQ(Hex((*r)[2].x), kSignXHex);
  EXPECT_TRUE((*r)[2].d.empty());
  EXPECT_EQ((*r)[2].alg, "Ed25519");
  EXPECT_TRUE((*r)[3].x.empty());  // derived later by crypto/, not here
  EXPECT_EQ(Hex((*r)[3].d.span()), kSignDHex);
}

// The parse gives back every arena block it used for the JSON tree: what stays is exactly the
// SecretBytes of the result (k of each oct key, d of each okp key that has one).
TEST(JwkTest, ParseKeepsOnlyTheKeysInTheArena) {
  const std::string doc = "{\"keys\":[" + EncJwk() + "," + SignJwk() +
                          R"(,{"kty":"oct","alg":"aes128gcm","k":")" + Base64Encode(Bytes(16, 7)) +
                          R"("},{"kty":"okp","alg":"ed25519","x":")" + kSignX + "\"}]}";
  const SecretArenaStats before = SecretArena::Stats();
  {
    Result<std::vector<Jwk>> r = ParseJwkDocument(doc);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const SecretArenaStats after = SecretArena::Stats();
    EXPECT_EQ(after.live_blocks, before.live_blocks + 3);
    EXPECT_EQ(after.live_bytes, before.live_bytes + 32 + 32 + 16);
  }
  for (const std::string& bad : {doc.substr(0, doc.size() - 2), doc + "}", EncJwk(R"(,"k":"AAAA")"),
                                 EncJwk(R"(,"alg":"x")")}) {
    EXPECT_FALSE(ParseJwkDocument(bad).ok());
  }
  EXPECT_EQ(SecretArena::Stats().live_blocks, before.live_blocks);
  EXPECT_EQ(SecretArena::Stats().live_bytes, before.live_bytes);
}

TEST(JwkTest, EmptySet) {
  Result<std::vector<Jwk>> r = ParseJwkDocument(R"({"keys":[]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->empty());
}

TEST(JwkTest, IgnoresUnknownMembersAndKeepsJku) {
  Result<std::vector<Jwk>> r =
      ParseJwkDocument(EncJwk(R"(,"use":"enc","jku":"file:///etc/k.jwk","x5c":[1,{"a":2}])"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].jku, "file:///etc/k.jwk");
}

TEST(JwkTest, AlgorithmNamesNormalizedButKeptAsWritten) {
  Result<std::vector<Jwk>> r =
      ParseJwkDocument(std::string(R"({"kty":"oct","alg":"AES-256-GCM","k":")") + kEncK + "\"}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].alg, "AES-256-GCM");
  r = ParseJwkDocument(std::string(R"({"kty":"oct","alg":"chacha20poly1305","k":")") + kEncK +
                       "\"}");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  r = ParseJwkDocument(R"({"kty":"oct","alg":"aes128gcm","k":")" + Base64Encode(Bytes(16, 1)) +
                       "\"}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0].k.size(), 16u);
}

TEST(JwkTest, RejectsMissingAlg) {
  ExpectInvalid(
      ParseJwkDocument(std::string(R"({"kty":"oct","kid":"enc-key","k":")") + kEncK + "\"}"),
      {"\"enc-key\"", "missing alg"});
  ExpectInvalid(ParseJwkDocument(std::string(R"({"keys":[{"kty":"okp","x":")") + kSignX + "\"}]}"),
                {"#0", "missing alg"});
}

TEST(JwkTest, RejectsNonStringAlg) {
  ExpectInvalid(ParseJwkDocument(std::string(R"({"kty":"oct","alg":null,"k":")") + kEncK + "\"}"),
                {"alg"});
}

TEST(JwkTest, RejectsUnsupportedAlg) {
  ExpectInvalid(ParseJwkDocument(std::string(R"({"kty":"oct","alg":"A256GCM","kid":"e","k":")") +
                                 kEncK + "\"}"),
                {"\"e\"", "A256GCM"});
  ExpectInvalid(ParseJwkDocument(std::string(R"({"kty":"okp","alg":"EdDSA","kid":"s","x":")") +
                                 kSignX + "\"}"),
                {"\"s\"", "EdDSA"});
  // An oct algorithm on an okp key and vice versa.
  ExpectInvalid(
      ParseJwkDocument(std::string(R"({"kty":"okp","alg":"aes256gcm","x":")") + kSignX + "\"}"),
      {"alg"});
  ExpectInvalid(
      ParseJwkDocument(std::string(R"({"kty":"oct","alg":"ed25519","k":")") + kEncK + "\"}"),
      {"alg"});
}

TEST(JwkTest, RejectsBadKty) {
  for (const char* kty : {"OCT", "OKP", "EC", "RSA", "", "oct "}) {
    ExpectInvalid(ParseJwkDocument(std::string(R"({"kty":")") + kty +
                                   R"(","alg":"aes256gcm","kid":"k1","k":")" + kEncK + "\"}"),
                  {"\"k1\"", "kty"});
  }
  ExpectInvalid(
      ParseJwkDocument(std::string(R"({"kty":1,"alg":"aes256gcm","k":")") + kEncK + "\"}"),
      {"kty"});
  // A set member without kty.
  ExpectInvalid(ParseJwkDocument(std::string(R"({"keys":[)") + EncJwk() +
                                 R"(,{"alg":"aes256gcm","k":")" + kEncK + "\"}]}"),
                {"#1", "missing kty"});
}

TEST(JwkTest, RejectsWrongKeyLengths) {
  ExpectInvalid(ParseJwkDocument(R"({"kty":"oct","alg":"aes256gcm","kid":"e","k":")" +
                                 Base64Encode(Bytes(16, 1)) + "\"}"),
                {"\"e\"", ".k", "expected 32 bytes, got 16"});
  ExpectInvalid(
      ParseJwkDocument(std::string(R"({"kty":"oct","alg":"aes128gcm","k":")") + kEncK + "\"}"),
      {".k", "expected 16 bytes, got 32"});
  ExpectInvalid(ParseJwkDocument(R"({"kty":"okp","alg":"ed25519","x":")" +
                                 Base64Encode(Bytes(31, 1)) + "\"}"),
                {".x", "expected 32 bytes, got 31"});
  ExpectInvalid(ParseJwkDocument(std::string(R"({"kty":"okp","alg":"ed25519","x":")") + kSignX +
                                 R"(","d":")" + Base64Encode(Bytes(33, 1)) + "\"}"),
                {".d", "expected 32 bytes, got 33"});
}

TEST(JwkTest, RejectsMissingKeyMaterial) {
  ExpectInvalid(ParseJwkDocument(R"({"kty":"oct","alg":"aes256gcm","kid":"e"})"),
                {"\"e\"", "without k"});
  ExpectInvalid(ParseJwkDocument(R"({"kty":"okp","alg":"ed25519","kid":"s"})"),
                {"\"s\"", "without x or d"});
  // okp members do not make an oct key valid, and vice versa.
  ExpectInvalid(
      ParseJwkDocument(std::string(R"({"kty":"oct","alg":"aes256gcm","x":")") + kSignX + "\"}"),
      {"without k"});
  ExpectInvalid(
      ParseJwkDocument(std::string(R"({"kty":"okp","alg":"ed25519","k":")") + kEncK + "\"}"),
      {"without x or d"});
}

TEST(JwkTest, RejectsBase64Url) {
  // Same key bytes in base64url, without and with padding (MonadKai accepts these; upstream
  // and we do not).
  ExpectInvalid(
      ParseJwkDocument(
          R"({"kty":"oct","alg":"aes256gcm","kid":"e","k":"L-xl38kCEteXk-6Tm1mzu5JvFriVibzAsgpYX2WmAgA"})"),
      {"\"e\"", ".k", "invalid base64"});
  ExpectInvalid(
      ParseJwkDocument(
          R"({"kty":"oct","alg":"aes256gcm","kid":"e","k":"L-xl38kCEteXk-6Tm1mzu5JvFriVibzAsgpYX2WmAgA="})"),
      {".k", "invalid base64"});
  ExpectInvalid(
      ParseJwkDocument(
          R"({"kty":"okp","alg":"ed25519","d":"uTKTjQL6pX1Tqb7Hpor4A1s-TdgHReQEITZWWAf7DIc="})"),
      {".d", "invalid base64"});
  // Unpadded standard base64 is rejected too.
  ExpectInvalid(
      ParseJwkDocument(
          R"({"kty":"oct","alg":"aes256gcm","k":"L+xl38kCEteXk+6Tm1mzu5JvFriVibzAsgpYX2WmAgA"})"),
      {".k", "invalid base64"});
}

TEST(JwkTest, RejectsNonStringKeyMaterial) {
  ExpectInvalid(ParseJwkDocument(R"({"kty":"oct","alg":"aes256gcm","k":[1,2]})"), {".k"});
}

TEST(JwkTest, RejectsMalformedDocuments) {
  ExpectInvalid(ParseJwkDocument(""), {"JWK"});
  ExpectInvalid(ParseJwkDocument("[]"), {"object"});
  ExpectInvalid(ParseJwkDocument(R"({"alg":"aes256gcm"})"), {"neither"});
  ExpectInvalid(ParseJwkDocument(R"({"keys":{}})"), {"array"});
  ExpectInvalid(ParseJwkDocument(R"({"keys":["x"]})"), {"#0", "object"});
  ExpectInvalid(ParseJwkDocument(std::string(R"({"kty":"oct","alg":"aes256gcm","k":")") + kEncK +
                                 R"(","k":")" + kEncK + "\"}"),
                {"duplicate"});
  ExpectInvalid(ParseJwkDocument(R"({"kty":"oct","alg":"aes256gcm","kid":5,"k":"AAAA"})"), {"kid"});
}

TEST(JwkTest, SerializesSetAndRoundTrips) {
  const std::string doc =
      "{\"keys\":[" + EncJwk(R"(,"jku":"file:///k.jwk")") + "," + SignJwk() + "]}";
  Result<std::vector<Jwk>> r = ParseJwkDocument(doc);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<const Jwk*> ptrs = {&(*r)[0], &(*r)[1]};
  std::string with_private = SerializeJwkSet(ptrs, /*include_private=*/true);
  EXPECT_EQ(with_private,
            std::string(R"({"keys":[{"kty":"oct","alg":"aes256gcm","kid":"enc-key",)") +
                R"("jku":"file:///k.jwk","k":")" + kEncK + R"("},)" +
                R"({"kty":"okp","alg":"ed25519","kid":"sign-key","x":")" + kSignX + R"(","d":")" +
                kSignD + R"("}]})");
  Result<std::vector<Jwk>> again = ParseJwkDocument(with_private);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ(Hex((*again)[0].k.span()), kEncKHex);
  EXPECT_EQ((*again)[0].jku, "file:///k.jwk");
  EXPECT_EQ(Hex((*again)[1].d.span()), kSignDHex);
  EXPECT_EQ(Hex((*again)[1].x), kSignXHex);
  WipeMemory(with_private.data(), with_private.size());

  std::string public_only = SerializeJwkSet(ptrs, /*include_private=*/false);
  EXPECT_EQ(public_only,
            std::string(R"({"keys":[{"kty":"oct","alg":"aes256gcm","kid":"enc-key",)") +
                R"("jku":"file:///k.jwk","k":")" + kEncK + R"("},)" +
                R"({"kty":"okp","alg":"ed25519","kid":"sign-key","x":")" + kSignX + R"("}]})");
  WipeMemory(public_only.data(), public_only.size());
  EXPECT_EQ(SerializeJwkSet({}, true), R"({"keys":[]})");
}

TEST(JwkTest, SerializeEscapesStringsAndOmitsEmptyX) {
  Result<std::vector<Jwk>> r = ParseJwkDocument(
      std::string(R"({"kty":"okp","alg":"ed25519","kid":"a\"b\n","d":")") + kSignD + "\"}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(SerializeJwkSet({&(*r)[0]}, true),
            std::string(R"({"keys":[{"kty":"okp","alg":"ed25519","kid":"a\"b\n","d":")") + kSignD +
                R"("}]})");
}

TEST(JwkTest, CloneIsDeep) {
  Result<std::vector<Jwk>> r = ParseJwkDocument("{\"keys\":[" + EncJwk() + "," + SignJwk() + "]}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const Jwk& original : *r) {
    Jwk copy = original.Clone();
    EXPECT_EQ(copy.kty, original.kty);
    EXPECT_EQ(copy.alg, original.alg);
    EXPECT_EQ(copy.kid, original.kid);
    EXPECT_EQ(copy.jku, original.jku);
    EXPECT_EQ(Hex(copy.k.span()), Hex(original.k.span()));
    EXPECT_EQ(Hex(copy.d.span()), Hex(original.d.span()));
    EXPECT_EQ(copy.x, original.x);
    if (!copy.k.empty()) {
      EXPECT_NE(copy.k.data(), original.k.data());
      copy.k.data()[0] ^= 1;
      EXPECT_EQ(Hex(original.k.span()), kEncKHex);
    }
    if (!copy.d.empty()) {
      EXPECT_NE(copy.d.data(), original.d.data());
      copy.d.Wipe();
      EXPECT_EQ(Hex(original.d.span()), kSignDHex);
    }
  }
}

}  // namespace
}  // namespace ctfs::format
