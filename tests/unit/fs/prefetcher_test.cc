// SPDX-License-Identifier: Apache-2.0
// Prefetcher: jobs run, a waiting key is not queued twice, max_queued, Cancel, shutdown with
// waiting jobs, zero threads. Queue states are made deterministic by blocking the single
// worker in a job that waits to be released.
#include "fs/prefetcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/testing/wait_for.h"

namespace ctfs::fs {
namespace {

using ctfs::testing::WaitFor;
using Key = ChunkCache::Key;

// Blocker: a job that reports it started and then waits until released.
struct Blocker {
  std::promise<void> started, release;
  std::shared_future<void> release_f = release.get_future().share();
  std::atomic<int> runs{0};
  std::once_flag once;
  void Release() {
    std::call_once(once, [this] { release.set_value(); });
  }
  std::function<void()> Job() {
    return [this] {
      if (runs++ == 0) started.set_value();
      release_f.wait();
    };
  }
};

// ReleaseAtExit releases a Blocker when a test ends early (a failed ASSERT), so that the
// Prefetcher's destructor, which waits for the running job, does not hang. Declare it after
// the Prefetcher.
struct ReleaseAtExit {
  Blocker& b;
  ~ReleaseAtExit() { b.Release(); }
};

std::function<void()> Count(std::atomic<int>* n) {
  return [n] { ++*n; };
}

TEST(Prefetcher, RunsJobsAndCountsThem) {
  std::atomic<int> ran{0};
  Prefetcher p(2, 100);  // declared last: destroyed first, while what its jobs use still lives
  for (uint64_t u = 0; u < 50; ++u) ASSERT_TRUE(p.Submit({1, 0, u}, Count(&ran)));
  ASSERT_TRUE(WaitFor([&] { return p.completed() == 50; })) << p.completed();
  EXPECT_EQ(ran.load(), 50);
  // A key whose job already ran may be queued again.
  ASSERT_TRUE(p.Submit({1, 0, 0}, Count(&ran)));
  ASSERT_TRUE(WaitFor([&] { return p.completed() == 51; }));
  EXPECT_EQ(ran.load(), 51);
}

TEST(Prefetcher, WaitingKeyIsNotQueuedAgain) {
  Blocker blocker;
  std::atomic<int> b1{0}, b2{0}, again{0};
  Prefetcher p(1, 100);
  ReleaseAtExit guard{blocker};
  ASSERT_TRUE(p.Submit({1, 0, 0}, blocker.Job()));
  blocker.started.get_future().wait();  // the only worker is busy from now on
  EXPECT_TRUE(p.Submit({1, 0, 1}, Count(&b1)));
  EXPECT_FALSE(p.Submit({1, 0, 1}, Count(&b2))) << "key {1,0,1} is already waiting";
  EXPECT_TRUE(p.Submit({1, 0, 0}, Count(&again))) << "a running key is not waiting";
  EXPECT_FALSE(p.Submit({1, 0, 0}, Count(&again)));
  EXPECT_TRUE(p.Submit({2, 0, 1}, Count(&b2))) << "keys differ in any field";
  EXPECT_EQ(p.completed(), 0u);
  blocker.Release();
  ASSERT_TRUE(WaitFor([&] { return p.completed() == 4; })) << p.completed();
  EXPECT_EQ(b1.load(), 1);
  EXPECT_EQ(b2.load(), 1);
  EXPECT_EQ(again.load(), 1);
  EXPECT_EQ(blocker.runs.load(), 1);
}

TEST(Prefetcher, MaxQueuedIsEnforced) {
  Blocker blocker;
  std::atomic<int> ran{0}, dropped{0};
  Prefetcher p(1, 3);
  ReleaseAtExit guard{blocker};
  ASSERT_TRUE(p.Submit({0, 0, 0}, blocker.Job()));
  blocker.started.get_future().wait();
  for (uint64_t u = 1; u <= 3; ++u) EXPECT_TRUE(p.Submit({0, 0, u}, Count(&ran))) << u;
  for (uint64_t u = 4; u <= 10; ++u) EXPECT_FALSE(p.Submit({0, 0, u}, Count(&dropped))) << u;
  blocker.Release();
  ASSERT_TRUE(WaitFor([&] { return p.completed() == 4; }));
  EXPECT_EQ(ran.load(), 3);
  // Room again once the queue drained.
  EXPECT_TRUE(p.Submit({0, 0, 4}, Count(&ran)));
  ASSERT_TRUE(WaitFor([&] { return p.completed() == 5; }));
  EXPECT_EQ(ran.load(), 4);
  EXPECT_EQ(dropped.load(), 0) << "rejected jobs never run";
}

TEST(Prefetcher, CancelDropsWaitingJobsButNotTheRunningOne) {
  Blocker blocker;
  std::atomic<int> cancelled{0}, resubmitted{0};
  Prefetcher p(1, 100);
  ReleaseAtExit guard{blocker};
  ASSERT_TRUE(p.Submit({0, 0, 0}, blocker.Job()));
  blocker.started.get_future().wait();
  for (uint64_t u = 1; u <= 5; ++u) ASSERT_TRUE(p.Submit({0, 0, u}, Count(&cancelled)));
  p.Cancel();
  // The keys are no longer waiting: they may be submitted again.
  ASSERT_TRUE(p.Submit({0, 0, 1}, Count(&resubmitted)));
  blocker.Release();
  // The worker is FIFO and single: once the resubmitted job ran, anything queued before it
  // would have run too.
  ASSERT_TRUE(WaitFor([&] { return resubmitted.load() == 1 && p.completed() == 2; }))
      << p.completed();
  EXPECT_EQ(blocker.runs.load(), 1) << "the running job finished";
  EXPECT_EQ(cancelled.load(), 0) << "cancelled jobs must never run";
  EXPECT_EQ(p.completed(), 2u);
}

TEST(Prefetcher, CancelReleasesWhatTheJobsCapture) {
  Blocker blocker;
  Prefetcher p(1, 100);
  ReleaseAtExit guard{blocker};
  ASSERT_TRUE(p.Submit({0, 0, 0}, blocker.Job()));
  blocker.started.get_future().wait();
  auto token = std::make_shared<int>(1);
  std::weak_ptr<int> weak = token;
  ASSERT_TRUE(p.Submit({0, 0, 1}, [token] { (void)token; }));
  token.reset();
  EXPECT_FALSE(weak.expired()) << "the waiting job holds it";
  p.Cancel();
  EXPECT_TRUE(weak.expired()) << "a cancelled job is destroyed at once";
  blocker.Release();
}

TEST(Prefetcher, DestructorDropsWaitingJobsAndWaitsForTheRunningOne) {
  Blocker blocker;
  std::atomic<bool> running_finished{false};
  std::atomic<int> waiting_ran{0};
  auto p = std::make_unique<Prefetcher>(1, 1000);
  ReleaseAtExit guard{blocker};
  ASSERT_TRUE(p->Submit({0, 0, 0}, [&] {
    blocker.Job()();
    running_finished = true;
  }));
  blocker.started.get_future().wait();
  for (uint64_t u = 1; u <= 5; ++u) ASSERT_TRUE(p->Submit({0, 0, u}, Count(&waiting_ran)));
  Prefetcher* raw = p.get();
  std::atomic<bool> destroyed{false};
  std::thread destroyer([&] {
    p.reset();
    destroyed = true;
  });
  // Submit fails once the destructor has begun (the object lives until it returns, which
  // needs the blocked job to end); probe with fresh keys until it does.
  uint64_t probe = 100;
  EXPECT_TRUE(WaitFor([&] { return !raw->Submit({0, 0, probe++}, Count(&waiting_ran)); }));
  EXPECT_FALSE(destroyed.load()) << "the destructor must wait for the running job";
  blocker.Release();
  destroyer.join();
  EXPECT_TRUE(running_finished.load());
  EXPECT_EQ(waiting_ran.load(), 0) << "waiting jobs must not run at shutdown";
}

TEST(Prefetcher, ZeroThreadsAcceptsNothing) {
  std::atomic<int> ran{0};
  Prefetcher p(0, 100);
  EXPECT_FALSE(p.Submit({1, 2, 3}, Count(&ran)));
  p.Cancel();
  EXPECT_EQ(p.completed(), 0u);
  EXPECT_EQ(ran.load(), 0);
}

TEST(Prefetcher, ZeroMaxQueuedAcceptsNothing) {
  std::atomic<int> ran{0};
  Prefetcher p(2, 0);
  EXPECT_FALSE(p.Submit({1, 2, 3}, Count(&ran)));
  EXPECT_EQ(ran.load(), 0);
}

TEST(Prefetcher, ConcurrentSubmitAndCancel) {
  std::atomic<int> ran{0}, accepted{0}, last{0};
  std::atomic<bool> stop{false};
  Prefetcher p(3, 16);
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&, t] {
      for (uint64_t u = 0; u < 2000; ++u) {
        if (p.Submit({static_cast<uint64_t>(t), 0, u % 50}, Count(&ran))) ++accepted;
      }
    });
  }
  std::thread canceller([&] {
    while (!stop.load()) {
      p.Cancel();
      std::this_thread::yield();
    }
  });
  for (auto& t : submitters) t.join();
  stop = true;
  canceller.join();
  // Still working afterwards (once the queue has room again).
  ASSERT_TRUE(WaitFor([&] { return p.Submit({100, 0, 0}, Count(&last)); }));
  ASSERT_TRUE(WaitFor([&] { return last.load() == 1; }));
  // Whatever was not cancelled ran once; completed() counts exactly the jobs that ran.
  EXPECT_TRUE(WaitFor([&] { return p.completed() == static_cast<uint64_t>(ran.load()) + 1; }))
      << p.completed() << " vs " << ran.load();
  EXPECT_LE(ran.load(), accepted.load());
}

}  // namespace
}  // namespace ctfs::fs
