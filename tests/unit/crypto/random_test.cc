// SPDX-License-Identifier: Apache-2.0
// Tests for crypto/random.cc. Randomness cannot be tested for quality here; these tests check
// that buffers are filled (not left zero, not repeated) and that empty requests succeed.
#include "crypto/random.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "base/bytes.h"
#include "base/secret_bytes.h"
#include "crypto/constant_time.h"

namespace ctfs::crypto {
namespace {

bool AllZero(ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t v) { return v == 0; });
}

TEST(RandomBytesTest, FillsBuffer) {
  Bytes buf(1024, 0);
  ASSERT_TRUE(RandomBytes(buf).ok());
  EXPECT_FALSE(AllZero(buf));  // Probability 2^-8192 of a false failure.
}

TEST(RandomBytesTest, TwoDrawsDiffer) {
  Bytes a(32), b(32);
  ASSERT_TRUE(RandomBytes(a).ok());
  ASSERT_TRUE(RandomBytes(b).ok());
  EXPECT_FALSE(ConstantTimeEquals(a, b));
}

TEST(RandomBytesTest, EmptyIsOk) {
  EXPECT_TRUE(RandomBytes(MutableByteSpan()).ok());
  Bytes empty;
  EXPECT_TRUE(RandomBytes(empty).ok());
}

TEST(RandomBytesTest, EveryByteValueAppearsInOneMebibyte) {
  // 2^20 uniform bytes: each value is expected 4096 times; missing one has probability
  // about 256 * e^-4096.
  Bytes buf(1 << 20);
  ASSERT_TRUE(RandomBytes(buf).ok());
  std::array<size_t, 256> counts{};
  for (uint8_t v : buf) ++counts[v];
  for (size_t i = 0; i < counts.size(); ++i) {
    EXPECT_GT(counts[i], 3000u) << "byte value " << i;
    EXPECT_LT(counts[i], 5200u) << "byte value " << i;
  }
}

TEST(RandomSecretTest, ReturnsRequestedLength) {
  Result<SecretBytes> a = RandomSecret(32);
  Result<SecretBytes> b = RandomSecret(32);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_FALSE(AllZero(a->span()));
  EXPECT_FALSE(ConstantTimeEquals(a->span(), b->span()));
}

TEST(RandomSecretTest, ZeroLengthIsEmpty) {
  Result<SecretBytes> s = RandomSecret(0);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->empty());
}

}  // namespace
}  // namespace ctfs::crypto
