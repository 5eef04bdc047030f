// SPDX-License-Identifier: Apache-2.0
// keys/master_key.h: a JWK's own bytes go through crypto::Aead*; a token key (Jwk::token) is
// asked to do the AEAD itself, and only for the algorithm it does.
#include "keys/master_key.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "crypto/aead.h"

namespace ctfs::keys {
namespace {

// A token stand-in that does AES-256-GCM with a key it keeps, and counts its calls.
class FakeToken final : public TokenKey {
 public:
  FakeToken() : key_(32) {
    for (size_t i = 0; i < key_.size(); ++i) key_.data()[i] = static_cast<uint8_t>(i * 7 + 1);
  }
  std::string Describe() const override { return "fake token key"; }
  AeadAlg alg() const override { return AeadAlg::kAes256Gcm; }
  Status Unwrap(ByteSpan iv, ByteSpan wrapped, ByteSpan tag, MutableByteSpan dek) const override {
    ++unwraps;
    return crypto::AeadOpen(AeadAlg::kAes256Gcm, key_.span(), iv, wrapped, tag, dek);
  }
  Status Wrap(ByteSpan iv, ByteSpan dek, MutableByteSpan wrapped,
              MutableByteSpan tag) const override {
    ++wraps;
    return crypto::AeadSeal(AeadAlg::kAes256Gcm, key_.span(), iv, dek, wrapped, tag);
  }
  const SecretBytes& key() const { return key_; }
  mutable int unwraps = 0, wraps = 0;

 private:
  SecretBytes key_;
};

TEST(MasterKeyTest, TokenKeyWrapsInsideTheTokenAndMatchesTheJwkPath) {
  auto token = std::make_shared<FakeToken>();
  format::Jwk in_token;
  in_token.kty = "oct";
  in_token.alg = "aes256gcm";
  in_token.token = token;
  format::Jwk as_bytes;
  as_bytes.kty = "oct";
  as_bytes.alg = "aes256gcm";
  as_bytes.k = token->key().Clone();
  EXPECT_TRUE(IsMasterKey(in_token));
  EXPECT_TRUE(IsMasterKey(as_bytes));
  format::Jwk empty;
  empty.kty = "oct";
  EXPECT_FALSE(IsMasterKey(empty));

  const Bytes iv(12, 0x42);
  Bytes dek(32, 0x17), wrapped(32), tag(16);
  ASSERT_TRUE(WrapDataKey(in_token, AeadAlg::kAes256Gcm, iv, dek, wrapped, tag).ok());
  EXPECT_EQ(token->wraps, 1);
  // The JWK path unwraps what the token wrapped: the same AEAD, bit for bit.
  Bytes out(32);
  ASSERT_TRUE(UnwrapDataKey(as_bytes, AeadAlg::kAes256Gcm, iv, wrapped, tag, out).ok());
  EXPECT_EQ(out, dek);
  EXPECT_EQ(token->unwraps, 0);
  std::fill(out.begin(), out.end(), 0);
  ASSERT_TRUE(UnwrapDataKey(in_token, AeadAlg::kAes256Gcm, iv, wrapped, tag, out).ok());
  EXPECT_EQ(out, dek);
  EXPECT_EQ(token->unwraps, 1);
  // A flipped tag bit: DataLoss from the token, the output wiped.
  tag[0] ^= 1;
  Status st = UnwrapDataKey(in_token, AeadAlg::kAes256Gcm, iv, wrapped, tag, out);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_EQ(out, Bytes(32, 0));
}

TEST(MasterKeyTest, TokenKeyRefusesAnotherAlgorithm) {
  auto token = std::make_shared<FakeToken>();
  format::Jwk key;
  key.kty = "oct";
  key.alg = "aes256gcm";
  key.token = token;
  const Bytes iv(12, 1);
  Bytes dek(32, 2), wrapped(32), tag(16), out(32);
  Status st = WrapDataKey(key, AeadAlg::kChaCha20Poly1305, iv, dek, wrapped, tag);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("fake token key does aes256gcm, not chacha20poly1305"),
            std::string::npos)
      << st.message();
  st = UnwrapDataKey(key, AeadAlg::kAes128Gcm, iv, wrapped, tag, out);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(token->wraps + token->unwraps, 0);
  // Clone shares the token (no bytes to copy).
  format::Jwk copy = key.Clone();
  EXPECT_EQ(copy.token, key.token);
  EXPECT_TRUE(copy.k.empty());
}

}  // namespace
}  // namespace ctfs::keys
