// SPDX-License-Identifier: Apache-2.0
// WriteBehind: overlaps producing output blocks (read + encrypt) with writing them. The caller
// fills staging buffers from a small fixed pool (Acquire, fill, Submit); one writer thread
// hands each submitted block to a write function, in submission order. At most `num_buffers`
// blocks are in flight, so memory stays bounded and a slow disk throttles the producer.
//
// Buffers are mapped on first use (page-aligned, with a page to spare: Acquire places a block
// past a page boundary where the caller's copies in and out want it, fs/copy_alignment.h) and
// wiped when the WriteBehind is destroyed: they may hold plaintext.
//
// Errors: the first failed write is returned by every later Acquire/Submit and by Finish, and
// no further block is written. Destroying a WriteBehind without Finish() (the producer failed)
// drops the blocks not yet written and joins the writer thread; it never waits for a free
// buffer, so an early return cannot deadlock.
//
// Thread safety: Acquire, Submit and Finish are called from one producer thread.
#ifndef CTFS_FS_WRITE_BEHIND_H_
#define CTFS_FS_WRITE_BEHIND_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "fs/chunk_buffer_pool.h"

namespace ctfs::fs {

class WriteBehind {
 public:
  // WriteFn writes all of `data` at `out_off` (called on the writer thread, one call at a time).
  using WriteFn = std::function<Status(ByteSpan data, uint64_t out_off)>;

  // A staging buffer owned by the producer between Acquire and Submit.
  struct Buffer {
    size_t index = 0;
    MutableByteSpan bytes;  // buffer_len bytes
  };

  // num_buffers >= 1 buffers of buffer_len >= 1 bytes each.
  WriteBehind(size_t num_buffers, size_t buffer_len, WriteFn write);
  ~WriteBehind();
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  // Acquire waits for a free buffer, whose bytes start `lead` bytes past a page boundary
  // (REQUIRES lead < kCopyPageLen). Fails once a write failed or after Finish().
  Result<Buffer> Acquire(size_t lead = 0);
  // Submit queues the first `len` bytes of `buf` (from Acquire) to be written at `out_off`.
  Status Submit(const Buffer& buf, size_t len, uint64_t out_off);
  // Finish waits until every submitted block is written and stops the writer thread. Returns
  // the first write error. Call at most once.
  Status Finish();

 private:
  struct Block {
    size_t index;
    const uint8_t* data;
    size_t len;
    uint64_t out_off;
  };
  void Run();
  void Stop(bool drop_queued);

  const size_t buffer_len_;
  const WriteFn write_;
  // Slots are created by the producer (Acquire) before the index is first handed to the writer.
  std::vector<std::unique_ptr<ChunkBuffer>> buffers_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // writer waits: queued block or stop
  std::condition_variable free_cv_;  // producer waits: free buffer or error
  std::vector<size_t> free_;         // GUARDED_BY(mu_), LIFO: reuse the cache-warm buffer
  size_t created_ = 0;               // GUARDED_BY(mu_)
  size_t with_writer_ = 0;           // GUARDED_BY(mu_): queued or being written
  std::deque<Block> queue_;          // GUARDED_BY(mu_)
  Status error_;                     // GUARDED_BY(mu_): first write error
  bool stop_ = false;                // GUARDED_BY(mu_)
  bool drop_queued_ = false;         // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_WRITE_BEHIND_H_
