// SPDX-License-Identifier: Apache-2.0
// Tests for crypto/sha256.cc: NIST FIPS 180-2 / NIST example vectors from
// tests/testdata/vectors/sha256_vectors.txt, plus FIPS 180-2 B.3 (one million 'a').
#include "crypto/sha256.h"

#include <gtest/gtest.h>

#include <string>

#include "base/bytes.h"
#include "tests/unit/crypto/vector_file.h"

namespace ctfs::crypto {
namespace {

using ::ctfs::crypto::testing::HexToBytes;
using ::ctfs::crypto::testing::ReadVectorFile;

TEST(Sha256Test, NistVectors) {
  const auto vectors = ReadVectorFile("sha256_vectors.txt", 2);
  ASSERT_GE(vectors.size(), 4u);
  for (const auto& v : vectors) {
    EXPECT_EQ(Sha256Hex(HexToBytes(v.fields[0])), v.fields[1])
        << "sha256_vectors.txt line " << v.line_no;
  }
}

TEST(Sha256Test, OneMillionA) {
  // FIPS 180-2 Appendix B.3.
  const std::string message(1000000, 'a');
  EXPECT_EQ(Sha256Hex(AsBytes(message)),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, EmptySpanWithNullData) {
  EXPECT_EQ(Sha256Hex(ByteSpan()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Test, OutputIsLowercaseHex) {
  const std::string hex = Sha256Hex(AsBytes("abc"));
  ASSERT_EQ(hex.size(), 64u);
  for (char c : hex) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << c;
}

}  // namespace
}  // namespace ctfs::crypto
