// SPDX-License-Identifier: Apache-2.0
#include "base/huge_mapping.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>

#include "tests/testing/smaps.h"

namespace ctfs {
namespace {

using ctfs::testing::VmaOf;

TEST(MapHugeAligned, MapsZeroedWritableMemoryOnAHugePageBoundary) {
  for (size_t len : {kHugePageLen, 3 * kHugePageLen}) {
    SCOPED_TRACE(len);
    auto r = MapHugeAligned(len, "test buffer");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    uint8_t* p = *r;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePageLen, 0u);
    for (size_t i = 0; i < len; i += 4096) ASSERT_EQ(p[i], 0) << "at " << i;
    p[0] = 1;
    p[len - 1] = 2;
    auto vma = VmaOf(p);
    ASSERT_TRUE(vma.has_value());
    EXPECT_LE(vma->start, reinterpret_cast<uintptr_t>(p));
    EXPECT_GE(vma->end, reinterpret_cast<uintptr_t>(p) + len);
    // The padding above the buffer (never empty) was given back.
    EXPECT_NE(::msync(p + len, 4096, MS_ASYNC), 0) << "the mapping's tail was not trimmed";
    if (ThpMode() == "madvise" || ThpMode() == "always") {
      ASSERT_TRUE(vma->thp_eligible.has_value()) << "no THPeligible in /proc/self/smaps";
      EXPECT_TRUE(*vma->thp_eligible);
    }
    ASSERT_EQ(::munmap(p, len), 0);
  }
}

TEST(ThpMode, ReadsTheMarkedMode) {
  EXPECT_EQ(ThpModeFrom("always [madvise] never\n"), "madvise");
  EXPECT_EQ(ThpModeFrom("[always] madvise never"), "always");
  EXPECT_EQ(ThpModeFrom("always madvise [never]"), "never");
  EXPECT_EQ(ThpModeFrom("always madvise never"), "");
  EXPECT_EQ(ThpModeFrom("] broken ["), "");
  EXPECT_EQ(ThpModeFrom(""), "");
  const std::string mode = ThpMode();  // this machine's, or "" without THP
  EXPECT_TRUE(mode.empty() || mode == "always" || mode == "madvise" || mode == "never") << mode;
}

TEST(MapHugeAligned, AnImpossibleLengthIsAnError) {
  auto r = MapHugeAligned(SIZE_MAX - kHugePageLen + 1, "test buffer");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("test buffer"), std::string::npos) << r.status().ToString();
}

}  // namespace
}  // namespace ctfs
