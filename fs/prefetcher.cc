// SPDX-License-Identifier: Apache-2.0
#include "fs/prefetcher.h"

namespace ctfs::fs {

Prefetcher::Prefetcher(size_t threads, size_t max_queued) : max_queued_(max_queued) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

Prefetcher::~Prefetcher() {
  {
    MutexLock lock(mu_);
    stop_ = true;
    queue_.clear();
    queued_keys_.clear();
  }
  cv_.SignalAll();
  for (std::thread& t : threads_) t.join();
}

bool Prefetcher::Submit(const ChunkCache::Key& key, std::function<void()> job) {
  {
    MutexLock lock(mu_);
    if (stop_ || threads_.empty() || queue_.size() >= max_queued_) return false;
    if (!queued_keys_.insert(key).second) return false;
    queue_.emplace_back(key, std::move(job));
  }
  cv_.Signal();
  return true;
}

void Prefetcher::Cancel() {
  std::deque<std::pair<ChunkCache::Key, std::function<void()>>> dropped;
  MutexLock lock(mu_);
  dropped.swap(queue_);
  queued_keys_.clear();
}

uint64_t Prefetcher::completed() const {
  MutexLock lock(mu_);
  return completed_;
}

void Prefetcher::Run() {
  for (;;) {
    std::function<void()> job;
    {
      MutexLock lock(mu_);
      while (!stop_ && queue_.empty()) cv_.Wait(mu_);
      if (stop_) return;
      job = std::move(queue_.front().second);
      queued_keys_.erase(queue_.front().first);
      queue_.pop_front();
    }
    try {
      job();
    } catch (...) {
      // A prefetch is a hint: a reader that needs the chunk loads it and reports the error.
      // A thread of the pool must not die (and take the process with it).
    }
    MutexLock lock(mu_);
    ++completed_;
  }
}

}  // namespace ctfs::fs
