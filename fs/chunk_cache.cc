// SPDX-License-Identifier: Apache-2.0
#include "fs/chunk_cache.h"

#include <algorithm>

#include "base/secret_bytes.h"

namespace ctfs::fs {

Result<ChunkCache::Chunk> ChunkCache::GetOrLoad(const Key& key, size_t len, const Loader& load) {
  return Load(key, len, load, /*prefetch=*/false);
}

Result<ChunkCache::Chunk> ChunkCache::Load(const Key& key, size_t len, const Loader& load,
                                           bool prefetch) {
  auto run_loader = [&]() -> Result<Chunk> {
    CTFS_ASSIGN_OR_RETURN(std::shared_ptr<ChunkBuffer> chunk, pool_.Acquire(len));
    Status st = load(chunk->span());
    if (!st.ok()) {
      WipeMemory(chunk->span().data(), len);  // the loader may have left partial plaintext
      return st;
    }
    return Chunk(std::move(chunk));
  };
  if (capacity_ == 0) return prefetch ? Chunk() : run_loader();

  std::promise<Result<Chunk>> promise;
  std::shared_future<Result<Chunk>> pending;
  uint64_t load_id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    // A prefetch decides and inserts under one lock: checking first and inserting later
    // could load a chunk the reader has meanwhile loaded and consumed, and park the copy.
    if (prefetch && (it != entries_.end() || consumed_.count(key) != 0)) return Chunk();
    if (it != entries_.end()) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
      pending = it->second.future;
    } else {
      ++misses_;
      lru_.push_front(key);
      load_id = ++next_load_id_;
      Entry& e = entries_[key];
      e.future = promise.get_future().share();
      e.lru_pos = lru_.begin();
      e.load_id = load_id;
    }
  }
  // A hit may still be loading on another thread: wait for it outside the lock.
  if (pending.valid()) return pending.get();
  Result<Chunk> r = run_loader();
  {
    // Account for the chunk before waiters wake, so that their NoteServed() counts.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    // Clear() may have dropped our entry meanwhile, and a newer load may have replaced it.
    if (it != entries_.end() && it->second.load_id == load_id) {
      if (!r.ok()) {
        EraseLocked(it);
      } else {
        it->second.bytes = len;
        bytes_ += len;
        EvictLocked();
        peak_bytes_ = std::max(peak_bytes_, bytes_);
      }
    }
  }
  promise.set_value(r);
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

void ChunkCache::EraseLocked(std::map<Key, Entry>::iterator it) {
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru_pos);
  entries_.erase(it);
}

bool ChunkCache::WantsPrefetch(const Key& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return capacity_ > 0 && entries_.count(key) == 0 && consumed_.count(key) == 0;
}

void ChunkCache::Prefetch(const Key& key, size_t len, const Loader& load) {
  (void)Load(key, len, load, /*prefetch=*/true);
}

void ChunkCache::NoteServed(const Key& key, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.bytes == 0) return;  // gone, or a new load under way
  it->second.served += len;
  if (it->second.served < it->second.bytes) return;
  EraseLocked(it);
  if (consumed_.insert(key).second) consumed_fifo_.push_back(key);
  if (consumed_fifo_.size() > kConsumedMemory) {
    consumed_.erase(consumed_fifo_.front());
    consumed_fifo_.pop_front();
  }
}

void ChunkCache::Clear() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.clear();
    lru_.clear();
    bytes_ = 0;
    consumed_.clear();
    consumed_fifo_.clear();
  }
  pool_.Drain();
}

size_t ChunkCache::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

size_t ChunkCache::peak_cached_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_bytes_;
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
