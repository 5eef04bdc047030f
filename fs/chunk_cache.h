// SPDX-License-Identifier: Apache-2.0
// ChunkCache: a byte-capped LRU cache of decrypted, already-authenticated chunks (v2 chunks or
// whole v1 tensors), keyed by (file, tensor, unit). FUSE reads arrive in <= 1 MiB pieces while
// chunks are 2 MiB by default: without the cache a sequential scan would decrypt every chunk
// several times.
//
// Only verified plaintext enters the cache (the loader authenticates before returning OK).
// Concurrent misses on the same key run the loader once; the others wait for its result.
// Failed loads are not cached. Evicted and cleared chunks are wiped once the last reader
// releases them. Clear() is part of revocation.
// Thread safety: thread-safe.
#ifndef CTFS_FS_CHUNK_CACHE_H_
#define CTFS_FS_CHUNK_CACHE_H_

#include <cstdint>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "base/bytes.h"
#include "base/result.h"
#include "base/wiped_bytes.h"

namespace ctfs::fs {

class ChunkCache {
 public:
  struct Key {
    uint64_t file_id;
    uint64_t tensor;
    uint64_t unit;
    auto operator<=>(const Key&) const = default;
  };
  using Chunk = std::shared_ptr<const WipedBytes>;
  // A loader fills the span (exactly `len` bytes) with authenticated plaintext or fails.
  using Loader = std::function<Status(MutableByteSpan)>;

  // capacity_bytes == 0 disables caching (every Get loads).
  explicit ChunkCache(size_t capacity_bytes) : capacity_(capacity_bytes) {}
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  // GetOrLoad returns the chunk for `key`, loading it with `load` if needed.
  Result<Chunk> GetOrLoad(const Key& key, size_t len, const Loader& load);

  // Clear drops every cached chunk (wiped when no reader holds it any more).
  void Clear();

  size_t cached_bytes() const;
  uint64_t hits() const;
  uint64_t misses() const;

 private:
  struct Entry {
    std::shared_future<Result<Chunk>> future;
    std::list<Key>::iterator lru_pos;
    size_t bytes = 0;  // 0 while loading
  };
  void EvictLocked();

  const size_t capacity_;
  mutable std::mutex mu_;
  std::map<Key, Entry> entries_;  // GUARDED_BY(mu_)
  std::list<Key> lru_;            // GUARDED_BY(mu_), most recent first
  size_t bytes_ = 0;              // GUARDED_BY(mu_)
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_CHUNK_CACHE_H_
