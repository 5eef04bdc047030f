// SPDX-License-Identifier: Apache-2.0
// WriteBehind: every block written once, in order, from at most num_buffers buffers; a write
// error reaches the producer and stops further writes; abandoning it (the producer failed)
// neither deadlocks nor writes the queued blocks, and with an AtomicFileWriter sink leaves no
// file behind.
#include "fs/write_behind.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <iterator>
#include <set>
#include <thread>
#include <vector>

#include "base/file_io.h"
#include "tests/testing/temp_dir.h"

namespace ctfs::fs {
namespace {

struct Written {
  uint64_t out_off;
  std::string data;
};

// Fills `buf` with `len` bytes derived from block number `k`.
void Fill(const WriteBehind::Buffer& buf, size_t len, size_t k) {
  for (size_t i = 0; i < len; ++i) buf.bytes[i] = static_cast<uint8_t>(k * 31 + i);
}

std::string Expected(size_t len, size_t k) {
  std::string s(len, '\0');
  for (size_t i = 0; i < len; ++i) s[i] = static_cast<char>(static_cast<uint8_t>(k * 31 + i));
  return s;
}

TEST(WriteBehind, WritesEveryBlockInOrderFromBoundedBuffers) {
  std::vector<Written> written;  // only the writer thread appends, read after Finish
  WriteBehind pipe(3, 64, [&](ByteSpan data, uint64_t out_off) {
    written.push_back({out_off, std::string(data.begin(), data.end())});
    return Status::Ok();
  });
  std::set<const uint8_t*> buffers;
  for (size_t k = 0; k < 200; ++k) {
    auto buf = pipe.Acquire();
    ASSERT_TRUE(buf.ok()) << buf.status().ToString();
    ASSERT_EQ(buf->bytes.size(), 64u);
    buffers.insert(buf->bytes.data());
    const size_t len = k % 65;  // 0..64 bytes, an empty block included
    Fill(*buf, len, k);
    ASSERT_TRUE(pipe.Submit(*buf, len, k * 1000).ok());
  }
  ASSERT_TRUE(pipe.Finish().ok());
  EXPECT_LE(buffers.size(), 3u);
  ASSERT_EQ(written.size(), 200u);
  for (size_t k = 0; k < 200; ++k) {
    EXPECT_EQ(written[k].out_off, k * 1000);
    EXPECT_EQ(written[k].data, Expected(k % 65, k)) << "block " << k;
  }
  EXPECT_EQ(pipe.Acquire().status().code(), StatusCode::kFailedPrecondition);
}

TEST(WriteBehind, BlocksStartAtTheLeadAskedFor) {
  std::vector<Written> written;
  std::vector<uintptr_t> write_addrs;
  WriteBehind pipe(2, 5000, [&](ByteSpan data, uint64_t out_off) {
    written.push_back({out_off, std::string(data.begin(), data.end())});
    write_addrs.push_back(reinterpret_cast<uintptr_t>(data.data()));
    return Status::Ok();
  });
  const size_t leads[] = {0, 16, 4095, 63, 0, 2000};
  for (size_t k = 0; k < std::size(leads); ++k) {
    auto buf = pipe.Acquire(leads[k]);
    ASSERT_TRUE(buf.ok()) << buf.status().ToString();
    ASSERT_EQ(buf->bytes.size(), 5000u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buf->bytes.data()) % 4096, leads[k]) << k;
    Fill(*buf, 5000, k);
    ASSERT_TRUE(pipe.Submit(*buf, 5000 - k, k * 10000).ok());
  }
  ASSERT_TRUE(pipe.Finish().ok());
  ASSERT_EQ(written.size(), std::size(leads));
  for (size_t k = 0; k < std::size(leads); ++k) {
    EXPECT_EQ(written[k].out_off, k * 10000);
    EXPECT_EQ(written[k].data, Expected(5000 - k, k)) << k;
    EXPECT_EQ(write_addrs[k] % 4096, leads[k]) << "written from where it was filled";
  }
}

TEST(WriteBehind, WriteErrorReachesProducerAndStopsWriting) {
  std::atomic<int> calls{0};
  WriteBehind pipe(2, 8, [&](ByteSpan, uint64_t out_off) {
    ++calls;
    return out_off == 3 ? UnavailableError("disk on fire") : Status::Ok();
  });
  Status seen;
  uint64_t k = 0;
  for (; k < 1000 && seen.ok(); ++k) {
    auto buf = pipe.Acquire();
    if (!buf.ok()) {
      seen = buf.status();
      break;
    }
    seen = pipe.Submit(*buf, 8, k);
  }
  EXPECT_EQ(seen.code(), StatusCode::kUnavailable) << "the producer learns of the failure";
  EXPECT_LT(k, 10u) << "within the few blocks in flight";
  Status fin = pipe.Finish();
  EXPECT_EQ(fin.code(), StatusCode::kUnavailable);
  EXPECT_NE(fin.message().find("disk on fire"), std::string::npos);
  EXPECT_EQ(calls.load(), 4) << "nothing is written after the failed block";
}

TEST(WriteBehind, AbandonedWithBlocksQueuedDropsThemWithoutDeadlock) {
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::atomic<int> calls{0};
  auto pipe = std::make_unique<WriteBehind>(3, 16, [&](ByteSpan, uint64_t) {
    ++calls;
    open.wait();  // the first write hangs until the producer has given up
    return Status::Ok();
  });
  for (int k = 0; k < 3; ++k) {
    auto buf = pipe->Acquire();
    ASSERT_TRUE(buf.ok());
    ASSERT_TRUE(pipe->Submit(*buf, 16, k * 16).ok());
  }
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    gate.set_value();
  });
  pipe.reset();  // the producer failed: no Finish()
  release.join();
  EXPECT_LE(calls.load(), 1) << "queued blocks are dropped, not written";
}

TEST(WriteBehind, AcquireWithEveryBufferHeldFailsInsteadOfDeadlocking) {
  WriteBehind pipe(2, 4, [](ByteSpan, uint64_t) { return Status::Ok(); });
  auto a = pipe.Acquire();
  auto b = pipe.Acquire();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(pipe.Acquire().status().code(), StatusCode::kInternal);
  ASSERT_TRUE(pipe.Submit(*a, 4, 0).ok());
  EXPECT_TRUE(pipe.Acquire().ok()) << "a submitted buffer comes back";
}

// The way EncryptFile uses it: a read error midway abandons the pipe, then the writer.
Status CopyWithFailingRead(const std::string& dst, int fail_at_block) {
  CTFS_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Create(dst, 0644));
  WriteBehind pipe(
      2, 4096, [&out](ByteSpan data, uint64_t out_off) { return out.PwriteAll(data, out_off); });
  for (int k = 0; k < 10; ++k) {
    CTFS_ASSIGN_OR_RETURN(WriteBehind::Buffer buf, pipe.Acquire());
    if (k == fail_at_block) return DataLossError("read failed");
    CTFS_RETURN_IF_ERROR(pipe.Submit(buf, 4096, k * 4096));
  }
  CTFS_RETURN_IF_ERROR(pipe.Finish());
  return out.Commit();
}

TEST(WriteBehind, FailedProducerLeavesNoPartialFile) {
  ctfs::testing::TempDir dir;
  EXPECT_EQ(CopyWithFailingRead(dir.File("out"), 5).code(), StatusCode::kDataLoss);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  ASSERT_TRUE(CopyWithFailingRead(dir.File("out"), -1).ok());
  EXPECT_EQ(std::filesystem::file_size(dir.File("out")), 10u * 4096);
}

}  // namespace
}  // namespace ctfs::fs
