// SPDX-License-Identifier: Apache-2.0
// Mutex, SharedMutex and CondVar: std::mutex, std::shared_mutex and std::condition_variable
// with clang thread-safety annotations (base/thread_annotations.h), which libstdc++'s types
// lack. Lock through the scoped MutexLock / WriterLock / ReaderLock. Same cost as the std
// types (everything is inline).
//
// Waiting: hold the mutex and loop, so the analysis sees every guarded read under the lock:
//
//   MutexLock lock(mu_);
//   while (!stop_ && queue_.empty()) cv_.Wait(mu_);
//
// Thread safety: these are the synchronisation primitives.
#ifndef CTFS_BASE_MUTEX_H_
#define CTFS_BASE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "base/thread_annotations.h"

namespace ctfs {

class CTFS_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() CTFS_ACQUIRE() { mu_.lock(); }
  void Unlock() CTFS_RELEASE() { mu_.unlock(); }
  bool TryLock() CTFS_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Readers share it (LockShared); a writer (Lock) excludes everyone.
class CTFS_CAPABILITY("shared mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() CTFS_ACQUIRE() { mu_.lock(); }
  void Unlock() CTFS_RELEASE() { mu_.unlock(); }
  void LockShared() CTFS_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() CTFS_RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

// MutexLock holds `mu` for its scope. Unlock() and Lock() let a scope drop the mutex for a
// while (e.g. to run a job outside it); the destructor unlocks only if held.
class CTFS_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) CTFS_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() CTFS_RELEASE() {
    if (held_) mu_.Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() CTFS_RELEASE() {
    mu_.Unlock();
    held_ = false;
  }
  void Lock() CTFS_ACQUIRE() {
    mu_.Lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// WriterLock holds a SharedMutex exclusively for its scope.
class CTFS_SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) CTFS_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~WriterLock() CTFS_RELEASE() { mu_.Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& mu_;
};

// ReaderLock holds a SharedMutex shared for its scope.
class CTFS_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) CTFS_ACQUIRE_SHARED(mu) : mu_(mu) { mu_.LockShared(); }
  ~ReaderLock() CTFS_RELEASE() { mu_.UnlockShared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex& mu_;
};

// CondVar: a condition variable for Mutex. Wait* release `mu` while blocked and hold it again
// when they return; wake-ups may be spurious, so wait in a loop on the condition.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait(Mutex& mu) CTFS_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // the caller still owns the (re-locked) mutex
  }
  // WaitFor: false if `timeout` passed (the mutex is held again either way).
  template <typename Rep, typename Period>
  bool WaitFor(Mutex& mu, std::chrono::duration<Rep, Period> timeout) CTFS_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const std::cv_status st = cv_.wait_for(lock, timeout);
    lock.release();
    return st == std::cv_status::no_timeout;
  }

  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace ctfs

#endif  // CTFS_BASE_MUTEX_H_
