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
#include <vector>

#include "base/check.h"
#include "base/huge_mapping.h"
#include "base/secret_bytes.h"
#include "fs/copy_alignment.h"

namespace ctfs::fs {
namespace {

// The capacity of a fresh buffer for `span_end` bytes (lead + len): whole granules, at least
// one. REQUIRES span_end <= SIZE_MAX - kGranule.
size_t CapacityFor(size_t span_end) {
  constexpr size_t kG = ChunkBufferPool::kGranule;
  return std::max<size_t>(kG, (span_end + kG - 1) / kG * kG);
}

}  // namespace

// ChunkSlab: one mapping of ChunkBufferPool::kSlabBytes from MapHugeAligned (a transparent
// huge page where the kernel gives one), cut into equal slots. Buffers hold a reference to
// their slab; the last one gone unmaps it. Thread-safe.
class ChunkSlab {
 public:
  static constexpr size_t kBytes = ChunkBufferPool::kSlabBytes;

  static Result<std::shared_ptr<ChunkSlab>> Map(size_t slot_len) {
    CTFS_CHECK(slot_len > 0 && kBytes % slot_len == 0);
    CTFS_ASSIGN_OR_RETURN(uint8_t * data, MapHugeAligned(kBytes, "chunk buffer slab"));
    (void)::madvise(data, kBytes, MADV_DONTDUMP);  // best effort: plaintext stays out of cores
    return std::shared_ptr<ChunkSlab>(new ChunkSlab(data, slot_len));
  }

  ~ChunkSlab() { ::munmap(data_, kBytes); }
  ChunkSlab(const ChunkSlab&) = delete;
  ChunkSlab& operator=(const ChunkSlab&) = delete;

  // TakeSlot returns a free slot (zero, or wiped when it was given back), or null when full.
  uint8_t* TakeSlot() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return nullptr;
    uint8_t* p = free_.back();
    free_.pop_back();
    return p;
  }
  // GiveBack returns a slot that its buffer has wiped.
  void GiveBack(uint8_t* slot) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(slot);
  }

 private:
  ChunkSlab(uint8_t* data, size_t slot_len) : data_(data) {
    for (size_t off = kBytes; off >= slot_len; off -= slot_len) {
      free_.push_back(data_ + off - slot_len);  // handed out from the start of the slab
    }
  }

  uint8_t* const data_;
  std::mutex mu_;
  std::vector<uint8_t*> free_;  // GUARDED_BY(mu_)
};

ChunkBuffer::ChunkBuffer(uint8_t* data, size_t capacity, std::shared_ptr<ChunkSlab> slab)
    : slab_(std::move(slab)), data_(data), capacity_(capacity) {}

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
    : slab_(std::move(other.slab_)),
      data_(std::exchange(other.data_, nullptr)),
      capacity_(std::exchange(other.capacity_, 0)),
      lead_(std::exchange(other.lead_, 0)),
      size_(std::exchange(other.size_, 0)),
      touched_len_(std::exchange(other.touched_len_, 0)) {}

ChunkBuffer& ChunkBuffer::operator=(ChunkBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    slab_ = std::move(other.slab_);
    data_ = std::exchange(other.data_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
    lead_ = std::exchange(other.lead_, 0);
    size_ = std::exchange(other.size_, 0);
    touched_len_ = std::exchange(other.touched_len_, 0);
  }
  return *this;
}

ChunkBuffer::~ChunkBuffer() { Release(); }

void ChunkBuffer::set_span(size_t lead, size_t len) {
  CTFS_CHECK(lead <= capacity_ && len <= capacity_ - lead);
  lead_ = lead;
  size_ = len;
  touched_len_ = std::max(touched_len_, lead + len);
}

void ChunkBuffer::Release() {
  if (data_ == nullptr) return;
  WipeMemory(data_, touched_len_);  // pages never handed out are still zero
  if (slab_ != nullptr) {
    slab_->GiveBack(data_);
    slab_.reset();  // the last buffer of a slab unmaps it
  } else {
    ::munmap(data_, capacity_);
  }
  data_ = nullptr;
  capacity_ = lead_ = size_ = touched_len_ = 0;
}

Result<MutableByteSpan> ReusedBuffer::Span(size_t len, size_t lead) {
  CTFS_CHECK(lead < kCopyPageLen);
  constexpr size_t kG = ChunkBufferPool::kGranule;
  if (len > SIZE_MAX - 2 * kG) {
    return InvalidArgumentError("a buffer of " + std::to_string(len) + " bytes is too large");
  }
  if (!buf_ || buf_->capacity() < lead + len) {
    buf_.reset();  // wiped and unmapped before the larger one is mapped
    // Room for any lead: spans of one length map once, whatever their leads.
    CTFS_ASSIGN_OR_RETURN(ChunkBuffer b, ChunkBuffer::Map(CapacityFor(len + kCopyPageLen)));
    buf_ = std::move(b);
  }
  buf_->set_span(lead, len);
  return buf_->span();
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
  // Slabs that buffers were cut from, by slot size; a slab lives as long as its buffers do.
  std::map<size_t, std::vector<std::weak_ptr<ChunkSlab>>> slabs;  // GUARDED_BY(mu)
  size_t idle_bytes = 0;                                          // GUARDED_BY(mu)
  bool drained = false;                                           // GUARDED_BY(mu)
  uint64_t mapped = 0;                                            // GUARDED_BY(mu)
};

ChunkBufferPool::ChunkBufferPool(size_t idle_cap_bytes)
    : state_(std::make_shared<State>(idle_cap_bytes)) {}

ChunkBufferPool::~ChunkBufferPool() { Drain(); }

size_t ChunkBufferPool::LeadCost(size_t len, size_t lead) {
  CTFS_CHECK(lead < kCopyPageLen);
  if (len > SIZE_MAX - 2 * kGranule) return 0;  // Acquire refuses such a length anyway
  return CapacityFor(lead + len) - CapacityFor(len);
}

Result<std::shared_ptr<ChunkBuffer>> ChunkBufferPool::Acquire(size_t len, size_t lead) {
  CTFS_CHECK(lead < kCopyPageLen);
  if (len > SIZE_MAX - 2 * kGranule) {
    return InvalidArgumentError("a chunk buffer of " + std::to_string(len) + " bytes is too large");
  }
  const size_t want = CapacityFor(lead + len);
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
    CTFS_ASSIGN_OR_RETURN(ChunkBuffer fresh, MapBuffer(want));
    b = std::make_unique<ChunkBuffer>(std::move(fresh));
    std::lock_guard<std::mutex> lock(state_->mu);
    ++state_->mapped;
  }
  b->set_span(lead, len);
  std::shared_ptr<State> state = state_;
  return std::shared_ptr<ChunkBuffer>(b.release(), [state](ChunkBuffer* p) { state->Return(p); });
}

Result<ChunkBuffer> ChunkBufferPool::MapBuffer(size_t capacity) {
  if (kSlabBytes % capacity != 0) return ChunkBuffer::Map(capacity);
  std::shared_ptr<ChunkSlab> keep;  // a slab being looked at (may be its last reference)
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto& slabs = state_->slabs[capacity];
    for (auto it = slabs.begin(); it != slabs.end();) {
      keep = it->lock();
      if (keep == nullptr) {
        it = slabs.erase(it);  // unmapped: its buffers are all gone
        continue;
      }
      if (uint8_t* slot = keep->TakeSlot()) return ChunkBuffer(slot, capacity, keep);
      ++it;
    }
  }
  CTFS_ASSIGN_OR_RETURN(std::shared_ptr<ChunkSlab> slab, ChunkSlab::Map(capacity));
  uint8_t* slot = slab->TakeSlot();
  CTFS_CHECK(slot != nullptr);
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->slabs[capacity].push_back(slab);
  }
  return ChunkBuffer(slot, capacity, std::move(slab));
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
