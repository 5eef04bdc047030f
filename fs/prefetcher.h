// SPDX-License-Identifier: Apache-2.0
// Prefetcher: a few background threads that run keyed jobs, used to decrypt chunks ahead of a
// sequential reader so that reading the next chunk from disk and decrypting it overlap with
// serving the current one (a cold scan is otherwise latency-bound: pread, then decrypt, then
// reply, one chunk at a time).
//
// Prefetching is a hint: a key that is already waiting is not queued again, and when
// `max_queued` jobs wait, new ones are dropped. Cancel() drops every waiting job (running
// ones finish). A job that throws is dropped like a failed one.
// Thread safety: thread-safe.
#ifndef CTFS_FS_PREFETCHER_H_
#define CTFS_FS_PREFETCHER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "fs/chunk_cache.h"

namespace ctfs::fs {

class Prefetcher {
 public:
  Prefetcher(size_t threads, size_t max_queued);
  // Drops waiting jobs and waits for running ones.
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Submit queues `job` under `key`; false if the key is already waiting or the queue is full.
  bool Submit(const ChunkCache::Key& key, std::function<void()> job);

  // Cancel drops every waiting job.
  void Cancel();

  uint64_t completed() const;  // jobs run to the end so far

 private:
  void Run();

  const size_t max_queued_;
  mutable Mutex mu_;
  CondVar cv_;
  std::deque<std::pair<ChunkCache::Key, std::function<void()>>> queue_ CTFS_GUARDED_BY(mu_);
  std::set<ChunkCache::Key> queued_keys_ CTFS_GUARDED_BY(mu_);
  bool stop_ CTFS_GUARDED_BY(mu_) = false;
  uint64_t completed_ CTFS_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_PREFETCHER_H_
