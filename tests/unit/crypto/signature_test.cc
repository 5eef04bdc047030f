// SPDX-License-Identifier: Apache-2.0
// Tests for crypto/signature.cc: the RFC 8032 §7.1 Ed25519 vectors (TEST 1, 2, 3, SHA(abc))
// from tests/testdata/vectors/ed25519_vectors.txt (public key derivation, exact signatures,
// verification), bit flips in message, signature and public key, a non-canonical S, and
// length validation.
#include "crypto/signature.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/secret_bytes.h"
#include "base/status.h"
#include "tests/unit/crypto/vector_file.h"

namespace ctfs::crypto {
namespace {

using ::ctfs::crypto::testing::BytesToHex;
using ::ctfs::crypto::testing::HexToBytes;
using ::ctfs::crypto::testing::ReadVectorFile;

struct Ed25519Vector {
  int line_no;
  Bytes seed, public_key, message, signature;
};

std::vector<Ed25519Vector> LoadVectors() {
  std::vector<Ed25519Vector> out;
  for (const auto& line : ReadVectorFile("ed25519_vectors.txt", 4)) {
    out.push_back(Ed25519Vector{line.line_no, HexToBytes(line.fields[0]),
                                HexToBytes(line.fields[1]), HexToBytes(line.fields[2]),
                                HexToBytes(line.fields[3])});
  }
  return out;
}

std::string Where(const Ed25519Vector& v) {
  return "ed25519_vectors.txt line " + std::to_string(v.line_no);
}

void ExpectDataLoss(const Status& st, const std::string& what) {
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << what << ": " << st.ToString();
  EXPECT_EQ(st.message(), "signature verification failed") << what;
}

TEST(Ed25519VectorsTest, FileHasAllRfc8032Vectors) {
  const auto vectors = LoadVectors();
  ASSERT_GE(vectors.size(), 4u);
  for (const auto& v : vectors) {
    EXPECT_EQ(v.seed.size(), kEd25519SeedLen) << Where(v);
    EXPECT_EQ(v.public_key.size(), kEd25519PublicKeyLen) << Where(v);
    EXPECT_EQ(v.signature.size(), kEd25519SignatureLen) << Where(v);
  }
}

TEST(Ed25519VectorsTest, PublicKeyFromSeed) {
  for (const auto& v : LoadVectors()) {
    Result<Ed25519PublicKey> pk = Ed25519PublicKeyFromSeed(SecretBytes::CopyFrom(v.seed));
    ASSERT_TRUE(pk.ok()) << Where(v) << ": " << pk.status().ToString();
    EXPECT_EQ(BytesToHex(*pk), BytesToHex(v.public_key)) << Where(v);
  }
}

TEST(Ed25519VectorsTest, SignIsExact) {
  for (const auto& v : LoadVectors()) {
    Result<Ed25519Signature> sig = Ed25519Sign(SecretBytes::CopyFrom(v.seed), v.message);
    ASSERT_TRUE(sig.ok()) << Where(v) << ": " << sig.status().ToString();
    EXPECT_EQ(BytesToHex(*sig), BytesToHex(v.signature)) << Where(v);
  }
}

TEST(Ed25519VectorsTest, VerifyAccepts) {
  for (const auto& v : LoadVectors()) {
    Status st = Ed25519Verify(v.public_key, v.message, v.signature);
    EXPECT_TRUE(st.ok()) << Where(v) << ": " << st.ToString();
  }
}

TEST(Ed25519VectorsTest, FlippedMessageBitFails) {
  for (const auto& v : LoadVectors()) {
    if (v.message.empty()) {
      // TEST 1 signs the empty message: any appended byte must fail.
      ExpectDataLoss(Ed25519Verify(v.public_key, Bytes{0x00}, v.signature), Where(v));
      continue;
    }
    for (size_t bit = 0; bit < v.message.size() * 8; ++bit) {
      Bytes message = v.message;
      message[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      ExpectDataLoss(Ed25519Verify(v.public_key, message, v.signature),
                     Where(v) + " message bit " + std::to_string(bit));
    }
    // Truncation too.
    ExpectDataLoss(
        Ed25519Verify(v.public_key, ByteSpan(v.message).first(v.message.size() - 1), v.signature),
        Where(v) + " truncated message");
  }
}

TEST(Ed25519VectorsTest, FlippedSignatureBitFails) {
  for (const auto& v : LoadVectors()) {
    for (size_t bit = 0; bit < kEd25519SignatureLen * 8; ++bit) {
      Bytes signature = v.signature;
      signature[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      ExpectDataLoss(Ed25519Verify(v.public_key, v.message, signature),
                     Where(v) + " signature bit " + std::to_string(bit));
    }
  }
}

TEST(Ed25519VectorsTest, FlippedPublicKeyBitFails) {
  for (const auto& v : LoadVectors()) {
    for (size_t bit = 0; bit < kEd25519PublicKeyLen * 8; ++bit) {
      Bytes public_key = v.public_key;
      public_key[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      ExpectDataLoss(Ed25519Verify(public_key, v.message, v.signature),
                     Where(v) + " public key bit " + std::to_string(bit));
    }
  }
}

TEST(Ed25519VectorsTest, NonCanonicalSIsRejected) {
  // RFC 8032 §5.1.7 requires 0 <= S < L. S + L verifies under the group equation but must be
  // rejected (signature malleability). L, little-endian:
  const Bytes group_order =
      HexToBytes("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
  for (const auto& v : LoadVectors()) {
    Bytes signature = v.signature;
    unsigned carry = 0;
    for (size_t i = 0; i < 32; ++i) {
      const unsigned sum = signature[32 + i] + group_order[i] + carry;
      signature[32 + i] = static_cast<uint8_t>(sum);
      carry = sum >> 8;
    }
    ASSERT_EQ(carry, 0u) << Where(v);
    ExpectDataLoss(Ed25519Verify(v.public_key, v.message, signature), Where(v) + " S+L");
  }
}

TEST(Ed25519Test, SignatureFromAnotherKeyFails) {
  const auto vectors = LoadVectors();
  ASSERT_GE(vectors.size(), 2u);
  ExpectDataLoss(Ed25519Verify(vectors[1].public_key, vectors[0].message, vectors[0].signature),
                 "key of TEST 2, signature of TEST 1");
}

TEST(Ed25519Test, SignVerifyRoundTripLargeMessage) {
  SecretBytes seed(kEd25519SeedLen);
  for (size_t i = 0; i < seed.size(); ++i) seed.data()[i] = static_cast<uint8_t>(i * 7 + 3);
  Bytes message(1 << 20);
  for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<uint8_t>(i ^ (i >> 8));
  Result<Ed25519PublicKey> pk = Ed25519PublicKeyFromSeed(seed);
  ASSERT_TRUE(pk.ok());
  Result<Ed25519Signature> sig = Ed25519Sign(seed, message);
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(Ed25519Verify(*pk, message, *sig).ok());
  message[message.size() / 2] ^= 1;
  ExpectDataLoss(Ed25519Verify(*pk, message, *sig), "tampered 1 MiB message");
}

TEST(Ed25519Test, WrongLengthsAreInvalidArgument) {
  const auto vectors = LoadVectors();
  ASSERT_FALSE(vectors.empty());
  const Ed25519Vector& v = vectors[0];
  for (size_t len : {0, 16, 31, 33, 64}) {
    const Bytes public_key(len, 1);
    EXPECT_EQ(Ed25519Verify(public_key, v.message, v.signature).code(),
              StatusCode::kInvalidArgument)
        << "public key " << len;
  }
  for (size_t len : {0, 32, 63, 65, 128}) {
    const Bytes signature(len, 1);
    EXPECT_EQ(Ed25519Verify(v.public_key, v.message, signature).code(),
              StatusCode::kInvalidArgument)
        << "signature " << len;
  }
  for (size_t len : {0, 16, 31, 33, 64}) {
    SecretBytes seed(len);
    EXPECT_EQ(Ed25519Sign(seed, v.message).status().code(), StatusCode::kInvalidArgument)
        << "seed " << len;
    EXPECT_EQ(Ed25519PublicKeyFromSeed(seed).status().code(), StatusCode::kInvalidArgument)
        << "seed " << len;
  }
}

}  // namespace
}  // namespace ctfs::crypto
