// SPDX-License-Identifier: Apache-2.0
// The secret arena behind SecretBytes: zeroed blocks, wiped on free, counted; its memory locked,
// excluded from core dumps and zero in a forked child (checked in /proc/self/smaps VmFlags).
#include "base/secret_arena.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/secret_bytes.h"
#include "tests/testing/smaps.h"

namespace ctfs {
namespace {

TEST(SecretArena, BlocksAreZeroAndCountedAndWipedOnFree) {
  const SecretArenaStats before = SecretArena::Stats();
  std::vector<std::pair<uint8_t*, size_t>> blocks;
  for (size_t len : {size_t{1}, size_t{16}, size_t{32}, size_t{33}, size_t{4096}, size_t{10000}}) {
    uint8_t* p = SecretArena::Allocate(len);
    ASSERT_NE(p, nullptr) << len;
    for (size_t i = 0; i < len; ++i) ASSERT_EQ(p[i], 0) << len;
    std::memset(p, 0xA5, len);
    blocks.emplace_back(p, len);
  }
  const SecretArenaStats during = SecretArena::Stats();
  EXPECT_EQ(during.live_blocks, before.live_blocks + blocks.size());
  EXPECT_EQ(during.live_bytes, before.live_bytes + 1 + 16 + 32 + 33 + 4096 + 10000);
  // A freed slot stays mapped (slabs live on): its bytes must read zero right after the free.
  uint8_t* slot = blocks[2].first;
  SecretArena::Free(slot, 32);
  for (size_t i = 0; i < 32; ++i) EXPECT_EQ(slot[i], 0) << "byte " << i << " not wiped";
  for (size_t k = 0; k < blocks.size(); ++k) {
    if (k != 2) SecretArena::Free(blocks[k].first, blocks[k].second);
  }
  const SecretArenaStats after = SecretArena::Stats();
  EXPECT_EQ(after.live_blocks, before.live_blocks);
  EXPECT_EQ(after.live_bytes, before.live_bytes);
}

TEST(SecretArena, SecretBytesLiveInLockedUndumpedUninheritedMemory) {
  SecretBytes small(32);
  SecretBytes large(8192);
  for (const SecretBytes* s : {&small, &large}) {
    auto vma = ctfs::testing::VmaOf(s->data());
    ASSERT_TRUE(vma.has_value());
    ASSERT_FALSE(vma->flags.empty()) << "no VmFlags in /proc/self/smaps";
    EXPECT_TRUE(vma->HasFlag("dd")) << "not excluded from core dumps: " << vma->flags;
    EXPECT_TRUE(vma->HasFlag("wf")) << "not wiped on fork: " << vma->flags;
// The sanitizer runtimes turn mlock into a no-op (it would lock their shadow memory too).
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
    if (SecretArena::Stats().lock_failures == 0) {
      EXPECT_TRUE(vma->HasFlag("lo")) << "not locked: " << vma->flags;
    }
#endif
  }
}

TEST(SecretArena, ForkedChildSeesZeros) {
  SecretBytes key(32);
  std::memset(key.data(), 0x5A, key.size());
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (size_t i = 0; i < key.size(); ++i) {
      if (key.data()[i] != 0) _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "a forked child inherited key bytes";
  EXPECT_EQ(key.data()[0], 0x5A) << "the parent keeps its copy";
}

TEST(SecretBytes, MoveAssignWipesTheOldBlock) {
  const size_t live = SecretArena::Stats().live_blocks;
  SecretBytes a(32), b(16);
  EXPECT_EQ(SecretArena::Stats().live_blocks, live + 2);
  a = std::move(b);
  EXPECT_EQ(SecretArena::Stats().live_blocks, live + 1);
  a.Wipe();
  EXPECT_EQ(SecretArena::Stats().live_blocks, live);
}

}  // namespace
}  // namespace ctfs
