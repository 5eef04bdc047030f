// SPDX-License-Identifier: Apache-2.0
// ChunkBuffer + ChunkBufferPool: exact sizes, reuse (mapped_count stays flat), the idle cap,
// Drain, buffers that outlive their pool, concurrent use, the slabs buffers are cut from, and
// leads (spans that start past a page boundary).
#include "fs/chunk_buffer_pool.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace ctfs::fs {
namespace {

constexpr size_t kG = ChunkBufferPool::kGranule;

std::shared_ptr<ChunkBuffer> MustAcquire(ChunkBufferPool& pool, size_t len, size_t lead = 0) {
  auto b = pool.Acquire(len, lead);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return b.ok() ? *b : nullptr;
}

void Fill(MutableByteSpan s, uint8_t seed) {
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<uint8_t>(seed + i * 7);
}

bool Holds(ByteSpan s, uint8_t seed) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != static_cast<uint8_t>(seed + i * 7)) return false;
  }
  return true;
}

// Fill and Holds on the first `stretch` bytes of every 4 KiB page only.
void FillPages(MutableByteSpan s, uint8_t seed, size_t stretch) {
  for (size_t p = 0; p < s.size(); p += 4096) {
    Fill(s.subspan(p, std::min(stretch, s.size() - p)), static_cast<uint8_t>(seed + p));
  }
}

bool HoldsPages(ByteSpan s, uint8_t seed, size_t stretch) {
  for (size_t p = 0; p < s.size(); p += 4096) {
    if (!Holds(s.subspan(p, std::min(stretch, s.size() - p)), static_cast<uint8_t>(seed + p))) {
      return false;
    }
  }
  return true;
}

TEST(ChunkBuffer, MapSetSpanAndMove) {
  auto m = ChunkBuffer::Map(kG);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ChunkBuffer b = std::move(*m);
  EXPECT_EQ(b.capacity(), kG);
  EXPECT_EQ(b.size(), 0u);
  b.set_span(0, 1000);
  EXPECT_EQ(b.span().size(), 1000u);
  Fill(b.span(), 3);
  ChunkBuffer c = std::move(b);
  EXPECT_EQ(b.capacity(), 0u);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_TRUE(b.span().empty());
  EXPECT_EQ(c.capacity(), kG);
  ASSERT_EQ(c.size(), 1000u);
  EXPECT_TRUE(Holds(c.span(), 3));
  // Move-assigning over a live buffer releases the old one and takes the new one whole.
  auto m2 = ChunkBuffer::Map(2 * kG);
  ASSERT_TRUE(m2.ok());
  m2->set_span(0, 2 * kG);
  Fill(m2->span(), 9);
  c = std::move(*m2);
  EXPECT_EQ(c.capacity(), 2 * kG);
  EXPECT_EQ(c.size(), 2 * kG);
  EXPECT_TRUE(Holds(c.span(), 9));
}

TEST(ChunkBufferDeathTest, SpanBeyondCapacityAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto m = ChunkBuffer::Map(kG);
        m->set_span(0, kG + 1);
      },
      "CTFS_CHECK failed");
  EXPECT_DEATH(
      {
        auto m = ChunkBuffer::Map(kG);
        m->set_span(16, kG - 15);
      },
      "CTFS_CHECK failed");
}

TEST(ChunkBufferPoolDeathTest, LeadOfAPageOrMoreAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        ChunkBufferPool pool(0);
        (void)pool.Acquire(10, 4096);
      },
      "CTFS_CHECK failed");
}

// A lead puts the span that many bytes past a page boundary, inside the mapping, and costs a
// granule only when lead + len crosses one.
TEST(ChunkBufferPool, LeadStartsTheSpanPastAPageBoundary) {
  ChunkBufferPool pool(0);
  for (size_t lead : {size_t{0}, size_t{1}, size_t{16}, size_t{127}, size_t{4095}}) {
    for (size_t len : {size_t{1}, kG - lead, kG - lead + 1, kG, 2 * kG + 5}) {
      SCOPED_TRACE(testing::Message() << "lead " << lead << " len " << len);
      auto b = MustAcquire(pool, len, lead);
      ASSERT_NE(b, nullptr);
      EXPECT_EQ(b->lead(), lead);
      EXPECT_EQ(b->size(), len);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b->span().data()) % 4096, lead);
      EXPECT_GE(b->capacity(), lead + len);
      EXPECT_EQ(b->capacity(), std::max(kG, (lead + len + kG - 1) / kG * kG));
      EXPECT_EQ(ChunkBufferPool::LeadCost(len, lead),
                b->capacity() - std::max(kG, (len + kG - 1) / kG * kG));
      Fill(b->span(), static_cast<uint8_t>(lead + len));
      EXPECT_TRUE(Holds(b->span(), static_cast<uint8_t>(lead + len)));
    }
  }
  EXPECT_EQ(ChunkBufferPool::LeadCost(kG, 0), 0u);
  EXPECT_EQ(ChunkBufferPool::LeadCost(kG, 16), kG) << "a full chunk with a lead takes two";
  EXPECT_EQ(ChunkBufferPool::LeadCost(kG - 100, 16), 0u) << "a short one fits its granule";
}

TEST(ChunkBufferPool, ReusedBufferTakesTheNewLead) {
  ChunkBufferPool pool(16 * kG);
  const uint8_t* mapping = nullptr;
  for (size_t lead : {size_t{16}, size_t{0}, size_t{100}, size_t{0}}) {
    auto b = MustAcquire(pool, kG + 100, lead);  // two granules either way
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b->span().data()) % 4096, lead);
    if (mapping == nullptr) mapping = b->span().data() - lead;
    EXPECT_EQ(b->span().data() - lead, mapping) << "the idle buffer is reused";
    Fill(b->span(), static_cast<uint8_t>(lead));
  }
  EXPECT_EQ(pool.mapped_count(), 1u);
}

TEST(ChunkBufferPool, AcquireGivesExactlyLenWritableBytes) {
  ChunkBufferPool pool(16 * kG);
  for (size_t len : {size_t{1}, size_t{4095}, kG - 1, kG, kG + 1, 3 * kG + 17, size_t{2} << 20}) {
    auto b = MustAcquire(pool, len);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->size(), len);
    EXPECT_EQ(b->span().size(), len);
    EXPECT_GE(b->capacity(), len);
    EXPECT_EQ(b->capacity() % kG, 0u) << "rounded up to whole granules";
    EXPECT_LT(b->capacity() - len, kG) << "no more than one granule of slack for a fresh map";
    Fill(b->span(), static_cast<uint8_t>(len));
    EXPECT_TRUE(Holds(b->span(), static_cast<uint8_t>(len)));
  }
}

TEST(ChunkBufferPool, ZeroLength) {
  ChunkBufferPool pool(4 * kG);
  auto b = MustAcquire(pool, 0);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->size(), 0u);
  EXPECT_TRUE(b->span().empty());
  EXPECT_GT(b->capacity(), 0u);
  b.reset();
  EXPECT_EQ(pool.idle_bytes(), kG) << "a zero-length buffer still goes back to the pool";
  // ... and serves a later request of up to a granule without a new mapping.
  auto c = MustAcquire(pool, kG);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->size(), kG);
  EXPECT_EQ(pool.mapped_count(), 1u);
}

TEST(ChunkBufferPool, ReleasedBuffersAreReused) {
  ChunkBufferPool pool(16 * kG);
  for (int i = 0; i < 100; ++i) {
    auto b = MustAcquire(pool, 2u << 20);
    ASSERT_NE(b, nullptr);
    Fill(b->span(), static_cast<uint8_t>(i));
  }
  EXPECT_EQ(pool.mapped_count(), 1u);
  EXPECT_EQ(pool.idle_bytes(), size_t{2} << 20);
  // Lengths that differ but round to the same granule count reuse the same buffer.
  ChunkBufferPool pool2(16 * kG);
  const size_t lens[] = {1, 100, kG / 2, kG - 1, kG, 7, kG};
  for (int round = 0; round < 10; ++round) {
    for (size_t len : lens) {
      auto b = MustAcquire(pool2, len);
      ASSERT_NE(b, nullptr);
      EXPECT_EQ(b->size(), len);
      Fill(b->span(), 1);
    }
  }
  EXPECT_EQ(pool2.mapped_count(), 1u);
  const size_t lens3[] = {kG + 1, 2 * kG, kG + kG / 2, 2 * kG - 1};
  for (int round = 0; round < 10; ++round) {
    for (size_t len : lens3) {
      auto b = MustAcquire(pool2, len);
      ASSERT_NE(b, nullptr);
      EXPECT_EQ(b->size(), len);
    }
  }
  EXPECT_EQ(pool2.mapped_count(), 2u) << "one 1-granule and one 2-granule buffer";
  // Buffers held at the same time are distinct mappings.
  auto x = MustAcquire(pool2, kG);
  auto y = MustAcquire(pool2, kG);
  ASSERT_TRUE(x && y);
  EXPECT_NE(x->span().data(), y->span().data());
  Fill(x->span(), 1);
  Fill(y->span(), 2);
  EXPECT_TRUE(Holds(x->span(), 1));
  EXPECT_TRUE(Holds(y->span(), 2));
}

TEST(ChunkBufferPool, IdleCapIsRespected) {
  ChunkBufferPool pool(2 * kG);
  std::vector<std::shared_ptr<ChunkBuffer>> held;
  for (int i = 0; i < 5; ++i) held.push_back(MustAcquire(pool, kG));
  EXPECT_EQ(pool.mapped_count(), 5u);
  EXPECT_EQ(pool.idle_bytes(), 0u);
  while (!held.empty()) {
    held.pop_back();
    EXPECT_LE(pool.idle_bytes(), 2 * kG);
  }
  EXPECT_EQ(pool.idle_bytes(), 2 * kG) << "two kept, the other three unmapped";
  // Only the two kept buffers are reused: the third of three new requests maps again.
  for (int i = 0; i < 3; ++i) held.push_back(MustAcquire(pool, kG));
  EXPECT_EQ(pool.mapped_count(), 6u);
  EXPECT_EQ(pool.idle_bytes(), 0u);
  held.clear();
  EXPECT_EQ(pool.idle_bytes(), 2 * kG);

  // A buffer larger than the room left is not kept.
  ChunkBufferPool small(3 * kG);
  auto one = MustAcquire(small, kG);
  auto two = MustAcquire(small, 2 * kG);
  auto three = MustAcquire(small, 3 * kG);
  one.reset();
  two.reset();
  EXPECT_EQ(small.idle_bytes(), 3 * kG);
  three.reset();
  EXPECT_EQ(small.idle_bytes(), 3 * kG);
  auto again = MustAcquire(small, 3 * kG);
  EXPECT_EQ(small.mapped_count(), 4u) << "the 3-granule buffer was unmapped, not kept";

  // A cap of zero keeps nothing.
  ChunkBufferPool none(0);
  for (int i = 0; i < 5; ++i) MustAcquire(none, 100);
  EXPECT_EQ(none.idle_bytes(), 0u);
  EXPECT_EQ(none.mapped_count(), 5u);
}

TEST(ChunkBufferPool, DrainEmptiesIdleAndStopsPooling) {
  ChunkBufferPool pool(16 * kG);
  auto held = MustAcquire(pool, kG);
  ASSERT_NE(held, nullptr);
  Fill(held->span(), 5);
  for (int i = 0; i < 3; ++i) MustAcquire(pool, 2 * kG);
  EXPECT_EQ(pool.idle_bytes(), 2 * kG);
  EXPECT_EQ(pool.mapped_count(), 2u);
  pool.Drain();
  EXPECT_EQ(pool.idle_bytes(), 0u);
  EXPECT_TRUE(Holds(held->span(), 5)) << "a buffer in use survives Drain";
  held.reset();
  EXPECT_EQ(pool.idle_bytes(), 0u) << "returned after Drain: unmapped, not kept";
  for (int i = 0; i < 3; ++i) {
    auto b = MustAcquire(pool, 2 * kG);
    ASSERT_NE(b, nullptr);
    Fill(b->span(), 1);
    EXPECT_EQ(b->size(), 2 * kG);
    b.reset();
    EXPECT_EQ(pool.idle_bytes(), 0u);
  }
  EXPECT_EQ(pool.mapped_count(), 5u) << "every Acquire after Drain maps afresh";
}

TEST(ChunkBufferPool, BuffersOutliveThePool) {
  auto pool = std::make_unique<ChunkBufferPool>(16 * kG);
  auto a = MustAcquire(*pool, kG + 3);
  auto b = MustAcquire(*pool, 100);
  ASSERT_TRUE(a && b);
  MustAcquire(*pool, 2 * kG);  // one idle buffer, unmapped with the pool
  EXPECT_EQ(pool->idle_bytes(), 2 * kG);
  Fill(a->span(), 11);
  pool.reset();
  EXPECT_TRUE(Holds(a->span(), 11));
  Fill(b->span(), 12);
  EXPECT_TRUE(Holds(b->span(), 12));
  a.reset();  // goes back to a pool that no longer exists: wiped and unmapped
  b.reset();
}

TEST(ChunkBufferPool, HugeRequestFailsCleanly) {
  ChunkBufferPool pool(4 * kG);
  auto b = pool.Acquire(size_t{1} << 50);  // 1 PiB: more than the address space
  EXPECT_FALSE(b.ok());
  EXPECT_EQ(pool.mapped_count(), 0u) << "a failed mmap is not counted as mapped";
  auto near_max = pool.Acquire(SIZE_MAX - 1);  // rounding up to the granule would overflow
  EXPECT_FALSE(near_max.ok());
  auto c = MustAcquire(pool, 10);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->size(), 10u);
}

TEST(ChunkBufferPool, ConcurrentUseNeverSharesABuffer) {
  constexpr int kThreads = 8, kIters = 300;
  // Every byte of each buffer is written and checked, unless $CTFS_TEST_SHRINK is set
  // (tests/run_all.sh, for the ThreadSanitizer build, where each byte access is instrumented and
  // the byte loops took 70 s): then 64 bytes of every page, which still catch two holders.
  const size_t stretch = std::getenv("CTFS_TEST_SHRINK") != nullptr ? 64 : 4096;
  ChunkBufferPool pool(64 * kG);
  std::atomic<int> corrupt{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kIters; ++i) {
        const size_t len = (rng() % 3 + 1) * kG - rng() % 1000;
        auto b = pool.Acquire(len);
        if (!b.ok() || (*b)->size() != len) {
          ++failed;
          continue;
        }
        const uint8_t seed = static_cast<uint8_t>(t * 31 + i);
        FillPages((*b)->span(), seed, stretch);
        std::this_thread::yield();
        if (!HoldsPages((*b)->span(), seed, stretch)) ++corrupt;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(corrupt.load(), 0) << "a buffer was handed to two holders at once";
  // A new buffer of a size class is mapped only while every one of that size is in use: at
  // most one per thread and size class.
  EXPECT_LE(pool.mapped_count(), uint64_t{kThreads * 3});
  EXPECT_LE(pool.idle_bytes(), 64 * kG);
}

// Buffers whose size divides kSlabBytes are cut from kSlabBytes-aligned slabs (transparent
// huge page candidates); others are mapped on their own.
constexpr size_t kSlab = ChunkBufferPool::kSlabBytes;

uintptr_t SlabOf(const ChunkBuffer& b) {
  return reinterpret_cast<uintptr_t>(b.span().data()) & ~uintptr_t{kSlab - 1};
}

bool Mapped(uintptr_t addr, size_t len) {
  return ::msync(reinterpret_cast<void*>(addr), len, MS_ASYNC) == 0;  // ENOMEM: not mapped
}

TEST(ChunkBufferPool, SlabSizedBuffersShareAnAlignedSlab) {
  for (size_t len : {kG, 2 * kG, 4 * kG, kSlab}) {
    SCOPED_TRACE(len);
    ChunkBufferPool pool(0);
    const size_t per_slab = kSlab / len;
    std::vector<std::shared_ptr<ChunkBuffer>> held;
    std::set<uintptr_t> starts;
    for (size_t i = 0; i < per_slab + 1; ++i) {
      held.push_back(MustAcquire(pool, len));
      ASSERT_NE(held.back(), nullptr);
      starts.insert(reinterpret_cast<uintptr_t>(held.back()->span().data()));
      Fill(held.back()->span(), static_cast<uint8_t>(i));
    }
    EXPECT_EQ(starts.size(), per_slab + 1) << "every buffer has its own slot";
    for (size_t i = 0; i < per_slab; ++i) {
      EXPECT_EQ(SlabOf(*held[i]), SlabOf(*held[0])) << "slot " << i << " of the first slab";
      EXPECT_EQ(reinterpret_cast<uintptr_t>(held[i]->span().data()) % len, 0u);
    }
    EXPECT_NE(SlabOf(*held[per_slab]), SlabOf(*held[0])) << "a full slab makes a new one";
    for (size_t i = 0; i < held.size(); ++i) {
      EXPECT_TRUE(Holds(held[i]->span(), static_cast<uint8_t>(i))) << "slots overlap at " << i;
    }
  }
}

TEST(ChunkBufferPool, SlabIsUnmappedWithItsLastBuffer) {
  ChunkBufferPool pool(0);  // keeps nothing: a returned buffer is wiped and given back
  auto a = MustAcquire(pool, kG);
  auto b = MustAcquire(pool, kG);
  ASSERT_TRUE(a && b);
  const uintptr_t slab = SlabOf(*a);
  ASSERT_EQ(SlabOf(*b), slab);
  a.reset();
  EXPECT_TRUE(Mapped(slab, kSlab)) << "b still uses the slab";
  b.reset();
  EXPECT_FALSE(Mapped(slab, kSlab)) << "the slab's last buffer is gone: unmapped";
  // The next buffer comes from a new slab.
  auto c = MustAcquire(pool, kG);
  ASSERT_NE(c, nullptr);
  Fill(c->span(), 4);
  EXPECT_TRUE(Holds(c->span(), 4));
}

TEST(ChunkBufferPool, SlotIsWipedWhenGivenBackAndReused) {
  ChunkBufferPool pool(0);
  auto keep = MustAcquire(pool, kG);  // keeps the slab mapped
  auto b = MustAcquire(pool, kG - 100);
  ASSERT_TRUE(keep && b);
  Fill(b->span(), 7);
  const uint8_t* slot = b->span().data();
  b.reset();
  for (size_t i = 0; i < kG - 100; ++i) {
    ASSERT_EQ(slot[i], 0) << "plaintext left in a slot given back, at " << i;
  }
  auto c = MustAcquire(pool, kG);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->span().data(), slot) << "the free slot is reused before a new slab is mapped";
  EXPECT_EQ(pool.mapped_count(), 3u);
}

TEST(ChunkBufferPool, WipeCoversTheLeadAndTheSpan) {
  ChunkBufferPool pool(0);
  auto keep = MustAcquire(pool, kG);  // keeps the slab mapped
  auto b = MustAcquire(pool, kG - 300, 200);
  ASSERT_TRUE(keep && b);
  // Bytes before the span may hold an earlier chunk's plaintext when a buffer is reused
  // with a smaller lead; write there too to see that the wipe reaches them.
  uint8_t* slot = b->span().data() - b->lead();
  std::memset(slot, 0x5a, b->lead());
  Fill(b->span(), 8);
  b.reset();
  for (size_t i = 0; i < kG - 100; ++i) {
    ASSERT_EQ(slot[i], 0) << "plaintext left in a slot given back, at " << i;
  }
}

TEST(ReusedBuffer, SpansAtTheirLeadsFromOneMappingUntilOneDoesNotFit) {
  ReusedBuffer buf;
  const uint8_t* mapping = nullptr;
  for (size_t lead : {size_t{0}, size_t{16}, size_t{4095}, size_t{63}, size_t{0}}) {
    SCOPED_TRACE(lead);
    auto s = buf.Span(kG, lead);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->size(), kG);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(s->data()) % 4096, lead);
    if (mapping == nullptr) mapping = s->data() - lead;
    EXPECT_EQ(s->data() - lead, mapping) << "one length, any lead: one mapping";
    Fill(*s, static_cast<uint8_t>(lead));
    EXPECT_TRUE(Holds(*s, static_cast<uint8_t>(lead)));
  }
  auto small = buf.Span(100, 7);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->data() - 7, mapping) << "a shorter span fits the mapping";
  auto big = buf.Span(3 * kG, 16);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->size(), 3 * kG);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big->data()) % 4096, 16u);
  Fill(*big, 2);
  EXPECT_TRUE(Holds(*big, 2));
  auto empty = buf.Span(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(buf.Span(SIZE_MAX - 1).ok()) << "too large: an error, not a crash";
  EXPECT_FALSE(buf.Span(size_t{1} << 50).ok()) << "more than the address space";
}

TEST(ChunkBufferPool, OtherSizesGetTheirOwnMapping) {
  ChunkBufferPool pool(0);
  auto b = MustAcquire(pool, 3 * kG);  // 768 KiB does not divide 2 MiB
  ASSERT_NE(b, nullptr);
  const uintptr_t start = reinterpret_cast<uintptr_t>(b->span().data());
  b.reset();
  EXPECT_FALSE(Mapped(start, 3 * kG)) << "unmapped on release";
}

}  // namespace
}  // namespace ctfs::fs
