// SPDX-License-Identifier: Apache-2.0
// WaitFor polls `pred` every millisecond for up to 20 s and says whether it became true: for
// tests of background work. Timing is never asserted, only the outcome.
#ifndef CTFS_TESTS_TESTING_WAIT_FOR_H_
#define CTFS_TESTS_TESTING_WAIT_FOR_H_

#include <chrono>
#include <thread>

namespace ctfs::testing {

template <typename Pred>
bool WaitFor(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace ctfs::testing

#endif  // CTFS_TESTS_TESTING_WAIT_FOR_H_
