// SPDX-License-Identifier: Apache-2.0
#include "fs/chunk_buffer_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "base/check.h"
#include "base/secret_bytes.h"

namespace ctfs::fs {

Result<ChunkBuffer> ChunkBuffer::Map(size_t capacity) {
  CTFS_CHECK(capacity > 0);
  void* p = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return ErrnoError(errno, "mmap of a " + std::to_string(capacity) + "-byte chunk buffer");
  }
  (void)::madvise(p, capacity, MADV_DONTDUMP);  // best effort: plaintext stays out of cores
  return ChunkBuffer(static_cast<uint8_t*>(p), capacity);
}

ChunkBuffer::ChunkBuffer(ChunkBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      capacity_(std::exchange(other.capacity_, 0)),
      size_(std::exchange(other.size_, 0)),
      touched_len_(std::exchange(other.touched_len_, 0)) {}

ChunkBuffer& ChunkBuffer::operator=(ChunkBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
    size_ = std::exchange(other.size_, 0);
    touched_len_ = std::exchange(other.touched_len_, 0);
  }
  return *this;
}

ChunkBuffer::~ChunkBuffer() { Release(); }

void ChunkBuffer::set_size(size_t len) {
  CTFS_CHECK(len <= capacity_);
  size_ = len;
  touched_len_ = std::max(touched_len_, len);
}

void ChunkBuffer::Release() {
  if (data_ == nullptr) return;
  WipeMemory(data_, touched_len_);  // pages never handed out are still zero
  ::munmap(data_, capacity_);
  data_ = nullptr;
  capacity_ = size_ = touched_len_ = 0;
}

struct ChunkBufferPool::State {
  explicit State(size_t cap) : idle_cap_bytes(cap) {}

  // Takes back ownership of `b` (from a shared_ptr deleter).
  void Return(ChunkBuffer* b) {
    std::unique_ptr<ChunkBuffer> owned(b);
    std::lock_guard<std::mutex> lock(mu);
    if (drained || idle_bytes + b->capacity() > idle_cap_bytes) return;  // wiped by ~ChunkBuffer
    idle_bytes += b->capacity();
    idle.emplace(b->capacity(), std::move(owned));
  }

  const size_t idle_cap_bytes;
  std::mutex mu;
  std::multimap<size_t, std::unique_ptr<ChunkBuffer>> idle;  // GUARDED_BY(mu), by capacity
  size_t idle_bytes = 0;                                     // GUARDED_BY(mu)
  bool drained = false;                                      // GUARDED_BY(mu)
  uint64_t mapped = 0;                                       // GUARDED_BY(mu)
};

ChunkBufferPool::ChunkBufferPool(size_t idle_cap_bytes)
    : state_(std::make_shared<State>(idle_cap_bytes)) {}

ChunkBufferPool::~ChunkBufferPool() { Drain(); }

Result<std::shared_ptr<ChunkBuffer>> ChunkBufferPool::Acquire(size_t len) {
  if (len > SIZE_MAX - kGranule) {
    return InvalidArgumentError("a chunk buffer of " + std::to_string(len) + " bytes is too large");
  }
  const size_t want = std::max<size_t>(kGranule, (len + kGranule - 1) / kGranule * kGranule);
  std::unique_ptr<ChunkBuffer> b;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    // Reuse the smallest idle buffer that fits, unless it would waste more than half of it.
    auto it = state_->idle.lower_bound(want);
    if (it != state_->idle.end() && it->first / 2 <= want) {
      b = std::move(it->second);
      state_->idle_bytes -= it->first;
      state_->idle.erase(it);
    }
  }
  if (b == nullptr) {
    CTFS_ASSIGN_OR_RETURN(ChunkBuffer fresh, ChunkBuffer::Map(want));
    b = std::make_unique<ChunkBuffer>(std::move(fresh));
    std::lock_guard<std::mutex> lock(state_->mu);
    ++state_->mapped;
  }
  b->set_size(len);
  std::shared_ptr<State> state = state_;
  return std::shared_ptr<ChunkBuffer>(b.release(), [state](ChunkBuffer* p) { state->Return(p); });
}

void ChunkBufferPool::Drain() {
  std::multimap<size_t, std::unique_ptr<ChunkBuffer>> idle;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->drained = true;
    idle.swap(state_->idle);
    state_->idle_bytes = 0;
  }
  // Wiped and unmapped here, outside the lock.
}

size_t ChunkBufferPool::idle_bytes() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->idle_bytes;
}

uint64_t ChunkBufferPool::mapped_count() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->mapped;
}

}  // namespace ctfs::fs
