// SPDX-License-Identifier: Apache-2.0
// WorkerPool: a fixed set of threads for decrypting several chunks of one read in parallel.
// Thread safety: thread-safe; ParallelFor may be called from many threads at once.
#ifndef CTFS_FS_WORKER_POOL_H_
#define CTFS_FS_WORKER_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "base/mutex.h"

namespace ctfs::fs {

class WorkerPool {
 public:
  // threads == 0 runs everything on the calling thread.
  explicit WorkerPool(size_t threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // ParallelFor calls fn(i) for every i in [0, n), on the caller and the pool's threads, and
  // returns when all calls have returned; then, if any call threw, it rethrows the first
  // exception (fn is never in use by a helper once ParallelFor returns or throws).
  void ParallelFor(size_t n, const std::function<void(size_t)>& fn);

 private:
  void Run();
  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> queue_ CTFS_GUARDED_BY(mu_);
  bool stop_ CTFS_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_WORKER_POOL_H_
