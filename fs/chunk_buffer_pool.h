// SPDX-License-Identifier: Apache-2.0
// ChunkBufferPool: reusable buffers for decrypted chunks. A fresh heap buffer per chunk
// costs a zero fill, page faults and a wipe on free (about 15 % of the daemon's CPU on a cold
// scan); a pooled buffer costs none of that, because whatever it held is overwritten whole by
// the next chunk.
//
// Buffers are mmap()ed (MADV_DONTDUMP), rounded up to kGranule, and are NOT zeroed when
// handed out: they may hold plaintext of an earlier chunk of this mount, so a loader must
// overwrite all of a buffer's span() and the span must never be shown before that. Idle
// buffers are kept up to `idle_cap_bytes`; beyond that a returned buffer is wiped and
// unmapped. Drain() (part of revocation) wipes and unmaps every idle buffer and makes the pool
// wipe every buffer returned later instead of keeping it.
// Thread safety: thread-safe. Buffers may outlive the pool object.
#ifndef CTFS_FS_CHUNK_BUFFER_POOL_H_
#define CTFS_FS_CHUNK_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/bytes.h"
#include "base/result.h"

namespace ctfs::fs {

// ChunkBuffer: `size()` usable bytes in an anonymous mapping of `capacity()` bytes; wiped and
// unmapped on destruction. Move-only.
class ChunkBuffer {
 public:
  static Result<ChunkBuffer> Map(size_t capacity);
  ChunkBuffer(ChunkBuffer&& other) noexcept;
  ChunkBuffer& operator=(ChunkBuffer&& other) noexcept;
  ChunkBuffer(const ChunkBuffer&) = delete;
  ChunkBuffer& operator=(const ChunkBuffer&) = delete;
  ~ChunkBuffer();

  size_t capacity() const { return capacity_; }
  size_t size() const { return size_; }
  void set_size(size_t len);  // REQUIRES len <= capacity()
  MutableByteSpan span() { return {data_, size_}; }
  ByteSpan span() const { return {data_, size_}; }

 private:
  ChunkBuffer(uint8_t* data, size_t capacity) : data_(data), capacity_(capacity) {}
  void Release();

  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
  size_t size_ = 0;
  size_t touched_len_ = 0;  // bytes that may hold data: what the destructor wipes
};

class ChunkBufferPool {
 public:
  static constexpr size_t kGranule = 256 * 1024;

  explicit ChunkBufferPool(size_t idle_cap_bytes);
  ~ChunkBufferPool();
  ChunkBufferPool(const ChunkBufferPool&) = delete;
  ChunkBufferPool& operator=(const ChunkBufferPool&) = delete;

  // Acquire returns a buffer of exactly `len` bytes (contents unspecified, see above) that
  // goes back to the pool when the last reference is dropped.
  Result<std::shared_ptr<ChunkBuffer>> Acquire(size_t len);

  // Drain wipes and unmaps all idle buffers; buffers returned afterwards are wiped too.
  void Drain();

  size_t idle_bytes() const;
  uint64_t mapped_count() const;  // buffers mapped so far (reuse keeps this flat)

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_CHUNK_BUFFER_POOL_H_
