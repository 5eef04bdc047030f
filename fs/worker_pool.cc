// SPDX-License-Identifier: Apache-2.0
#include "fs/worker_pool.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <new>
#include <memory>

namespace ctfs::fs {

WorkerPool::WorkerPool(size_t threads) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

WorkerPool::~WorkerPool() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  for (std::thread& t : threads_) t.join();
}

void WorkerPool::Run() {
  for (;;) {
    std::function<void()> job;
    {
      MutexLock lock(mu_);
      while (!stop_ && queue_.empty()) cv_.Wait(mu_);
      if (queue_.empty()) return;  // stop_ and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

void WorkerPool::ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (n == 1 || threads_.empty()) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  struct State {
    std::atomic<size_t> next{0};
    size_t done = 0;
    std::exception_ptr error;  // the first call that threw
    std::mutex mu;
    std::condition_variable cv;
  };
  auto state = std::make_shared<State>();
  const std::function<void(size_t)>* f = &fn;
  // Each participant claims indices until none are left. A helper that starts after the work
  // is done claims nothing and never touches fn (which may be gone by then). A call that
  // throws still counts as done: the caller must not return (and free fn) while a helper is
  // inside it.
  auto work = [state, f, n] {
    size_t mine = 0;
    std::exception_ptr error;
    for (size_t i; (i = state->next.fetch_add(1)) < n;) {
      try {
        (*f)(i);
      } catch (...) {
        if (!error) error = std::current_exception();
      }
      ++mine;
    }
    if (mine > 0) {
      std::lock_guard<std::mutex> lock(state->mu);
      // Moved, not copied, under the lock: the exception's reference count changes on this
      // thread only before the caller can see `done == n`.
      if (error && !state->error) state->error = std::move(error);
      error = nullptr;
      state->done += mine;
      if (state->done == n) state->cv.notify_all();
    }
  };
  const size_t helpers = std::min(threads_.size(), n - 1);
  {
    MutexLock lock(mu_);
    try {
      for (size_t i = 0; i < helpers; ++i) queue_.push_back(work);
    } catch (const std::bad_alloc&) {
      // Fewer helpers: the caller does the rest.
    }
  }
  cv_.SignalAll();
  work();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(state->mu);
    state->cv.wait(lock, [&] { return state->done == n; });
    error = std::move(state->error);  // a helper may destroy `state` any time now
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace ctfs::fs
