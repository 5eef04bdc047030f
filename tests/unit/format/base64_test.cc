// SPDX-License-Identifier: Apache-2.0
// Tests of strict standard base64: the RFC 4648 §10 vectors, round trips at every length mod 3,
// and one rejection per deviation (length, alphabet, whitespace, base64url, padding placement,
// missing padding, non-zero unused bits). Base64DecodeSecret must agree with Base64Decode.
#include "format/base64.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ctfs::format {
namespace {

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

struct Vector {
  const char* plain;
  const char* encoded;
};

// RFC 4648 §10 test vectors.
constexpr Vector kRfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

TEST(Base64Test, EncodesRfc4648Vectors) {
  for (const Vector& v : kRfc4648) EXPECT_EQ(Base64Encode(B(v.plain)), v.encoded) << v.plain;
}

TEST(Base64Test, DecodesRfc4648Vectors) {
  for (const Vector& v : kRfc4648) {
    Result<Bytes> d = Base64Decode(v.encoded);
    ASSERT_TRUE(d.ok()) << v.encoded << ": " << d.status().ToString();
    EXPECT_EQ(*d, B(v.plain)) << v.encoded;
  }
}

TEST(Base64Test, UsesStandardAlphabetForHighBytes) {
  // 0xfb 0xff: the two characters where base64url differs ('+' vs '-', '/' vs '_').
  EXPECT_EQ(Base64Encode(Bytes{0xfb, 0xff}), "+/8=");
  Result<Bytes> d = Base64Decode("+/8=");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, (Bytes{0xfb, 0xff}));
}

TEST(Base64Test, RoundTripsAllLengthsAndByteValues) {
  for (size_t len = 0; len <= 70; ++len) {
    Bytes data(len);
    for (size_t i = 0; i < len; ++i) data[i] = static_cast<uint8_t>(i * 37 + len * 11 + 0x80);
    const std::string text = Base64Encode(data);
    EXPECT_EQ(text.size(), (len + 2) / 3 * 4);
    Result<Bytes> d = Base64Decode(text);
    ASSERT_TRUE(d.ok()) << text;
    EXPECT_EQ(*d, data);
    Result<SecretBytes> s = Base64DecodeSecret(text);
    ASSERT_TRUE(s.ok()) << text;
    EXPECT_EQ(Bytes(s->span().begin(), s->span().end()), data);
  }
}

TEST(Base64Test, KeyLengthsFromTheFormatDoc) {
  // cryptotensors-format.md §1.4: 32 B -> 44 chars, 16 B -> 24 chars (==), 12 B -> 16 chars.
  EXPECT_EQ(Base64Encode(Bytes(32)).size(), 44u);
  EXPECT_EQ(Base64Encode(Bytes(16)).substr(22), "==");
  EXPECT_EQ(Base64Encode(Bytes(12)).find('='), std::string::npos);
  EXPECT_EQ(Base64Encode(Bytes(64)).size(), 88u);
}

void ExpectRejected(std::string_view text) {
  Result<Bytes> d = Base64Decode(text);
  ASSERT_FALSE(d.ok()) << "accepted: \"" << text << "\"";
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("invalid base64"), std::string::npos) << d.status().message();
  Result<SecretBytes> s = Base64DecodeSecret(text);
  ASSERT_FALSE(s.ok()) << "secret decoder accepted: \"" << text << "\"";
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

TEST(Base64Test, RejectsBadLength) {
  ExpectRejected("Z");
  ExpectRejected("Zm9");
  ExpectRejected("Zm9vY");
}

TEST(Base64Test, RejectsMissingPadding) {
  ExpectRejected("Zg");
  ExpectRejected("Zm8");
  ExpectRejected("Zg=");
}

TEST(Base64Test, RejectsWhitespace) {
  ExpectRejected("Zm9v\n");
  ExpectRejected(" Zm9v");
  ExpectRejected("Zm 9v");
  ExpectRejected("Zm9v\r\nZm9v");
  ExpectRejected("Zm9vYg==\n");
  ExpectRejected("Zm\t9");
}

TEST(Base64Test, RejectsBase64Url) {
  ExpectRejected("-_8=");
  ExpectRejected("+_8=");
  ExpectRejected("-/8=");
}

TEST(Base64Test, RejectsOtherCharacters) {
  ExpectRejected("Zm9v*A==");
  ExpectRejected(std::string_view("Zm\0v", 4));
  ExpectRejected("Zm9\xc3\xa9");
  ExpectRejected("Zm.v");
}

TEST(Base64Test, RejectsMisplacedPadding) {
  ExpectRejected("====");
  ExpectRejected("Z===");
  ExpectRejected("=Zm9");
  ExpectRejected("Zm=v");
  ExpectRejected("Zg==Zm9v");
  ExpectRejected("Zm9v====");
  ExpectRejected("Zg=A");
}

TEST(Base64Test, RejectsNonZeroUnusedBits) {
  // "Zg==" and "Zm8=" are the canonical spellings; these differ only in the unused bits.
  ExpectRejected("Zh==");
  ExpectRejected("Zv==");
  ExpectRejected("Zm9=");
  ExpectRejected("Zm//8=");  // also bad length
  ExpectRejected("+/9=");
}

TEST(Base64Test, ErrorDoesNotEchoInput) {
  Result<Bytes> d = Base64Decode("c2VjcmV0!!!!");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message().find("c2VjcmV0"), std::string::npos) << d.status().message();
}

}  // namespace
}  // namespace ctfs::format
