// SPDX-License-Identifier: Apache-2.0
#include "fs/chunk_cache.h"

namespace ctfs::fs {

Result<ChunkCache::Chunk> ChunkCache::GetOrLoad(const Key& key, size_t len, const Loader& load) {
  auto run_loader = [&]() -> Result<Chunk> {
    auto chunk = std::make_shared<WipedBytes>(len);
    CTFS_RETURN_IF_ERROR(load(chunk->span()));
    return Chunk(std::move(chunk));
  };
  if (capacity_ == 0) return run_loader();

  std::promise<Result<Chunk>> promise;
  std::shared_future<Result<Chunk>> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
      pending = it->second.future;
    } else {
      ++misses_;
      lru_.push_front(key);
      entries_[key] = Entry{promise.get_future().share(), lru_.begin(), 0};
    }
  }
  // A hit may still be loading on another thread: wait for it outside the lock.
  if (pending.valid()) return pending.get();
  Result<Chunk> r = run_loader();
  promise.set_value(r);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {  // Clear() may have dropped it meanwhile
    if (!r.ok()) {
      lru_.erase(it->second.lru_pos);
      entries_.erase(it);
    } else {
      it->second.bytes = len;
      bytes_ += len;
      EvictLocked();
    }
  }
  return r;
}

void ChunkCache::EvictLocked() {
  auto pos = lru_.end();
  while (bytes_ > capacity_ && pos != lru_.begin()) {
    --pos;
    auto it = entries_.find(*pos);
    if (it == entries_.end() || it->second.bytes == 0) continue;  // still loading
    bytes_ -= it->second.bytes;
    entries_.erase(it);
    pos = lru_.erase(pos);
  }
}

void ChunkCache::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
  lru_.clear();
  bytes_ = 0;
}

size_t ChunkCache::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

uint64_t ChunkCache::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

uint64_t ChunkCache::misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return misses_;
}

}  // namespace ctfs::fs
