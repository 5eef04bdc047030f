// SPDX-License-Identifier: Apache-2.0
#include "base/direct_reader.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>

#include "base/huge_mapping.h"
#include "tests/testing/smaps.h"
#include "tests/testing/temp_dir.h"

namespace ctfs {
namespace {

using ctfs::testing::TempDir;

class DirectReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(7);
    content_.resize(3 * 1024 * 1024 + 777);  // not a multiple of any alignment
    for (char& c : content_) c = static_cast<char>(rng());
    path_ = dir_.File("data.bin");
    ctfs::testing::WriteFile(path_, content_);
    auto r = DirectReader::Open(path_);
    if (!r.ok() && r.status().code() == StatusCode::kFailedPrecondition) {
      GTEST_SKIP() << "no O_DIRECT here: " << r.status().ToString();
    }
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    reader_.emplace(std::move(*r));
  }

  std::string Read(uint64_t off, size_t len) {
    auto r = reader_->Read(off, len, staging_);
    EXPECT_TRUE(r.ok()) << "off " << off << " len " << len << ": " << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_EQ(r->size(), len);
    return std::string(reinterpret_cast<const char*>(r->data()), r->size());
  }

  TempDir dir_;
  std::string path_;
  std::string content_;
  std::optional<DirectReader> reader_;
  StagingBuffer staging_;
};

TEST_F(DirectReaderTest, ReadsAnyRangeExactly) {
  ASSERT_GE(reader_->offset_align(), 1u);
  const uint64_t n = content_.size();
  // Aligned, unaligned start, unaligned end, crossing alignment boundaries, ending at EOF,
  // one byte, the whole file.
  const std::pair<uint64_t, size_t> ranges[] = {
      {0, 4096},          {1, 4095},        {4095, 2},         {5000, 65521},
      {n - 777, 777},     {n - 1, 1},       {123457, 1 << 20}, {0, static_cast<size_t>(n)},
      {n - 10000, 10000}, {2 * 4096, 4096},
  };
  for (auto [off, len] : ranges) {
    EXPECT_EQ(Read(off, len), content_.substr(off, len)) << "off " << off << " len " << len;
  }
  EXPECT_GE(staging_.capacity(), content_.size()) << "the staging buffer grew for the big read";
}

TEST_F(DirectReaderTest, ReadPastTheEndIsTruncation) {
  const uint64_t n = content_.size();
  for (auto [off, len] : {std::pair<uint64_t, size_t>{n - 10, 11}, {n, 1}, {n + 4096, 10}}) {
    auto r = reader_->Read(off, len, staging_);
    ASSERT_FALSE(r.ok()) << "off " << off;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
    EXPECT_NE(r.status().message().find("truncated"), std::string::npos);
    EXPECT_NE(r.status().message().find(path_), std::string::npos) << "names the file";
  }
}

TEST_F(DirectReaderTest, OverflowingRangeIsRejected) {
  auto r = reader_->Read(UINT64_MAX - 10, 100, staging_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(DirectReaderTest, SeesTheFileAsItIsNow) {
  // Direct reads bypass the page cache; a rewrite of the file (through the page cache) must
  // still be what they return (the kernel writes dirty pages back before a direct read).
  std::string changed = content_;
  changed[5000] ^= 0x5a;
  ctfs::testing::WriteFile(path_, changed);
  EXPECT_EQ(Read(4096, 4096), changed.substr(4096, 4096));
}

TEST(DirectReader, OpenFailuresNameThePath) {
  TempDir dir;
  auto r = DirectReader::Open(dir.File("missing"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("missing"), std::string::npos);
}

TEST(StagingBuffer, GrowsAndMoves) {
  StagingBuffer a;
  EXPECT_EQ(a.capacity(), 0u);
  ASSERT_TRUE(a.Reserve(10).ok());
  EXPECT_GE(a.capacity(), 10u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 4096, 0u) << "page-aligned for O_DIRECT";
  a.data()[9] = 42;
  uint8_t* first = a.data();
  ASSERT_TRUE(a.Reserve(5).ok());
  EXPECT_EQ(a.data(), first) << "no new mapping when it fits";
  ASSERT_TRUE(a.Reserve(3u << 20).ok());
  EXPECT_GE(a.capacity(), 3u << 20);
  StagingBuffer b(std::move(a));
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_GE(b.capacity(), 3u << 20);
  b.data()[(3u << 20) - 1] = 1;  // usable to the end
}

// A run's read (a few huge pages and a little more) lands in huge pages, its short tail and
// short reads do not (they would commit a whole huge page for a few KiB).
TEST(StagingBuffer, LongReadsGetHugePagesShortOnesDoNot) {
  const std::string mode = ThpMode();
  const size_t run_len = 2 * kHugePageLen + 8192;
  StagingBuffer run;
  ASSERT_TRUE(run.Reserve(run_len).ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(run.data()) % kHugePageLen, 0u);
  EXPECT_EQ(run.capacity(), 3 * kHugePageLen);
  run.data()[run_len - 1] = 1;
  auto head = ctfs::testing::VmaOf(run.data());
  auto tail = ctfs::testing::VmaOf(run.data() + 2 * kHugePageLen);
  ASSERT_TRUE(head.has_value() && tail.has_value());
  StagingBuffer small;
  ASSERT_TRUE(small.Reserve(300 * 1024).ok());
  EXPECT_LT(small.capacity(), kHugePageLen);
  auto small_vma = ctfs::testing::VmaOf(small.data());
  ASSERT_TRUE(small_vma.has_value());
  if (mode != "madvise" && mode != "always") GTEST_SKIP() << "no transparent huge pages here";
  ASSERT_TRUE(head->thp_eligible && tail->thp_eligible && small_vma->thp_eligible)
      << "no THPeligible in /proc/self/smaps";
  EXPECT_TRUE(*head->thp_eligible);
  EXPECT_FALSE(*tail->thp_eligible) << "the tail past the last whole huge page";
  if (mode == "madvise") {
    EXPECT_FALSE(*small_vma->thp_eligible);
  }
}

}  // namespace
}  // namespace ctfs
