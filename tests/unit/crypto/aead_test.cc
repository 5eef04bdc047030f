// SPDX-License-Identifier: Apache-2.0
// Tests for crypto/aead.cc: known-answer vectors (tests/testdata/vectors/aead_vectors.txt:
// McGrew-Viega GCM test cases 1-3 and 13-15, Wycheproof and RFC 8439-derived
// ChaCha20-Poly1305 vectors, all with empty AAD), tamper detection with output wiping, exact
// in-place aliasing, the empty message, argument validation, and the multi-piece update path.
#include "crypto/aead.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "base/status.h"
#include "crypto/aead_internal.h"
#include "tests/unit/crypto/vector_file.h"

namespace ctfs {

// Readable parameter values in gtest failure messages.
void PrintTo(AeadAlg alg, std::ostream* os) { *os << AeadAlgName(alg); }

namespace crypto {
namespace {

using ::ctfs::crypto::testing::BytesToHex;
using ::ctfs::crypto::testing::HexToBytes;
using ::ctfs::crypto::testing::ReadVectorFile;

constexpr AeadAlg kAllAlgs[] = {AeadAlg::kAes128Gcm, AeadAlg::kAes256Gcm,
                                AeadAlg::kChaCha20Poly1305};

struct AeadVector {
  int line_no;
  AeadAlg alg;
  Bytes key, nonce, plaintext, ciphertext, tag;
};

std::vector<AeadVector> LoadVectors() {
  std::vector<AeadVector> out;
  for (const auto& line : ReadVectorFile("aead_vectors.txt", 6)) {
    Result<AeadAlg> alg = ParseAeadAlg(line.fields[0]);
    if (!alg.ok()) {
      ADD_FAILURE() << "line " << line.line_no << ": " << alg.status().ToString();
      continue;
    }
    out.push_back(AeadVector{line.line_no, *alg, HexToBytes(line.fields[1]),
                             HexToBytes(line.fields[2]), HexToBytes(line.fields[3]),
                             HexToBytes(line.fields[4]), HexToBytes(line.fields[5])});
  }
  return out;
}

// Deterministic filler so failures reproduce.
Bytes Pattern(size_t len, uint8_t seed) {
  Bytes b(len);
  uint32_t x = 0x9e3779b9u ^ seed;
  for (auto& v : b) {
    x = x * 1664525u + 1013904223u;
    v = static_cast<uint8_t>(x >> 24);
  }
  return b;
}

bool AllZero(ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t v) { return v == 0; });
}

std::string Describe(const AeadVector& v) {
  return std::string(AeadAlgName(v.alg)) + " (aead_vectors.txt line " + std::to_string(v.line_no) +
         ")";
}

// A sealed random message under a fixed key and nonce, for the tamper tests.
struct Sealed {
  AeadAlg alg = AeadAlg::kAes128Gcm;
  Bytes key, nonce, plaintext, ciphertext, tag;
};

Sealed SealPattern(AeadAlg alg, size_t len) {
  Sealed s;
  s.alg = alg;
  s.key = Pattern(AeadKeyLen(alg), 1);
  s.nonce = Pattern(kAeadNonceLen, 2);
  s.plaintext = Pattern(len, 3);
  s.ciphertext.resize(len);
  s.tag.resize(kAeadTagLen);
  EXPECT_TRUE(AeadSeal(alg, s.key, s.nonce, s.plaintext, s.ciphertext, s.tag).ok());
  return s;
}

// ExpectOpenFailsAndWipes opens with the given (possibly tampered) inputs into a buffer
// pre-filled with 0xAA and expects DataLoss("authentication failed") and an all-zero buffer.
void ExpectOpenFailsAndWipes(AeadAlg alg, ByteSpan key, ByteSpan nonce, ByteSpan ciphertext,
                             ByteSpan tag, const std::string& what) {
  Bytes out(ciphertext.size(), 0xAA);
  Status st = AeadOpen(alg, key, nonce, ciphertext, tag, out);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << what << ": " << st.ToString();
  EXPECT_EQ(st.message(), "authentication failed") << what;
  EXPECT_TRUE(AllZero(out)) << what << ": output not wiped";
}

// --- Known answers ------------------------------------------------------------------------

TEST(AeadVectorsTest, FileHasEnoughVectorsForEveryAlgorithm) {
  const std::vector<AeadVector> vectors = LoadVectors();
  EXPECT_GE(vectors.size(), 11u);
  for (AeadAlg alg : kAllAlgs) {
    const auto n = std::count_if(vectors.begin(), vectors.end(),
                                 [alg](const AeadVector& v) { return v.alg == alg; });
    EXPECT_GE(n, 3) << AeadAlgName(alg);
  }
  // At least one empty message per algorithm: its tag alone must be right.
  for (AeadAlg alg : kAllAlgs) {
    EXPECT_TRUE(std::any_of(vectors.begin(), vectors.end(), [alg](const AeadVector& v) {
      return v.alg == alg && v.plaintext.empty();
    })) << AeadAlgName(alg);
  }
}

TEST(AeadVectorsTest, SealProducesExpectedCiphertextAndTag) {
  for (const AeadVector& v : LoadVectors()) {
    Bytes ciphertext(v.plaintext.size(), 0xEE);
    Bytes tag(kAeadTagLen, 0xEE);
    ASSERT_TRUE(AeadSeal(v.alg, v.key, v.nonce, v.plaintext, ciphertext, tag).ok()) << Describe(v);
    EXPECT_EQ(BytesToHex(ciphertext), BytesToHex(v.ciphertext)) << Describe(v);
    EXPECT_EQ(BytesToHex(tag), BytesToHex(v.tag)) << Describe(v);
  }
}

TEST(AeadVectorsTest, OpenRecoversPlaintext) {
  for (const AeadVector& v : LoadVectors()) {
    Bytes plaintext(v.ciphertext.size(), 0xEE);
    Status st = AeadOpen(v.alg, v.key, v.nonce, v.ciphertext, v.tag, plaintext);
    ASSERT_TRUE(st.ok()) << Describe(v) << ": " << st.ToString();
    EXPECT_EQ(BytesToHex(plaintext), BytesToHex(v.plaintext)) << Describe(v);
  }
}

TEST(AeadVectorsTest, InPlaceSealAndOpen) {
  for (const AeadVector& v : LoadVectors()) {
    Bytes buf = v.plaintext;
    Bytes tag(kAeadTagLen);
    ASSERT_TRUE(AeadSeal(v.alg, v.key, v.nonce, buf, buf, tag).ok()) << Describe(v);
    EXPECT_EQ(BytesToHex(buf), BytesToHex(v.ciphertext)) << Describe(v);
    EXPECT_EQ(BytesToHex(tag), BytesToHex(v.tag)) << Describe(v);
    ASSERT_TRUE(AeadOpen(v.alg, v.key, v.nonce, buf, tag, buf).ok()) << Describe(v);
    EXPECT_EQ(BytesToHex(buf), BytesToHex(v.plaintext)) << Describe(v);
  }
}

TEST(AeadVectorsTest, EveryTagBitIsChecked) {
  for (const AeadVector& v : LoadVectors()) {
    for (size_t bit = 0; bit < kAeadTagLen * 8; ++bit) {
      Bytes tag = v.tag;
      tag[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
      ExpectOpenFailsAndWipes(v.alg, v.key, v.nonce, v.ciphertext, tag,
                              Describe(v) + " tag bit " + std::to_string(bit));
    }
  }
}

// --- Tampering ----------------------------------------------------------------------------

class AeadAlgTest : public ::testing::TestWithParam<AeadAlg> {};

INSTANTIATE_TEST_SUITE_P(AllAlgs, AeadAlgTest, ::testing::ValuesIn(kAllAlgs),
                         [](const ::testing::TestParamInfo<AeadAlg>& param_info) {
                           return std::string(AeadAlgName(param_info.param));
                         });

TEST_P(AeadAlgTest, RoundTrip) {
  const Sealed s = SealPattern(GetParam(), 1000);
  EXPECT_NE(s.ciphertext, s.plaintext);
  Bytes out(s.ciphertext.size());
  ASSERT_TRUE(AeadOpen(s.alg, s.key, s.nonce, s.ciphertext, s.tag, out).ok());
  EXPECT_EQ(out, s.plaintext);
}

TEST_P(AeadAlgTest, FlippedCiphertextByteFailsAndWipes) {
  const Sealed s = SealPattern(GetParam(), 97);
  for (size_t i = 0; i < s.ciphertext.size(); ++i) {
    Bytes ciphertext = s.ciphertext;
    ciphertext[i] ^= 0x01;
    ExpectOpenFailsAndWipes(s.alg, s.key, s.nonce, ciphertext, s.tag,
                            "ciphertext byte " + std::to_string(i));
  }
}

TEST_P(AeadAlgTest, FlippedTagByteFailsAndWipes) {
  const Sealed s = SealPattern(GetParam(), 97);
  for (size_t i = 0; i < s.tag.size(); ++i) {
    Bytes tag = s.tag;
    tag[i] ^= 0x80;
    ExpectOpenFailsAndWipes(s.alg, s.key, s.nonce, s.ciphertext, tag,
                            "tag byte " + std::to_string(i));
  }
}

TEST_P(AeadAlgTest, FlippedNonceByteFailsAndWipes) {
  const Sealed s = SealPattern(GetParam(), 97);
  for (size_t i = 0; i < s.nonce.size(); ++i) {
    Bytes nonce = s.nonce;
    nonce[i] ^= 0x01;
    ExpectOpenFailsAndWipes(s.alg, s.key, nonce, s.ciphertext, s.tag,
                            "nonce byte " + std::to_string(i));
  }
}

TEST_P(AeadAlgTest, FlippedKeyByteFailsAndWipes) {
  const Sealed s = SealPattern(GetParam(), 97);
  for (size_t i = 0; i < s.key.size(); ++i) {
    Bytes key = s.key;
    key[i] ^= 0x01;
    ExpectOpenFailsAndWipes(s.alg, key, s.nonce, s.ciphertext, s.tag,
                            "key byte " + std::to_string(i));
  }
}

TEST_P(AeadAlgTest, TruncatedOrExtendedCiphertextFails) {
  const Sealed s = SealPattern(GetParam(), 97);
  ExpectOpenFailsAndWipes(s.alg, s.key, s.nonce, ByteSpan(s.ciphertext).first(96), s.tag,
                          "truncated");
  Bytes longer = s.ciphertext;
  longer.push_back(0);
  ExpectOpenFailsAndWipes(s.alg, s.key, s.nonce, longer, s.tag, "extended");
}

TEST_P(AeadAlgTest, TamperedInPlaceOpenWipesBuffer) {
  const Sealed s = SealPattern(GetParam(), 256);
  Bytes buf = s.ciphertext;
  buf[100] ^= 0x40;
  Status st = AeadOpen(s.alg, s.key, s.nonce, buf, s.tag, buf);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(AllZero(buf));
}

TEST_P(AeadAlgTest, TagFromAnotherAlgorithmFails) {
  const AeadAlg alg = GetParam();
  const Sealed s = SealPattern(alg, 64);
  for (AeadAlg other : kAllAlgs) {
    if (other == alg || AeadKeyLen(other) != AeadKeyLen(alg)) continue;
    ExpectOpenFailsAndWipes(other, s.key, s.nonce, s.ciphertext, s.tag,
                            std::string("opened as ") + std::string(AeadAlgName(other)));
  }
}

// --- The empty message --------------------------------------------------------------------

TEST_P(AeadAlgTest, EmptyMessageHasACheckedTag) {
  const AeadAlg alg = GetParam();
  const Bytes key = Pattern(AeadKeyLen(alg), 4);
  const Bytes nonce = Pattern(kAeadNonceLen, 5);
  // Default-constructed spans: data() is null, as a caller's empty chunk may be.
  Bytes tag(kAeadTagLen, 0);
  ASSERT_TRUE(AeadSeal(alg, key, nonce, ByteSpan(), MutableByteSpan(), tag).ok());
  EXPECT_FALSE(AllZero(tag));
  EXPECT_TRUE(AeadOpen(alg, key, nonce, ByteSpan(), tag, MutableByteSpan()).ok());

  Bytes bad_tag = tag;
  bad_tag[15] ^= 1;
  Status st = AeadOpen(alg, key, nonce, ByteSpan(), bad_tag, MutableByteSpan());
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();

  Bytes other_nonce = nonce;
  other_nonce[0] ^= 1;
  st = AeadOpen(alg, key, other_nonce, ByteSpan(), tag, MutableByteSpan());
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
}

// --- Argument validation ------------------------------------------------------------------

TEST_P(AeadAlgTest, WrongLengthsAreInvalidArgument) {
  const Sealed s = SealPattern(GetParam(), 32);
  const size_t key_len = AeadKeyLen(s.alg);
  Bytes out(s.plaintext.size());
  Bytes tag(kAeadTagLen);
  auto seal = [&](ByteSpan key, ByteSpan nonce, ByteSpan in, MutableByteSpan o, MutableByteSpan t) {
    return AeadSeal(s.alg, key, nonce, in, o, t).code();
  };
  auto open = [&](ByteSpan key, ByteSpan nonce, ByteSpan in, ByteSpan t, MutableByteSpan o) {
    return AeadOpen(s.alg, key, nonce, in, t, o).code();
  };
  constexpr StatusCode kInvalid = StatusCode::kInvalidArgument;

  for (size_t bad_key_len : {size_t{0}, size_t{15}, size_t{16}, size_t{17}, size_t{24}, size_t{31},
                             size_t{32}, size_t{33}, size_t{64}}) {
    if (bad_key_len == key_len) continue;
    const Bytes bad_key(bad_key_len, 7);
    EXPECT_EQ(seal(bad_key, s.nonce, s.plaintext, out, tag), kInvalid) << bad_key_len;
    EXPECT_EQ(open(bad_key, s.nonce, s.ciphertext, s.tag, out), kInvalid) << bad_key_len;
  }
  for (size_t bad_nonce_len : {0, 8, 11, 13, 16}) {
    const Bytes bad_nonce(bad_nonce_len, 7);
    EXPECT_EQ(seal(s.key, bad_nonce, s.plaintext, out, tag), kInvalid) << bad_nonce_len;
    EXPECT_EQ(open(s.key, bad_nonce, s.ciphertext, s.tag, out), kInvalid) << bad_nonce_len;
  }
  for (size_t bad_tag_len : {0, 4, 12, 15, 17, 32}) {
    Bytes bad_tag(bad_tag_len, 7);
    EXPECT_EQ(seal(s.key, s.nonce, s.plaintext, out, bad_tag), kInvalid) << bad_tag_len;
    EXPECT_EQ(open(s.key, s.nonce, s.ciphertext, bad_tag, out), kInvalid) << bad_tag_len;
  }
  for (size_t bad_out_len : {size_t{0}, s.plaintext.size() - 1, s.plaintext.size() + 1}) {
    Bytes bad_out(bad_out_len);
    EXPECT_EQ(seal(s.key, s.nonce, s.plaintext, bad_out, tag), kInvalid) << bad_out_len;
    EXPECT_EQ(open(s.key, s.nonce, s.ciphertext, s.tag, bad_out), kInvalid) << bad_out_len;
  }
}

TEST_P(AeadAlgTest, PartialOverlapIsInvalidArgument) {
  const Sealed s = SealPattern(GetParam(), 64);
  Bytes buf(80);
  Bytes tag(kAeadTagLen);
  MutableByteSpan whole(buf);
  // Input at offset 0, output at offset 8: overlapping but not the same buffer.
  EXPECT_EQ(AeadSeal(s.alg, s.key, s.nonce, whole.first(64), whole.subspan(8, 64), tag).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AeadOpen(s.alg, s.key, s.nonce, whole.subspan(8, 64), s.tag, whole.first(64)).code(),
            StatusCode::kInvalidArgument);
  // Adjacent but disjoint is fine.
  EXPECT_TRUE(AeadSeal(s.alg, s.key, s.nonce, whole.first(32), whole.subspan(32, 32), tag).ok());
}

TEST(AeadTest, UnknownAlgorithmIsInvalidArgument) {
  const auto bogus = static_cast<AeadAlg>(99);
  const Bytes key(AeadKeyLen(bogus), 1);
  const Bytes nonce(kAeadNonceLen, 2);
  Bytes data(16), tag(kAeadTagLen);
  EXPECT_EQ(AeadSeal(bogus, key, nonce, data, data, tag).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AeadOpen(bogus, key, nonce, data, tag, data).code(), StatusCode::kInvalidArgument);
}

// --- Large inputs and the multi-piece path ------------------------------------------------

constexpr size_t kLargeLen = 3 * 1024 * 1024 + 5;  // 3 MiB plus a partial block.

TEST_P(AeadAlgTest, LargeRoundTripInPlace) {
  const AeadAlg alg = GetParam();
  const Bytes key = Pattern(AeadKeyLen(alg), 6);
  const Bytes nonce = Pattern(kAeadNonceLen, 7);
  const Bytes plaintext = Pattern(kLargeLen, 8);
  Bytes buf = plaintext;
  Bytes tag(kAeadTagLen);
  ASSERT_TRUE(AeadSeal(alg, key, nonce, buf, buf, tag).ok());
  EXPECT_NE(buf, plaintext);
  ASSERT_TRUE(AeadOpen(alg, key, nonce, buf, tag, buf).ok());
  EXPECT_EQ(buf, plaintext);

  // Tamper with the very last byte: the whole 3 MiB must be wiped.
  ASSERT_TRUE(AeadSeal(alg, key, nonce, buf, buf, tag).ok());
  buf.back() ^= 1;
  EXPECT_EQ(AeadOpen(alg, key, nonce, buf, tag, buf).code(), StatusCode::kDataLoss);
  EXPECT_TRUE(AllZero(buf));
}

TEST_P(AeadAlgTest, PiecewiseUpdatesMatchOneShot) {
  const AeadAlg alg = GetParam();
  const Bytes key = Pattern(AeadKeyLen(alg), 9);
  const Bytes nonce = Pattern(kAeadNonceLen, 10);
  const Bytes plaintext = Pattern(kLargeLen, 11);
  Bytes one_shot(kLargeLen), one_shot_tag(kAeadTagLen);
  ASSERT_TRUE(AeadSeal(alg, key, nonce, plaintext, one_shot, one_shot_tag).ok());

  // Block-aligned, unaligned and odd piece sizes all give the same bytes both ways.
  for (size_t piece_len : {size_t{1000}, size_t{4097}, size_t{65536}, size_t{1} << 20}) {
    Bytes ciphertext(kLargeLen), tag(kAeadTagLen);
    ASSERT_TRUE(
        internal::AeadSealInPieces(alg, key, nonce, plaintext, ciphertext, tag, piece_len).ok())
        << piece_len;
    EXPECT_TRUE(ciphertext == one_shot) << piece_len;
    EXPECT_EQ(tag, one_shot_tag) << piece_len;

    Bytes opened(kLargeLen);
    ASSERT_TRUE(
        internal::AeadOpenInPieces(alg, key, nonce, one_shot, one_shot_tag, opened, piece_len).ok())
        << piece_len;
    EXPECT_TRUE(opened == plaintext) << piece_len;

    Bytes bad_tag = one_shot_tag;
    bad_tag[0] ^= 1;
    EXPECT_EQ(
        internal::AeadOpenInPieces(alg, key, nonce, one_shot, bad_tag, opened, piece_len).code(),
        StatusCode::kDataLoss);
    EXPECT_TRUE(AllZero(opened)) << piece_len;
  }
}

TEST(AeadDeathTest, ZeroPieceLengthIsABug) {
  const Bytes key(16), nonce(kAeadNonceLen);
  Bytes data(4), tag(kAeadTagLen);
  EXPECT_DEATH(
      (void)internal::AeadSealInPieces(AeadAlg::kAes128Gcm, key, nonce, data, data, tag, 0),
      "CTFS_CHECK");
}

// --- Thread safety ------------------------------------------------------------------------

TEST(AeadTest, ConcurrentCallsAgree) {
  constexpr int kThreads = 8;
  constexpr int kIterations = 50;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      const AeadAlg alg = kAllAlgs[t % 3];
      const Bytes key = Pattern(AeadKeyLen(alg), static_cast<uint8_t>(t));
      const Bytes nonce = Pattern(kAeadNonceLen, static_cast<uint8_t>(t + 100));
      for (int i = 0; i < kIterations; ++i) {
        const Bytes plaintext = Pattern(4096 + i, static_cast<uint8_t>(i));
        Bytes buf = plaintext;
        Bytes tag(kAeadTagLen);
        if (!AeadSeal(alg, key, nonce, buf, buf, tag).ok() ||
            !AeadOpen(alg, key, nonce, buf, tag, buf).ok() || buf != plaintext) {
          ++failures[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace crypto
}  // namespace ctfs
