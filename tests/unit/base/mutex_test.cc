// SPDX-License-Identifier: Apache-2.0
#include "base/mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace ctfs {
namespace {

using std::chrono::milliseconds;

// Polls `pred` for up to 10 s.
template <typename Pred>
bool Eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

// TryLock from another thread: whether `mu` is free right now.
bool FreeFromOtherThread(Mutex& mu) {
  bool got = false;
  std::thread t([&] {
    if (mu.TryLock()) {
      got = true;
      mu.Unlock();
    }
  });
  t.join();
  return got;
}

struct Counter {
  Mutex mu;
  CondVar cv;
  int n CTFS_GUARDED_BY(mu) = 0;
};

TEST(MutexTest, MutexLockExcludesOtherThreads) {
  Counter c;
  constexpr int kThreads = 8, kAdds = 20000;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < kAdds; ++k) {
        MutexLock lock(c.mu);
        c.n = c.n + 1;  // not atomic: lost updates if the lock did not exclude
      }
    });
  }
  for (std::thread& t : threads) t.join();
  MutexLock lock(c.mu);
  EXPECT_EQ(c.n, kThreads * kAdds);
}

TEST(MutexTest, MutexLockUnlockAndRelock) {
  Mutex mu;
  {
    MutexLock lock(mu);
    EXPECT_FALSE(FreeFromOtherThread(mu));
    lock.Unlock();
    EXPECT_TRUE(FreeFromOtherThread(mu));
    lock.Lock();
    EXPECT_FALSE(FreeFromOtherThread(mu));
  }
  EXPECT_TRUE(FreeFromOtherThread(mu));
  {
    MutexLock lock(mu);
    lock.Unlock();  // the destructor must not unlock again
  }
  EXPECT_TRUE(FreeFromOtherThread(mu));
}

TEST(MutexTest, TryLockFailsWhileHeldElsewhere) {
  Mutex mu;
  if (mu.TryLock()) {
    EXPECT_FALSE(FreeFromOtherThread(mu));
    mu.Unlock();
  } else {
    ADD_FAILURE() << "TryLock of a free mutex failed";
  }
  EXPECT_TRUE(FreeFromOtherThread(mu));
}

TEST(MutexTest, ReaderLocksShareAndWriterLockExcludes) {
  SharedMutex mu;
  std::atomic<bool> second_reader_in{false};
  {
    ReaderLock first(mu);
    std::thread t([&] {
      ReaderLock second(mu);
      second_reader_in = true;
    });
    // The second reader gets in while the first still holds the lock.
    EXPECT_TRUE(Eventually([&] { return second_reader_in.load(); }));
    t.join();
  }
  std::atomic<bool> reader_in{false};
  std::thread reader;
  {
    WriterLock writer(mu);
    reader = std::thread([&] {
      ReaderLock r(mu);
      reader_in = true;
    });
    std::this_thread::sleep_for(milliseconds(50));
    EXPECT_FALSE(reader_in.load()) << "a reader got in while the writer held the lock";
  }
  reader.join();
  EXPECT_TRUE(reader_in.load());
}

TEST(MutexTest, CondVarWaitWakesOnSignalWithTheMutexHeld) {
  Counter c;
  std::thread t([&] {
    MutexLock lock(c.mu);
    c.n = 1;
    c.cv.SignalAll();
  });
  {
    MutexLock lock(c.mu);
    while (c.n == 0) c.cv.Wait(c.mu);
    EXPECT_EQ(c.n, 1);
    EXPECT_FALSE(FreeFromOtherThread(c.mu));  // held again after the wait
  }
  t.join();
}

TEST(MutexTest, CondVarWaitForTimesOutWithTheMutexHeld) {
  Counter c;
  MutexLock lock(c.mu);
  const auto t0 = std::chrono::steady_clock::now();
  bool woken = true;
  // Spurious wake-ups return true early; a timeout must come eventually.
  for (int i = 0; i < 100 && woken; ++i) woken = c.cv.WaitFor(c.mu, milliseconds(20));
  EXPECT_FALSE(woken);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(20));
  EXPECT_FALSE(FreeFromOtherThread(c.mu));
}

}  // namespace
}  // namespace ctfs
