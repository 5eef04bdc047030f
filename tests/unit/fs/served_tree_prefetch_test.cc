// SPDX-License-Identifier: Apache-2.0
// ServedTree's read path beyond plain reads: decrypt-ahead of sequential readers (PlanReadAhead,
// the Prefetcher jobs, revocation and destruction with jobs queued) and zero-copy ReadSpans.
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "fs/served_tree.h"
#include "tests/testing/wait_for.h"
#include "tests/unit/fs/served_tree_fixture.h"

namespace ctfs::fs {
namespace {

using ctfs::testing::WaitFor;

// OpenAndReadHeader opens file `ino` and reads its header alone. With a 16 KiB window that
// read plans the chunks of the first 16 KiB of data: t0 units 0-1, t1 unit 0, t2 units 0-2
// (t2 starts at 5003; 5003 + 3 * 4096 > 16384).
std::optional<OpenHandle> OpenAndReadHeader(const ServedTree& tree, uint64_t ino, uint64_t prefix) {
  auto h = tree.Open(ino);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  if (!h.ok()) return std::nullopt;
  Bytes buf(prefix);
  auto n = tree.Read(*h, 0, buf);
  EXPECT_TRUE(n.ok() && *n == prefix);
  if (!n.ok() || *n != prefix) return std::nullopt;
  return std::move(*h);
}

TEST_F(ServedTreeTest, SequentialSmallReadsWithPrefetchMatchPlaintext) {
  ASSERT_EQ(plain_.size(), PrefixLen() + kDataLen) << "guards the layout constants";
  for (size_t cache : {size_t{256} << 20, size_t{8192}}) {
    for (size_t piece : {size_t{1000}, size_t{4096}, size_t{777}, size_t{65536}}) {
      auto tree = MakeTree(PrefetchOptions(16384, 2, cache));
      ASSERT_NE(tree, nullptr);
      EXPECT_EQ(ReadAll(*tree, Ino(*tree, "model.safetensors"), piece), plain_)
          << "cache " << cache << " piece " << piece;
      ASSERT_TRUE(WaitFor([&] { return tree->prefetched() > 0; }))
          << "a sequential reader must have queued read-ahead (cache " << cache << ", piece "
          << piece << ")";
      EXPECT_LE(tree->cache().cached_bytes(), cache);
      // A second scan (chunks are now consumed) is just as correct.
      EXPECT_EQ(ReadAll(*tree, Ino(*tree, "model.safetensors"), piece), plain_);
    }
  }
}

TEST_F(ServedTreeTest, SequentialReadsThroughReadSpansMatchPlaintext) {
  // What the FUSE read handler does: ReadSpans where it can, Read otherwise.
  auto tree = MakeTree(PrefetchOptions(16384, 2));
  ASSERT_NE(tree, nullptr);
  auto h = tree->Open(Ino(*tree, "model.safetensors"));
  ASSERT_TRUE(h.ok());
  std::string out;
  size_t direct = 0;
  for (uint64_t off = 0; off < plain_.size() + 1000; off += 1500) {
    if (auto s = SpansText(*tree, *h, off, 1500)) {
      ++direct;
      out += *s;
      continue;
    }
    Bytes buf(1500);
    auto n = tree->Read(*h, off, buf);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    out.append(buf.begin(), buf.begin() + *n);
  }
  EXPECT_EQ(out, plain_);
  EXPECT_GT(direct, 40u) << "everything after the header goes the zero-copy way";
  EXPECT_TRUE(WaitFor([&] { return tree->prefetched() > 0; }));
}

TEST_F(ServedTreeTest, PrefetchDecryptsTheChunksAheadOfASequentialReader) {
  // One prefetch thread: jobs run in the order they were queued.
  auto tree = MakeTree(PrefetchOptions(16384, 1));
  ASSERT_NE(tree, nullptr);
  const uint64_t prefix = PrefixLen();
  auto h = OpenAndReadHeader(*tree, Ino(*tree, "model.safetensors"), prefix);
  ASSERT_TRUE(h.has_value());
  Bytes buf;
  const uint64_t first_window = 4096 + 904 + 3 + 3 * kChunk;
  ASSERT_TRUE(WaitForPrefetch(*tree, 6, first_window));
  EXPECT_EQ(tree->prefetched(), 6u);
  EXPECT_EQ(tree->cache().cached_bytes(), first_window) << "decrypted before anyone asked";
  // The reader now finds t0 and t1 decrypted.
  const uint64_t hits = tree->cache().hits();
  buf.resize(kT2Begin);
  ASSERT_EQ(*tree->Read(*h, prefix, buf), kT2Begin);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), plain_.substr(prefix, kT2Begin));
  EXPECT_GE(tree->cache().hits(), hits + 3);
  // t0 and t1 were served whole (dropped); the window moved on by one more t2 chunk (unit 3):
  // only that one is queued, the others are already cached.
  ASSERT_TRUE(WaitForPrefetch(*tree, 7, 4 * kChunk));
  EXPECT_EQ(tree->prefetched(), 7u);
  EXPECT_EQ(tree->cache().cached_bytes(), 4 * kChunk);
}

TEST_F(ServedTreeTest, PrefetchReadsAlignedRunsOfChunks) {
  // Runs of 4 chunks (16 KiB): one job per run, aligned to the run grid of each tensor.
  auto tree = MakeTree(PrefetchOptions(16384, 1, 256u << 20, 4 * kChunk));
  ASSERT_NE(tree, nullptr);
  const uint64_t prefix = PrefixLen();
  // The header read plans t0 units 0-1, t1 unit 0, t2 units 0-2: three runs, t0's and t1's
  // whole tensors and t2 units 0-3 (the run goes to the end of its grid cell).
  auto h = OpenAndReadHeader(*tree, Ino(*tree, "model.safetensors"), prefix);
  ASSERT_TRUE(h.has_value());
  Bytes buf;
  const uint64_t first_runs = 5000 + 3 + 4 * kChunk;
  ASSERT_TRUE(WaitForPrefetch(*tree, 3, first_runs));
  EXPECT_EQ(tree->prefetched(), 3u);
  EXPECT_EQ(tree->cache().cached_bytes(), first_runs);
  // Reading on into t2 unit 4 (which the read loads itself) plans t2 units 4-8: two more
  // runs, units 5-7 (4 is cached) and 8-11. Units 0-3 were served whole and dropped.
  buf.resize(kT2Begin + 4 * kChunk + 10);
  ASSERT_EQ(*tree->Read(*h, prefix, buf), buf.size());
  EXPECT_EQ(std::string(buf.begin(), buf.end()), plain_.substr(prefix, buf.size()));
  ASSERT_TRUE(WaitForPrefetch(*tree, 5, 8 * kChunk));
  EXPECT_EQ(tree->prefetched(), 5u);
  EXPECT_EQ(tree->cache().cached_bytes(), 8 * kChunk);
  // The whole file still reads back exactly, in small and large pieces.
  for (size_t piece : {size_t{999}, size_t{65536}}) {
    EXPECT_EQ(ReadAll(*tree, Ino(*tree, "model.safetensors"), piece), plain_) << piece;
  }
}

TEST_F(ServedTreeTest, RandomReadsQueueNoPrefetch) {
  auto tree = MakeTree(PrefetchOptions(8192, 1));
  ASSERT_NE(tree, nullptr);
  auto h = tree->Open(Ino(*tree, "model.safetensors"));
  ASSERT_TRUE(h.ok());
  const uint64_t prefix = PrefixLen();
  Bytes buf(100);
  // Each jump is more than 8 KiB away from the end of the previous read; each read lies in one
  // t2 chunk (units 8, 1, 13, 4).
  for (uint64_t data_off : {40000u, 10000u, 60000u, 25000u}) {
    ASSERT_EQ(*tree->Read(*h, prefix + data_off, buf), 100u);
    EXPECT_EQ(std::string(buf.begin(), buf.end()), plain_.substr(prefix + data_off, 100));
  }
  EXPECT_EQ(tree->cache().misses(), 4u);
  // Two reads continuing the last one make a stream: the window of the second, [25300, 33492),
  // holds t2 units 4 (cached), 5 and 6, so exactly two jobs. The single prefetch thread runs
  // jobs in order: once these two ran, any job a random read had queued would have run before.
  ASSERT_EQ(*tree->Read(*h, prefix + 25100, buf), 100u);
  ASSERT_EQ(*tree->Read(*h, prefix + 25200, buf), 100u);
  ASSERT_TRUE(WaitForPrefetch(*tree, 2, 6 * kChunk));
  EXPECT_EQ(tree->prefetched(), 2u) << "random reads must not queue read-ahead";
  EXPECT_EQ(tree->cache().cached_bytes(), 6 * kChunk);
  EXPECT_EQ(tree->cache().misses(), 6u);
}

TEST_F(ServedTreeTest, PlanReadAheadDetectsSequentialAccess) {
  auto tree = MakeTree(PrefetchOptions(0, 0));  // no prefetcher: PlanReadAhead is ours alone
  ASSERT_NE(tree, nullptr);
  const uint64_t ino = Ino(*tree, "model.safetensors");
  auto h = tree->Open(ino);
  ASSERT_TRUE(h.ok());
  const PlainFile& f = FileOf(*tree, *h);
  ASSERT_TRUE(f.encrypted());
  const uint64_t prefix = PrefixLen();
  ASSERT_EQ(f.encrypted_file()->plain_prefix().size(), prefix);
  using Keys = std::vector<ChunkCache::Key>;
  auto t = [&](uint64_t tensor, uint64_t unit) { return ChunkCache::Key{ino, tensor, unit}; };
  EXPECT_EQ(f.PlanReadAhead(0, prefix, Flat(16384)),
            (Keys{t(0, 0), t(0, 1), t(1, 0), t(2, 0), t(2, 1), t(2, 2)}));
  // A far jump is random access: nothing; nor for the read continuing it (two reads near each
  // other are not yet a stream).
  EXPECT_EQ(f.PlanReadAhead(prefix + 60000, 100, Flat(16384)), Keys{});
  EXPECT_EQ(f.PlanReadAhead(prefix + 60100, 100, Flat(16384)), Keys{});
  // The third read is: t2 units 13-17 and t4 (t3 is empty), clipped at EOF.
  EXPECT_EQ(f.PlanReadAhead(prefix + 60200, 100, Flat(16384)),
            (Keys{t(2, 13), t(2, 14), t(2, 15), t(2, 16), t(2, 17), t(4, 0)}));
  // Chunks already cached are left out.
  Bytes buf(10);
  ASSERT_TRUE(tree->Read(*h, prefix + kT2Begin + 14 * kChunk + 10, buf).ok());
  ASSERT_TRUE(tree->Read(*h, prefix + kT2Begin + 16 * kChunk + 10, buf).ok());
  EXPECT_EQ(f.PlanReadAhead(prefix + 60300, 100, Flat(16384)),
            (Keys{t(2, 13), t(2, 15), t(2, 17), t(4, 0)}));
  // A step back within the window still counts as sequential (readahead arrives out of order).
  EXPECT_EQ(f.PlanReadAhead(prefix + 50000, 10000, Flat(16384)).empty(), false);
  // The read reaching EOF plans nothing.
  EXPECT_EQ(f.PlanReadAhead(plain_.size() - 50, 50, Flat(16384)), Keys{});
  // Chunks larger than the window are skipped: a 1000-byte window after data offset 4990
  // holds t0 unit 1 (904 B), t1 (3 B) and the start of t2 unit 0 (4096 B).
  EXPECT_EQ(f.PlanReadAhead(prefix + 4000, 990, Flat(1000)), Keys{});  // jump: a new stream
  EXPECT_EQ(f.PlanReadAhead(prefix + 4000, 990, Flat(1000)), Keys{});  // its second read
  EXPECT_EQ(f.PlanReadAhead(prefix + 4000, 990, Flat(1000)), (Keys{t(0, 1), t(1, 0)}));
  EXPECT_EQ(f.PlanReadAhead(prefix + 4990, 10, Flat(0)), Keys{}) << "a zero window plans nothing";
  // Passthrough files plan nothing.
  auto other = tree->Open(Ino(*tree, "config.json"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(FileOf(*tree, *other).PlanReadAhead(0, 3, Flat(16384)), Keys{});
}

TEST_F(ServedTreeTest, ReadAheadWindowGrowsWithTheStream) {
  auto d = MakeDetector();
  ASSERT_TRUE(d.has_value());
  const PlainFile& f = d->file();
  const uint64_t ino = Ino(*d->tree, "model.safetensors");
  const uint64_t prefix = PrefixLen();
  using Keys = std::vector<ChunkCache::Key>;
  const PlainFile::AheadWindow w{.first_len = kChunk, .max_len = 8 * kChunk};
  ASSERT_LT(2 * prefix, w.first_len);
  // A header probe at offset 0 (a confirmed stream at once) gets the first window, one chunk,
  // not the whole window.
  EXPECT_EQ(f.PlanReadAhead(0, prefix, w), (Keys{ChunkCache::Key{ino, 0, 0}}));
  // As the stream reads on, the window is twice what it has read, up to the maximum: the last
  // chunk planned is the one holding the window's last byte (all in t2 here).
  uint64_t streamed = prefix;
  uint64_t ahead_len = 0;
  for (uint64_t data_off = 0; data_off + kChunk <= 9 * kChunk; data_off += kChunk) {
    const Keys keys = f.PlanReadAhead(prefix + data_off, kChunk, w);
    streamed += kChunk;
    ahead_len = std::min(w.max_len, std::max(w.first_len, 2 * streamed));
    const uint64_t last = data_off + kChunk + ahead_len - 1;
    ASSERT_GE(last, kT2Begin);
    ASSERT_FALSE(keys.empty()) << data_off;
    EXPECT_EQ(keys.back(), (ChunkCache::Key{ino, 2, (last - kT2Begin) / kChunk}))
        << "read at data offset " << data_off << ", window " << ahead_len;
  }
  EXPECT_EQ(ahead_len, w.max_len) << "the loop reads far enough to reach the cap";
}

TEST_F(ServedTreeTest, SparseReadsNearEachOtherAreNoStream) {
  auto d = MakeDetector();
  ASSERT_TRUE(d.has_value());
  const PlainFile& f = d->file();
  const uint64_t prefix = PrefixLen();
  // Random readers land within the window of each other now and then; however many such
  // reads, they cover too little of the range they span to be decrypted ahead of.
  for (uint64_t off = 20000; off < 60000; off += 4000) {
    EXPECT_TRUE(f.PlanReadAhead(prefix + off, 100, Flat(16384)).empty()) << off;
  }
  // Dense reads in the same place are a stream from the kConfirmReads-th read on.
  for (uint64_t i = 0; i < PlainFile::kConfirmReads; ++i) {
    EXPECT_EQ(f.PlanReadAhead(prefix + 60000 + i * 1000, 1000, Flat(16384)).empty(),
              i + 1 < PlainFile::kConfirmReads)
        << i;
  }
}

TEST_F(ServedTreeTest, PlanReadAheadFollowsSeveralReadersOfOneFile) {
  auto d = MakeDetector();
  ASSERT_TRUE(d.has_value());
  const PlainFile& f = d->file();
  const uint64_t prefix = PrefixLen();
  constexpr uint64_t kWindow = 8192;  // > one 4096-byte chunk; readers start 10000 apart
  // `readers` sequential readers, interleaved read by read (100 bytes each), as several
  // processes loading one shard would; returns how many reads from each reader's
  // kConfirmReads-th on were seen as sequential.
  auto interleave = [&](uint64_t readers, uint64_t base) {
    size_t sequential = 0;
    for (uint64_t round = 0; round < 5; ++round) {
      for (uint64_t r = 0; r < readers; ++r) {
        auto keys = f.PlanReadAhead(prefix + base + r * 10000 + round * 100, 100, Flat(kWindow));
        if (round + 1 >= PlainFile::kConfirmReads && !keys.empty()) ++sequential;
      }
    }
    return sequential;
  };
  static_assert(PlainFile::kConfirmReads <= 5);
  EXPECT_EQ(interleave(PlainFile::kReadStreams, 0),
            (6 - PlainFile::kConfirmReads) * PlainFile::kReadStreams)
      << "each of kReadStreams interleaved readers keeps its read-ahead";
  // One reader more than there are streams: each read evicts the stream of the reader that
  // comes next, so nobody looks sequential (read-ahead is a hint; reads stay correct).
  EXPECT_EQ(interleave(PlainFile::kReadStreams + 1, 1000), 0u);
}

TEST_F(ServedTreeTest, ReadSpansServesDataRangesWithoutCopies) {
  auto tree = MakeTree(PrefetchOptions(16384, 2));
  ASSERT_NE(tree, nullptr);
  auto h = tree->Open(Ino(*tree, "model.safetensors"));
  ASSERT_TRUE(h.ok());
  const uint64_t prefix = PrefixLen();
  const uint64_t size = plain_.size();
  // Anything touching the header is declined.
  EXPECT_EQ(SpansText(*tree, *h, 0, 10), std::nullopt);
  EXPECT_EQ(SpansText(*tree, *h, 0, size), std::nullopt);
  EXPECT_EQ(SpansText(*tree, *h, prefix - 1, 1), std::nullopt);
  EXPECT_EQ(SpansText(*tree, *h, prefix - 1, 100), std::nullopt);
  // Data ranges: inside one chunk, across chunks, across tensor boundaries, all of it,
  // clipped at EOF.
  struct Range {
    uint64_t off, len;
  };
  const Range ranges[] = {
      {prefix, 1},
      {prefix, 4096},
      {prefix + 4095, 2},
      {prefix + 4990, 20},                   // t0 -> t1 -> t2
      {prefix + 4999, 5},                    // t0's last byte, t1, t2's first byte
      {prefix + 5000, 3},                    // t1 exactly
      {prefix + kT2Begin + 4000, 3 * 4096},  // several t2 chunks
      {prefix + kT2Begin + 69990, 20},       // t2 -> (empty t3) -> t4
      {prefix, kDataLen},                    // the whole data region
      {prefix + kDataLen - 10, 100},         // clipped at EOF
      {prefix + 30000, 0},                   // nothing
  };
  for (const Range& r : ranges) {
    auto got = SpansText(*tree, *h, r.off, r.len);
    ASSERT_TRUE(got.has_value()) << r.off - prefix << " +" << r.len;
    const uint64_t want_len = std::min<uint64_t>(r.len, size - r.off);
    EXPECT_EQ(*got, plain_.substr(r.off, want_len)) << r.off - prefix << " +" << r.len;
  }
  // At and past EOF: done, with no spans.
  for (uint64_t off : {size, size + 1, size + 100000}) {
    ChunkSpans spans;
    auto r = tree->ReadSpans(*h, off, 4096, spans);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(*r) << off;
    EXPECT_TRUE(spans.spans.empty()) << off;
  }
  // Random ranges in the data region.
  std::mt19937_64 rng(11);
  for (int i = 0; i < 300; ++i) {
    const uint64_t off = prefix + rng() % kDataLen;
    const size_t len = rng() % 20000;
    auto got = SpansText(*tree, *h, off, len);
    ASSERT_TRUE(got.has_value()) << off - prefix << " +" << len;
    ASSERT_EQ(*got, plain_.substr(off, std::min<uint64_t>(len, size - off)))
        << off - prefix << " +" << len;
  }
  // Passthrough files are declined, wherever the range lies.
  const TreeNode* sub = tree->tree().Lookup(kRootIno, "sub");
  ASSERT_NE(sub, nullptr);
  const TreeNode* other = tree->tree().Lookup(sub->ino, "other.safetensors");
  ASSERT_NE(other, nullptr);
  auto ph = tree->Open(other->ino);
  ASSERT_TRUE(ph.ok());
  EXPECT_EQ(SpansText(*tree, *ph, 0, 100), std::nullopt);
  EXPECT_EQ(SpansText(*tree, *ph, prefix + 10, 100), std::nullopt);
  EXPECT_EQ(SpansText(*tree, *ph, size + 10, 100), std::nullopt);
  auto config = tree->Open(Ino(*tree, "config.json"));
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(SpansText(*tree, *config, 0, 7), std::nullopt);
}

TEST_F(ServedTreeTest, ReadSpansKeepsItsChunksAliveAcrossRevoke) {
  auto tree = MakeTree(PrefetchOptions(16384, 2));
  ASSERT_NE(tree, nullptr);
  auto h = tree->Open(Ino(*tree, "model.safetensors"));
  ASSERT_TRUE(h.ok());
  const uint64_t prefix = PrefixLen();
  ChunkSpans spans;
  auto r = tree->ReadSpans(*h, prefix + 1000, 20000, spans);
  ASSERT_TRUE(r.ok() && *r);
  tree->Revoke();
  EXPECT_EQ(tree->cache().cached_bytes(), 0u);
  std::string got;
  for (ByteSpan s : spans.spans) got += AsStringView(s);
  EXPECT_EQ(got, plain_.substr(prefix + 1000, 20000)) << "a reply in flight keeps its bytes";
  ChunkSpans after;
  EXPECT_EQ(tree->ReadSpans(*h, prefix + 1000, 100, after).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(after.spans.empty());
}

TEST_F(ServedTreeTest, ReadSpansDeclinesTensorsStoredInPlain) {
  // Encrypt only t0 and t2: t1 and t4 stay plain.
  EncryptOptions opt;
  opt.chunk_size = 4096;
  opt.tensor_globs = {"t0", "t2"};
  std::filesystem::create_directories(dir_.File("partial"));
  ASSERT_TRUE(EncryptFile(dir_.File("plain.safetensors"), dir_.File("partial/model.safetensors"),
                          enc_, sign_, opt, nullptr)
                  .ok());
  auto tree = MakeTree(PrefetchOptions(16384, 2), "partial");
  ASSERT_NE(tree, nullptr);
  auto h = tree->Open(Ino(*tree, "model.safetensors"));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(h->encrypted());
  ASSERT_FALSE(FileOf(*tree, *h).encrypted_file()->IsTensorEncrypted(1));
  const uint64_t prefix = PrefixLen();
  EXPECT_EQ(SpansText(*tree, *h, prefix, 5000), plain_.substr(prefix, 5000)) << "t0 only";
  EXPECT_EQ(SpansText(*tree, *h, prefix + 4990, 20), std::nullopt) << "crosses plain t1";
  EXPECT_EQ(SpansText(*tree, *h, prefix + 5000, 1), std::nullopt) << "inside plain t1";
  EXPECT_EQ(SpansText(*tree, *h, prefix + kT2Begin + 100, 9000),
            plain_.substr(prefix + kT2Begin + 100, 9000))
      << "inside t2";
  EXPECT_EQ(SpansText(*tree, *h, prefix + kDataLen - 50, 50), std::nullopt) << "plain t4";
  EXPECT_EQ(ReadAll(*tree, Ino(*tree, "model.safetensors"), 1000), plain_);
}

TEST_F(ServedTreeTest, RevokeWithPrefetchJobsQueued) {
  for (int round = 0; round < 20; ++round) {
    auto tree = MakeTree(PrefetchOptions(64 << 10, 2));
    ASSERT_NE(tree, nullptr);
    auto h = tree->Open(Ino(*tree, "model.safetensors"));
    ASSERT_TRUE(h.ok());
    Bytes buf(100 + round * 50);
    ASSERT_TRUE(tree->Read(*h, 0, buf).ok());  // queues up to 64 KiB of chunks
    tree->Revoke();
    EXPECT_EQ(tree->cache().cached_bytes(), 0u);
    EXPECT_EQ(tree->Read(*h, 0, buf).status().code(), StatusCode::kPermissionDenied);
    ChunkSpans spans;
    EXPECT_EQ(tree->ReadSpans(*h, PrefixLen(), 10, spans).status().code(),
              StatusCode::kPermissionDenied);
    EXPECT_EQ(tree->Open(Ino(*tree, "model.safetensors")).status().code(),
              StatusCode::kPermissionDenied);
    // A job that was already taken off the queue finds the tree revoked and loads nothing.
    const uint64_t jobs = tree->prefetched();
    std::this_thread::yield();
    EXPECT_EQ(tree->cache().cached_bytes(), 0u) << "round " << round << ", " << jobs << " jobs";
  }
}

TEST_F(ServedTreeTest, RevokeWhileAReaderScansWithPrefetch) {
  for (int round = 0; round < 20; ++round) {
    auto tree = MakeTree(PrefetchOptions(32 << 10, 2, 16 << 10));
    ASSERT_NE(tree, nullptr);
    auto h = tree->Open(Ino(*tree, "model.safetensors"));
    ASSERT_TRUE(h.ok());
    std::atomic<int> reads{0}, wrong{0}, other_errors{0};
    std::atomic<bool> denied{false};
    std::thread reader([&] {
      Bytes buf(1500);
      for (int pass = 0; !denied.load() && pass < 1000; ++pass) {
        for (uint64_t off = 0; off < plain_.size(); off += buf.size()) {
          auto n = tree->Read(*h, off, buf);
          if (!n.ok()) {
            if (n.status().code() == StatusCode::kPermissionDenied) {
              denied = true;
            } else {
              ++other_errors;
            }
            return;
          }
          if (std::string_view(reinterpret_cast<const char*>(buf.data()), *n) !=
              std::string_view(plain_).substr(off, *n)) {
            ++wrong;
          }
          ++reads;
        }
      }
    });
    const int wait_reads = 1 + round * 3;
    EXPECT_TRUE(WaitFor([&] { return reads.load() >= wait_reads; }));
    tree->Revoke();
    reader.join();
    EXPECT_TRUE(denied.load()) << "the reader must see the revocation";
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(other_errors.load(), 0);
    EXPECT_EQ(tree->cache().cached_bytes(), 0u) << "round " << round;
  }
}

TEST_F(ServedTreeTest, DestroyWithPrefetchJobsQueued) {
  for (int round = 0; round < 20; ++round) {
    auto tree = MakeTree(PrefetchOptions(64 << 10, 1));
    ASSERT_NE(tree, nullptr);
    auto h = tree->Open(Ino(*tree, "model.safetensors"));
    ASSERT_TRUE(h.ok());
    Bytes buf(PrefixLen() + round * 100);
    ASSERT_EQ(*tree->Read(*h, 0, buf), buf.size());  // queues the chunks of the next 64 KiB
    EXPECT_EQ(std::string(buf.begin(), buf.end()), plain_.substr(0, buf.size()));
    tree.reset();  // must stop the prefetcher before the files its jobs use go away
  }
  // Also without ever reading, and without StartWorkers (no prefetcher at all).
  MakeTree(PrefetchOptions(64 << 10, 2)).reset();
  auto resolver = Resolver();
  auto unstarted =
      ServedTree::Create(dir_.File("src"), resolver, PrefetchOptions(1 << 20, 2), nullptr);
  ASSERT_TRUE(unstarted.ok());
  EXPECT_EQ((*unstarted)->prefetched(), 0u);
}

TEST_F(ServedTreeTest, FilesReadAtOnceShareTheReadAheadWindow) {
  auto d = MakeDetector();
  ASSERT_TRUE(d.has_value());
  const PlainFile& f = d->file();
  const uint64_t ino = Ino(*d->tree, "model.safetensors");
  const uint64_t prefix = PrefixLen();
  using Keys = std::vector<ChunkCache::Key>;
  auto t = [&](uint64_t tensor, uint64_t unit) { return ChunkCache::Key{ino, tensor, unit}; };
  StreamActivity activity;
  const PlainFile::AheadWindow shared{
      .first_len = 32768, .max_len = 32768, .shared_by = &activity, .min_share = 4096};
  // Another file is being read: this one gets half of the window, 16384 bytes (the keys of
  // PlanReadAheadDetectsSequentialAccess for that window), and counts as active itself.
  activity.Note(ino + 1000, StreamActivity::Clock::now());
  EXPECT_EQ(f.PlanReadAhead(0, prefix, shared),
            (Keys{t(0, 0), t(0, 1), t(1, 0), t(2, 0), t(2, 1), t(2, 2)}));
  EXPECT_EQ(activity.Active(StreamActivity::Clock::now()), 2u);
  // The read reaching EOF ends this file's stream: the other file is alone again.
  EXPECT_EQ(f.PlanReadAhead(plain_.size() - 50, 50, shared), Keys{});
  EXPECT_EQ(activity.Active(StreamActivity::Clock::now()), 1u);

  // Control: read alone, the same read gets the whole window, up to t2 unit 6 (data offset
  // 32767).
  auto alone = MakeDetector();
  ASSERT_TRUE(alone.has_value());
  StreamActivity nobody_else;
  const Keys keys = alone->file().PlanReadAhead(
      0, prefix,
      {.first_len = 32768, .max_len = 32768, .shared_by = &nobody_else, .min_share = 4096});
  ASSERT_FALSE(keys.empty());
  EXPECT_EQ(keys.back(), t(2, (32767 - kT2Begin) / kChunk));
  EXPECT_EQ(keys.size(), 10u);  // t0: 2 units, t1: 1, t2: units 0-6
}

}  // namespace
}  // namespace ctfs::fs
