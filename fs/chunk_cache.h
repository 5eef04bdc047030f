// SPDX-License-Identifier: Apache-2.0
// ChunkCache: a byte-capped LRU cache of decrypted, already-authenticated chunks (v2 chunks or
// whole v1 tensors), keyed by (file, tensor, unit). FUSE reads arrive in <= 1 MiB pieces that
// need not line up with chunks (256 KiB by `ctfs encrypt` default, 2 MiB by the reference's):
// without the cache a sequential scan would decrypt chunks more than once.
//
// Only verified plaintext enters the cache (the loader authenticates before returning OK).
// Concurrent misses on the same key run the loader once; the others wait for its result.
// Failed loads are not cached. Chunk memory comes from a ChunkBufferPool: evicted chunks go
// back to it once the last reader releases them (wiped if the pool is full or drained).
// Clear() is part of revocation: it drops every chunk and drains the pool.
//
// A chunk whose every byte has been served (NoteServed) is dropped at once: the kernel's page
// cache now holds those bytes, so keeping a second plaintext copy would only cost memory. A
// sequential scan therefore keeps just the chunks being read and those decrypted ahead.
// Thread safety: thread-safe.
#ifndef CTFS_FS_CHUNK_CACHE_H_
#define CTFS_FS_CHUNK_CACHE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <tuple>
#include <vector>

#include "base/bytes.h"
#include "base/mutex.h"
#include "base/result.h"
#include "fs/chunk_buffer_pool.h"

namespace ctfs::fs {

class ChunkCache {
 public:
  struct Key {
    uint64_t file_id;
    uint64_t tensor;
    uint64_t unit;
    auto operator<=>(const Key&) const = default;
  };
  using Chunk = std::shared_ptr<const ChunkBuffer>;
  // A loader fills the span (exactly `len` bytes) with authenticated plaintext or fails.
  using Loader = std::function<Status(MutableByteSpan)>;

  // capacity_bytes == 0 disables caching (every Get loads). Up to `idle_buffer_bytes` of
  // released chunk buffers are kept for reuse.
  explicit ChunkCache(size_t capacity_bytes, size_t idle_buffer_bytes = kDefaultIdleBufferBytes)
      : capacity_(capacity_bytes), pool_(idle_buffer_bytes) {}
  static constexpr size_t kDefaultIdleBufferBytes = 16u << 20;
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  // GetOrLoad returns the chunk for `key`, loading it with `load` if needed into a buffer
  // that starts `lead` bytes past a page boundary (ChunkBufferPool::Acquire).
  Result<Chunk> GetOrLoad(const Key& key, size_t len, const Loader& load, size_t lead = 0);

  // WantsPrefetch: `key` is neither cached, nor being loaded, nor among the last
  // kConsumedMemory chunks dropped after being served whole, since the last load of such a
  // chunk (does not count as a use).
  bool WantsPrefetch(const Key& key) const;

  // Prefetch loads `key` like GetOrLoad if WantsPrefetch(key) (decided under the lock that
  // reserves it: a prefetch that lost the race to the reader must not park an unread copy
  // in the cache). PrefetchRun of one key.
  void Prefetch(const Key& key, size_t len, const Loader& load);
  // A slot of PrefetchRun: which key (index into `keys`), the buffer for it, and the
  // loader's verdict: OK only if `buf` holds its authenticated plaintext (it starts as an
  // error, so a slot the loader skipped is dropped).
  struct RunSlot {
    size_t index = 0;
    MutableByteSpan buf;
    Status status;
  };
  // A run loader fills the slots; it may call `ready(k)` once slots[k] is final, to hand that
  // chunk to waiting readers before the rest of the run is done.
  using RunLoader =
      std::function<void(std::span<RunSlot> slots, const std::function<void(size_t k)>& ready)>;
  // PrefetchRun is Prefetch for several keys with one loader call (so that consecutive
  // chunks can be read from disk at once): the keys that WantsPrefetch are reserved (readers
  // wait for them, as for any load), `load` fills them, and each is published or dropped on
  // its own status. `lens[i]` is the length of `keys[i]`, `leads[i]` (if given) the lead of its
  // buffer as for GetOrLoad. Nothing is loaded if no key wants it.
  void PrefetchRun(std::span<const Key> keys, std::span<const size_t> lens, const RunLoader& load,
                   std::span<const size_t> leads = {});

  // How many consumed keys are remembered: enough to cover the decrypt-ahead windows of
  // readers that jump back and forth (transformers loads tensors in name order, not file
  // order: with 256 keys and a 64 MiB window, a 0.5 GiB model took 2,755 chunk loads for
  // ~2,100 chunks; with 2,048 or 4,096 keys, 2,085-2,102). A load of a consumed key (the
  // kernel dropped its pages and reads it again) forgets them all, so that a re-read is
  // decrypted ahead of.
  static constexpr size_t kConsumedMemory = 4096;

  // NoteServed records that `len` more bytes of `key`'s chunk were handed to a reader; once
  // the whole chunk has been, it is dropped from the cache.
  void NoteServed(const Key& key, size_t len);

  // Clear drops every cached chunk and drains the buffer pool (every chunk is wiped when no
  // reader holds it any more).
  void Clear();

  // Bytes of cached chunks (a chunk whose lead took a granule more counts that too); the
  // capacity bounds this.
  size_t cached_bytes() const;
  size_t peak_cached_bytes() const;
  const ChunkBufferPool& pool() const { return pool_; }
  uint64_t hits() const;
  uint64_t misses() const;
  // waits: hits that found the chunk still loading (a decrypt-ahead run or another reader's
  // miss) and blocked; wait_ns: the time they blocked, in total.
  uint64_t waits() const { return waits_.load(std::memory_order_relaxed); }
  uint64_t wait_ns() const { return wait_ns_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::shared_future<Result<Chunk>> future;
    std::list<Key>::iterator lru_pos;
    size_t bytes = 0;      // the chunk's length; 0 while loading
    size_t charge = 0;     // what it counts in bytes_: its length plus what its lead costs
    size_t served = 0;     // bytes handed to readers so far
    uint64_t load_id = 0;  // which GetOrLoad call created it
  };
  // ReserveLocked inserts a loading entry for `key` (a miss) and returns its load id.
  uint64_t ReserveLocked(const Key& key, std::shared_future<Result<Chunk>> future)
      CTFS_REQUIRES(mu_);
  // Finish accounts for the outcome `r` of load `load_id` of `key` (unless Clear() or a newer
  // load replaced its entry) before waiters see it.
  // `charge`: what it counts against the capacity (its length, plus ChunkBufferPool::LeadCost).
  void Finish(const Key& key, uint64_t load_id, size_t len, size_t charge, const Result<Chunk>& r);
  void EvictLocked() CTFS_REQUIRES(mu_);
  void EraseLocked(std::map<Key, Entry>::iterator it) CTFS_REQUIRES(mu_);

  const size_t capacity_;
  ChunkBufferPool pool_;
  mutable Mutex mu_;
  std::map<Key, Entry> entries_ CTFS_GUARDED_BY(mu_);
  std::list<Key> lru_ CTFS_GUARDED_BY(mu_);          // most recent first
  std::set<Key> consumed_ CTFS_GUARDED_BY(mu_);      // served whole and dropped ...
  std::deque<Key> consumed_fifo_ CTFS_GUARDED_BY(mu_);  // ... oldest first, for forgetting
  size_t bytes_ CTFS_GUARDED_BY(mu_) = 0;
  size_t peak_bytes_ CTFS_GUARDED_BY(mu_) = 0;
  uint64_t next_load_id_ CTFS_GUARDED_BY(mu_) = 0;
  uint64_t hits_ CTFS_GUARDED_BY(mu_) = 0;
  uint64_t misses_ CTFS_GUARDED_BY(mu_) = 0;
  // Counted outside mu_: a waiter must not take the cache lock again just to count.
  std::atomic<uint64_t> waits_{0}, wait_ns_{0};
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_CHUNK_CACHE_H_
