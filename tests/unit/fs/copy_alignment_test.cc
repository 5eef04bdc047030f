// SPDX-License-Identifier: Apache-2.0
// SlowCopyDistance and ChunkLead: which copy distances are avoided, and that the lead chosen
// for a chunk avoids them for the reply (and the pread, when there is one), is the smallest
// such lead, and depends on the offsets only modulo a page.
#include "fs/copy_alignment.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace ctfs::fs {
namespace {

constexpr uint64_t kPage = kCopyPageLen;

TEST(SlowCopyDistance, OneToWindowMinusOneBytesPastThePage) {
  EXPECT_FALSE(SlowCopyDistance(0));
  for (uint64_t d = 1; d < kSlowCopyWindow; ++d) EXPECT_TRUE(SlowCopyDistance(d)) << d;
  EXPECT_FALSE(SlowCopyDistance(kSlowCopyWindow));
  EXPECT_FALSE(SlowCopyDistance(2048));
  EXPECT_FALSE(SlowCopyDistance(kPage - 16)) << "destination behind the source: fast";
  EXPECT_FALSE(SlowCopyDistance(kPage - 1));
  EXPECT_FALSE(SlowCopyDistance(kPage));
  EXPECT_TRUE(SlowCopyDistance(kPage + 16)) << "only the distance modulo a page counts";
  EXPECT_TRUE(SlowCopyDistance(uint64_t{0} - kPage + 16)) << "a wrapped difference too";
  EXPECT_FALSE(SlowCopyDistance(uint64_t{0} - 16));
}

// The properties ChunkLead promises, checked for one pair of offsets.
void ExpectGoodLead(uint64_t served_off, std::optional<uint64_t> pread_off) {
  SCOPED_TRACE(testing::Message() << "served_off " << served_off << " pread_off "
                                  << (pread_off ? std::to_string(*pread_off) : "none"));
  auto ok = [&](uint64_t lead) {
    return !SlowCopyDistance(served_off - lead) &&
           !(pread_off && SlowCopyDistance(lead - *pread_off));
  };
  const size_t lead = ChunkLead(served_off, pread_off);
  ASSERT_LT(lead, kPage);
  EXPECT_TRUE(ok(lead)) << "lead " << lead << " leaves a slow copy";
  for (uint64_t smaller = 0; smaller < lead; ++smaller) {
    ASSERT_FALSE(ok(smaller)) << "lead " << smaller << " would do, smaller than " << lead;
  }
  EXPECT_EQ(ChunkLead(served_off + 7 * kPage,
                      pread_off ? std::optional<uint64_t>(*pread_off + 3 * kPage) : std::nullopt),
            lead)
      << "offsets matter modulo a page only";
}

TEST(ChunkLead, KnownCases) {
  EXPECT_EQ(ChunkLead(0, 0), 0u);
  EXPECT_EQ(ChunkLead(976, 2744), 0u) << "both copies fine as they are";
  EXPECT_EQ(ChunkLead(16, std::nullopt), 16u) << "served 16 past a page: co-align the reply";
  EXPECT_EQ(ChunkLead(16, 0), 64u) << "a pread from a page boundary rules out leads 1-63";
  EXPECT_EQ(ChunkLead(4096 + 63, std::nullopt), 63u);
  EXPECT_EQ(ChunkLead(64, std::nullopt), 0u);
  EXPECT_EQ(ChunkLead(976, 4088), 56u) << "ciphertext 8 before a page: pread 56 + 8 = 64 past";
  EXPECT_EQ(ChunkLead(976, std::nullopt), 0u) << "no pread (O_DIRECT): only the reply counts";
  EXPECT_EQ(ChunkLead(16, 4088), 56u) << "both: the first lead that suits the two";
  EXPECT_EQ(ChunkLead(63, 62), 126u) << "the longest search: 63 leads ruled out twice";
}

TEST(ChunkLead, EveryServedOffsetInAPage) {
  const std::vector<std::optional<uint64_t>> preads = {std::nullopt, 0,    1,    16,   63,  64,
                                                       2744,         4032, 4033, 4088, 4095};
  for (uint64_t served = 0; served < kPage; ++served) {
    for (const auto& pread : preads) ExpectGoodLead(served, pread);
  }
}

TEST(ChunkLead, RandomOffsets) {
  std::mt19937_64 rng(20261201);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t served = rng() >> 20;
    const uint64_t cipher = rng() >> 20;
    ExpectGoodLead(served, cipher);
  }
}

}  // namespace
}  // namespace ctfs::fs
