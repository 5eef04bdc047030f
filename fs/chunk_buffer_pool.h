// SPDX-License-Identifier: Apache-2.0
// ChunkBufferPool: reusable buffers for decrypted chunks. A fresh heap buffer per chunk
// costs a zero fill, page faults and a wipe on free (about 15 % of the daemon's CPU on a cold
// scan); a pooled buffer costs none of that, because whatever it held is overwritten whole by
// the next chunk.
//
// Buffers are mmap()ed (MADV_DONTDUMP), rounded up to kGranule, and are NOT zeroed when
// handed out. Buffers whose size divides kSlabBytes (a 256 KiB chunk's, the default) are cut
// from 2 MiB-aligned slabs marked MADV_HUGEPAGE: where the kernel gives the daemon transparent
// huge pages, pinning a chunk for the reply to the kernel and copying it into the page cache
// walk one page instead of 64 (about 8 % less daemon CPU for a cold 2 GiB scan on the VM,
// bench/RESULTS.md). A slab is unmapped when the last buffer cut from it is gone. A buffer
// handed out may hold plaintext of an earlier chunk of this mount, so a loader must overwrite
// all of its span() and the span must never be shown before that. Idle buffers are kept up
// to `idle_cap_bytes`; beyond that a returned buffer is wiped and unmapped (or its slot wiped
// and given back to its slab). Drain() (part of revocation) wipes and unmaps every idle
// buffer and makes the pool wipe every buffer returned later instead of keeping it.
//
// Thread safety: thread-safe. Buffers may outlive the pool object.
#ifndef CTFS_FS_CHUNK_BUFFER_POOL_H_
#define CTFS_FS_CHUNK_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "base/bytes.h"
#include "base/huge_mapping.h"
#include "base/result.h"

namespace ctfs::fs {

class ChunkSlab;  // see chunk_buffer_pool.cc

// ChunkBuffer: `size()` usable bytes starting `lead()` bytes into an anonymous mapping of
// `capacity()` bytes (its own, or a slot of a slab); wiped and unmapped (or given back to its
// slab) on destruction. Move-only.
class ChunkBuffer {
 public:
  static Result<ChunkBuffer> Map(size_t capacity);
  ChunkBuffer(ChunkBuffer&& other) noexcept;
  ChunkBuffer& operator=(ChunkBuffer&& other) noexcept;
  ChunkBuffer(const ChunkBuffer&) = delete;
  ChunkBuffer& operator=(const ChunkBuffer&) = delete;
  ~ChunkBuffer();

  size_t capacity() const { return capacity_; }
  size_t lead() const { return lead_; }
  size_t size() const { return size_; }
  void set_span(size_t lead, size_t len);  // REQUIRES lead + len <= capacity()
  MutableByteSpan span() { return {data_ + lead_, size_}; }
  ByteSpan span() const { return {data_ + lead_, size_}; }

 private:
  friend class ChunkBufferPool;
  ChunkBuffer(uint8_t* data, size_t capacity) : data_(data), capacity_(capacity) {}
  ChunkBuffer(uint8_t* data, size_t capacity, std::shared_ptr<ChunkSlab> slab);
  void Release();

  std::shared_ptr<ChunkSlab> slab_;  // null: data_ is a mapping of its own
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
  size_t lead_ = 0;
  size_t size_ = 0;
  size_t touched_len_ = 0;  // bytes from data_ that may hold data: what the destructor wipes
};

// ReusedBuffer: one ChunkBuffer for a sequence of spans, one at a time (a span is valid until
// the next call), mapped again (the old mapping wiped first) only when a span does not fit.
// For copies through a buffer placed as fs/copy_alignment.h wants. Not thread-safe.
class ReusedBuffer {
 public:
  // Span returns `len` bytes starting `lead` bytes past a page boundary (REQUIRES lead <
  // kCopyPageLen). Contents unspecified (earlier spans' bytes).
  Result<MutableByteSpan> Span(size_t len, size_t lead = 0);

 private:
  std::optional<ChunkBuffer> buf_;
};

class ChunkBufferPool {
 public:
  static constexpr size_t kGranule = 256 * 1024;
  static constexpr size_t kSlabBytes = kHugePageLen;

  explicit ChunkBufferPool(size_t idle_cap_bytes);
  ~ChunkBufferPool();
  ChunkBufferPool(const ChunkBufferPool&) = delete;
  ChunkBufferPool& operator=(const ChunkBufferPool&) = delete;

  // Acquire returns a buffer of exactly `len` bytes (contents unspecified, see above) that
  // starts `lead` bytes past a page boundary (REQUIRES lead < kCopyPageLen; fs/copy_alignment.h
  // says why) and goes back to the pool when the last reference is dropped.
  Result<std::shared_ptr<ChunkBuffer>> Acquire(size_t len, size_t lead = 0);
  // LeadCost: how many bytes more a fresh buffer for `len` bytes maps with `lead` than without
  // (0, or a granule when the lead pushes the span past a granule boundary).
  static size_t LeadCost(size_t len, size_t lead);

  // Drain wipes and unmaps all idle buffers; buffers returned afterwards are wiped too.
  void Drain();

  size_t idle_bytes() const;
  uint64_t mapped_count() const;  // buffers mapped so far (reuse keeps this flat)

 private:
  struct State;
  // MapBuffer maps a buffer of `capacity` bytes: a slot of a slab when it divides kSlabBytes.
  Result<ChunkBuffer> MapBuffer(size_t capacity);
  std::shared_ptr<State> state_;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_CHUNK_BUFFER_POOL_H_
