// SPDX-License-Identifier: Apache-2.0
// Tests for crypto/constant_time.cc: equality semantics of ConstantTimeEquals (timing is not
// measured here; it rests on CRYPTO_memcmp).
#include "crypto/constant_time.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "base/bytes.h"

namespace ctfs::crypto {
namespace {

TEST(ConstantTimeEqualsTest, EqualBuffers) {
  const Bytes a = {1, 2, 3, 4, 5, 6, 7, 8};
  const Bytes b = a;
  EXPECT_TRUE(ConstantTimeEquals(a, b));
  EXPECT_TRUE(ConstantTimeEquals(a, a));
}

TEST(ConstantTimeEqualsTest, DifferenceAtAnyPositionOrBit) {
  const Bytes a(33, 0x5a);
  for (size_t i = 0; i < a.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes b = a;
      b[i] ^= static_cast<uint8_t>(1u << bit);
      EXPECT_FALSE(ConstantTimeEquals(a, b)) << "byte " << i << " bit " << bit;
      EXPECT_FALSE(ConstantTimeEquals(b, a)) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(ConstantTimeEqualsTest, DifferentLengthsAreUnequal) {
  const Bytes a = {1, 2, 3, 4};
  const Bytes prefix = {1, 2, 3};
  EXPECT_FALSE(ConstantTimeEquals(a, prefix));
  EXPECT_FALSE(ConstantTimeEquals(prefix, a));
  EXPECT_FALSE(ConstantTimeEquals(a, ByteSpan()));
}

TEST(ConstantTimeEqualsTest, EmptyBuffersAreEqual) {
  const Bytes empty;
  EXPECT_TRUE(ConstantTimeEquals(ByteSpan(), ByteSpan()));
  EXPECT_TRUE(ConstantTimeEquals(empty, ByteSpan()));
  EXPECT_TRUE(ConstantTimeEquals(empty, empty));
}

TEST(ConstantTimeEqualsTest, ComparesStringsAsBytes) {
  EXPECT_TRUE(ConstantTimeEquals(AsBytes("secret"), AsBytes("secret")));
  EXPECT_FALSE(ConstantTimeEquals(AsBytes("secret"), AsBytes("secreT")));
}

}  // namespace
}  // namespace ctfs::crypto
