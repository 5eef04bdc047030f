// SPDX-License-Identifier: Apache-2.0
#include "base/file_io.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/testing/temp_dir.h"

namespace ctfs {
namespace {

using ctfs::testing::TempDir;

size_t CountEntries(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(AtomicFileWriter, CommitRenamesWithMode) {
  TempDir dir;
  std::string path = dir.File("out.bin");
  {
    auto w = AtomicFileWriter::Create(path, 0600);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->Write(AsBytes("hello ")).ok());
    ASSERT_TRUE(w->PwriteAll(AsBytes("world"), 6).ok());
    struct stat st;
    EXPECT_NE(::stat(path.c_str(), &st), 0) << "nothing at the final path before Commit";
    ASSERT_TRUE(w->Commit().ok());
  }
  EXPECT_EQ(ctfs::testing::ReadFile(path), "hello world");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(CountEntries(dir.path()), 1u);
}

TEST(AtomicFileWriter, AbandonedWriteLeavesNothing) {
  TempDir dir;
  {
    auto w = AtomicFileWriter::Create(dir.File("out.bin"), 0644);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->Write(AsBytes("partial")).ok());
  }
  EXPECT_EQ(CountEntries(dir.path()), 0u);
}

// Past kWritebackKickLen the writer starts writeback early; the bytes and Commit are unchanged.
TEST(AtomicFileWriter, LargeOutputWithEarlyWritebackCommitsExactBytes) {
  TempDir dir;
  std::string path = dir.File("big.bin");
  const size_t block_len = 1 << 20;
  const size_t blocks = 3 * AtomicFileWriter::kWritebackKickLen / block_len + 1;
  {
    auto w = AtomicFileWriter::Create(path, 0644);
    ASSERT_TRUE(w.ok());
    Bytes block(block_len);
    // Out of order, as EncryptFile writes: the data first, the head last.
    for (size_t k = 1; k <= blocks; ++k) {
      const size_t at = k % blocks;
      std::fill(block.begin(), block.end(), static_cast<uint8_t>(at + 1));
      ASSERT_TRUE(w->PwriteAll(block, at * block_len).ok());
    }
    ASSERT_TRUE(w->Commit().ok());
  }
  std::string got = ctfs::testing::ReadFile(path);
  ASSERT_EQ(got.size(), blocks * block_len);
  for (size_t k = 0; k < blocks; ++k) {
    EXPECT_EQ(got.substr(k * block_len, block_len),
              std::string(block_len, static_cast<char>(k + 1)))
        << "block " << k;
  }
}

TEST(FileIo, PreadExactReportsTruncation) {
  TempDir dir;
  ctfs::testing::WriteFile(dir.File("f"), "abc");
  auto fd = OpenReadOnly(dir.File("f"));
  ASSERT_TRUE(fd.ok());
  Bytes buf(5);
  Status s = PreadExact(fd->get(), buf, 0, "f");
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("truncated"), std::string::npos);
  EXPECT_EQ(OpenReadOnly(dir.File("missing")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadWholeFile(dir.File("f"), 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*ReadWholeFile(dir.File("f"), 3), "abc");
}

}  // namespace
}  // namespace ctfs
