// SPDX-License-Identifier: Apache-2.0
#include "fs/chunk_cache.h"

#include <algorithm>
#include <chrono>

#include "base/check.h"
#include "base/secret_bytes.h"

namespace ctfs::fs {
namespace {

// What a chunk of `len` bytes at `lead` counts against the capacity: its bytes, plus the
// granule its lead may add to its buffer.
size_t ChargeOf(size_t len, size_t lead) { return len + ChunkBufferPool::LeadCost(len, lead); }

// ThrownError turns what a loader threw into an error: every load must end in a result, or
// the readers waiting for it would wait forever.
Status ThrownError() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return UnavailableError("out of memory while loading a chunk");
  } catch (const std::exception& e) {
    return InternalError(std::string("loading a chunk failed: ") + e.what());
  } catch (...) {
    return InternalError("loading a chunk failed: unknown exception");
  }
}

}  // namespace

Result<ChunkCache::Chunk> ChunkCache::GetOrLoad(const Key& key, size_t len, const Loader& load,
                                                size_t lead) {
  auto run_loader = [&]() -> Result<Chunk> {
    std::shared_ptr<ChunkBuffer> chunk;
    Status st;
    try {
      CTFS_ASSIGN_OR_RETURN(chunk, pool_.Acquire(len, lead));
      st = load(chunk->span());
    } catch (...) {
      st = ThrownError();
    }
    if (!st.ok()) {
      // The loader may have left partial plaintext.
      if (chunk != nullptr) WipeMemory(chunk->span().data(), len);
      return st;
    }
    return Chunk(std::move(chunk));
  };
  if (capacity_ == 0) return run_loader();

  std::promise<Result<Chunk>> promise;
  std::shared_future<Result<Chunk>> pending;
  uint64_t load_id = 0;
  {
    MutexLock lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
      pending = it->second.future;
    } else {
      // A chunk served whole is read again: the kernel dropped its pages, and likely the
      // others' it was served with. Let decrypt-ahead have them all again.
      if (consumed_.count(key) != 0) {
        consumed_.clear();
        consumed_fifo_.clear();
      }
      load_id = ReserveLocked(key, promise.get_future().share());
    }
  }
  // A hit may still be loading on another thread: wait for it outside the lock.
  if (pending.valid()) {
    if (pending.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      const auto t0 = std::chrono::steady_clock::now();
      pending.wait();
      const auto waited = std::chrono::steady_clock::now() - t0;
      waits_.fetch_add(1, std::memory_order_relaxed);
      wait_ns_.fetch_add(static_cast<uint64_t>(
                             std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count()),
                         std::memory_order_relaxed);
    }
    try {
      return pending.get();
    } catch (const std::future_error& e) {  // a broken promise: a bug, but never a hang
      return InternalError(std::string("chunk load abandoned: ") + e.what());
    }
  }
  Result<Chunk> r = run_loader();
  Finish(key, load_id, len, ChargeOf(len, lead), r);
  promise.set_value(r);
  return r;
}

uint64_t ChunkCache::ReserveLocked(const Key& key, std::shared_future<Result<Chunk>> future) {
  // Either both insertions happen or neither (an allocation may throw).
  auto [it, inserted] = entries_.try_emplace(key);
  CTFS_CHECK(inserted);
  try {
    lru_.push_front(key);
  } catch (...) {
    entries_.erase(it);
    throw;
  }
  ++misses_;
  Entry& e = it->second;
  e.future = std::move(future);
  e.lru_pos = lru_.begin();
  e.load_id = ++next_load_id_;
  return e.load_id;
}

void ChunkCache::Finish(const Key& key, uint64_t load_id, size_t len, size_t charge,
                        const Result<Chunk>& r) {
  // Account for the chunk before waiters wake, so that their NoteServed() counts.
  MutexLock lock(mu_);
  auto it = entries_.find(key);
  // Clear() may have dropped our entry meanwhile, and a newer load may have replaced it.
  if (it == entries_.end() || it->second.load_id != load_id) return;
  if (!r.ok()) {
    EraseLocked(it);
    return;
  }
  it->second.bytes = len;
  it->second.charge = charge;
  bytes_ += charge;
  EvictLocked();
  peak_bytes_ = std::max(peak_bytes_, bytes_);
}

void ChunkCache::PrefetchRun(std::span<const Key> keys, std::span<const size_t> lens,
                             const RunLoader& load, std::span<const size_t> leads) {
  CTFS_CHECK(keys.size() == lens.size() && (leads.empty() || leads.size() == keys.size()));
  if (capacity_ == 0) return;
  struct Reserved {
    size_t index;
    uint64_t load_id;
    std::promise<Result<Chunk>> promise;
    std::shared_ptr<ChunkBuffer> buffer;
    Result<Chunk> result = InternalError("not loaded");
    bool published = false;
  };
  // Allocated before anything is reserved: once a key is reserved, its outcome must be
  // published on every path, exceptions included, or its readers would wait forever.
  std::vector<Reserved> reserved;
  reserved.reserve(keys.size());
  std::vector<RunSlot> slots;
  slots.reserve(keys.size());
  std::vector<size_t> slot_owner;  // slots[k] belongs to reserved[slot_owner[k]]
  slot_owner.reserve(keys.size());
  {
    // Decide and reserve under one lock: checking first and inserting later could load a
    // chunk a reader has meanwhile loaded and consumed, and park the copy.
    MutexLock lock(mu_);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (entries_.count(keys[i]) != 0 || consumed_.count(keys[i]) != 0) continue;
      bool added = false;
      try {
        Reserved& r = reserved.emplace_back();
        added = true;
        r.index = i;
        r.load_id = ReserveLocked(keys[i], r.promise.get_future().share());
      } catch (...) {
        if (added) reserved.pop_back();  // nothing was reserved for it
        break;                           // a prefetch is a hint: load what is reserved
      }
    }
  }
  // Publish hands a reserved chunk's outcome to the cache and its waiters, once.
  auto publish = [&](size_t j) {
    Reserved& r = reserved[j];
    if (r.published) return;
    r.published = true;
    const size_t i = r.index;
    Finish(keys[i], r.load_id, lens[i], ChargeOf(lens[i], leads.empty() ? 0 : leads[i]), r.result);
    r.promise.set_value(std::move(r.result));
  };
  auto ready = [&](size_t k) {
    CTFS_CHECK(k < slots.size());
    const size_t j = slot_owner[k];
    if (reserved[j].published) return;
    if (slots[k].status.ok()) {
      reserved[j].result = Chunk(std::move(reserved[j].buffer));
    } else {
      WipeMemory(slots[k].buf.data(), slots[k].buf.size());  // may hold partial plaintext
      reserved[j].result = slots[k].status;
    }
    publish(j);
  };
  try {
    for (size_t j = 0; j < reserved.size(); ++j) {
      const size_t i = reserved[j].index;
      Result<std::shared_ptr<ChunkBuffer>> buf =
          pool_.Acquire(lens[i], leads.empty() ? 0 : leads[i]);
      if (!buf.ok()) {
        reserved[j].result = buf.status();
        continue;
      }
      reserved[j].buffer = std::move(*buf);
      // A slot counts as failed until the loader says otherwise: never publish unfilled bytes.
      slots.push_back(RunSlot{reserved[j].index, reserved[j].buffer->span(),
                              InternalError("chunk not filled by the run loader")});
      slot_owner.push_back(j);
    }
    if (!slots.empty()) load(slots, ready);
  } catch (...) {
    // A slot the loader did not hand over may be unfilled: fail every such slot.
    const Status thrown = ThrownError();
    for (size_t k = 0; k < slots.size(); ++k) {
      if (!reserved[slot_owner[k]].published) slots[k].status = thrown;
    }
    for (Reserved& r : reserved) {
      if (!r.published && r.buffer == nullptr) r.result = thrown;
    }
  }
  for (size_t k = 0; k < slots.size(); ++k) ready(k);
  for (size_t j = 0; j < reserved.size(); ++j) publish(j);  // buffers that could not be had
}

void ChunkCache::EvictLocked() {
  auto pos = lru_.end();
  while (bytes_ > capacity_ && pos != lru_.begin()) {
    --pos;
    auto it = entries_.find(*pos);
    if (it == entries_.end() || it->second.bytes == 0) continue;  // still loading
    bytes_ -= it->second.charge;
    entries_.erase(it);
    pos = lru_.erase(pos);
  }
}

void ChunkCache::EraseLocked(std::map<Key, Entry>::iterator it) {
  bytes_ -= it->second.charge;
  lru_.erase(it->second.lru_pos);
  entries_.erase(it);
}

bool ChunkCache::WantsPrefetch(const Key& key) const {
  MutexLock lock(mu_);
  return capacity_ > 0 && entries_.count(key) == 0 && consumed_.count(key) == 0;
}

void ChunkCache::Prefetch(const Key& key, size_t len, const Loader& load) {
  PrefetchRun(std::span<const Key>(&key, 1), std::span<const size_t>(&len, 1),
              [&](std::span<RunSlot> slots, const auto&) { slots[0].status = load(slots[0].buf); });
}

void ChunkCache::NoteServed(const Key& key, size_t len) {
  MutexLock lock(mu_);
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
    MutexLock lock(mu_);
    entries_.clear();
    lru_.clear();
    bytes_ = 0;
    consumed_.clear();
    consumed_fifo_.clear();
  }
  pool_.Drain();
}

size_t ChunkCache::cached_bytes() const {
  MutexLock lock(mu_);
  return bytes_;
}

size_t ChunkCache::peak_cached_bytes() const {
  MutexLock lock(mu_);
  return peak_bytes_;
}

uint64_t ChunkCache::hits() const {
  MutexLock lock(mu_);
  return hits_;
}

uint64_t ChunkCache::misses() const {
  MutexLock lock(mu_);
  return misses_;
}

}  // namespace ctfs::fs
