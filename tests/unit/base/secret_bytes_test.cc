// SPDX-License-Identifier: Apache-2.0
#include "base/secret_bytes.h"

#include <gtest/gtest.h>

#include <type_traits>
#include <utility>

namespace ctfs {
namespace {

static_assert(!std::is_copy_constructible_v<SecretBytes>);
static_assert(!std::is_copy_assignable_v<SecretBytes>);
static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);

TEST(SecretBytes, CopyMoveWipe) {
  const uint8_t raw[] = {1, 2, 3, 4};
  SecretBytes a = SecretBytes::CopyFrom(raw);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a.data()[3], 4);
  SecretBytes b = std::move(a);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.size(), 4u);
  SecretBytes c = b.Clone();
  EXPECT_NE(c.data(), b.data());
  EXPECT_EQ(c.data()[0], 1);
  b.Wipe();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(c.size(), 4u);
}

TEST(SecretBytes, ZeroFilled) {
  SecretBytes s(32);
  for (size_t i = 0; i < s.size(); ++i) EXPECT_EQ(s.data()[i], 0);
  SecretBytes empty(0);
  EXPECT_TRUE(empty.empty());
}

TEST(WipeMemory, Zeroes) {
  uint8_t buf[16];
  for (auto& x : buf) x = 0xAB;
  WipeMemory(buf, sizeof buf);
  for (auto x : buf) EXPECT_EQ(x, 0);
}

}  // namespace
}  // namespace ctfs
