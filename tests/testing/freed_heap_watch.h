// SPDX-License-Identifier: Apache-2.0
// FreedHeapWatch: finds secrets left in freed heap blocks. This header REPLACES the global
// operator new and delete of the test binary that includes it: include it from exactly one .cc
// of a test binary. Every block carries a 16-byte header (its size, and whether it was made
// while a watch was on). While a FreedHeapWatch lives, new blocks are zero-filled, and each
// such block is scanned when it is freed for any `window`-byte slice of the watched secrets:
// a hit is a copy of (part of) a secret that went back to the heap unwiped. Blocks made before
// the watch are not scanned (their stale bytes are not the code under test's doing). Heap
// memory obtained with malloc directly (OpenSSL, libc) is not seen.
// Thread safety: one watch at a time; the code under test may allocate from any thread.
#ifndef CTFS_TESTS_TESTING_FREED_HEAP_WATCH_H_
#define CTFS_TESTS_TESTING_FREED_HEAP_WATCH_H_

#include <string.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace ctfs::testing {
namespace freed_heap_watch_internal {

constexpr size_t kHeaderLen = 16;  // keeps malloc's 16-byte alignment
constexpr uint64_t kWatched = uint64_t{1} << 63;

struct State {
  std::atomic<bool> on{false};
  const std::vector<std::string>* secrets = nullptr;  // set before `on`, stable while on
  size_t window = 0;
  std::atomic<size_t> freed{0};
  std::atomic<size_t> hits{0};
};
inline constinit State state;

inline bool HoldsSlice(const uint8_t* p, size_t len) {
  for (const std::string& s : *state.secrets) {
    for (size_t off = 0; off + state.window <= s.size(); ++off) {
      if (memmem(p, len, s.data() + off, state.window) != nullptr) return true;
    }
  }
  return false;
}

inline void* Allocate(size_t len) {
  const bool watched = state.on.load(std::memory_order_acquire);
  if (len > SIZE_MAX - kHeaderLen) throw std::bad_alloc();
  auto* block = static_cast<uint8_t*>(std::malloc(kHeaderLen + len));
  if (block == nullptr) throw std::bad_alloc();
  const uint64_t tag = len | (watched ? kWatched : 0);
  memcpy(block, &tag, sizeof(tag));
  if (watched) memset(block + kHeaderLen, 0, len);
  return block + kHeaderLen;
}

inline void Free(void* p) {
  if (p == nullptr) return;
  uint8_t* block = static_cast<uint8_t*>(p) - kHeaderLen;
  uint64_t tag;
  memcpy(&tag, block, sizeof(tag));
  if ((tag & kWatched) != 0 && state.on.load(std::memory_order_acquire)) {
    state.freed.fetch_add(1, std::memory_order_relaxed);
    if (HoldsSlice(block + kHeaderLen, tag & ~kWatched)) {
      state.hits.fetch_add(1, std::memory_order_relaxed);
    }
  }
  std::free(block);
}

}  // namespace freed_heap_watch_internal

class FreedHeapWatch {
 public:
  // Watches for `window`-byte slices of each of `secrets` (each at least `window` long).
  explicit FreedHeapWatch(std::vector<std::string> secrets, size_t window = 8)
      : secrets_(std::move(secrets)) {
    auto& s = freed_heap_watch_internal::state;
    s.secrets = &secrets_;
    s.window = window;
    s.freed = 0;
    s.hits = 0;
    s.on.store(true, std::memory_order_release);
  }
  ~FreedHeapWatch() { Stop(); }
  FreedHeapWatch(const FreedHeapWatch&) = delete;
  FreedHeapWatch& operator=(const FreedHeapWatch&) = delete;

  // Stop ends the watch; the counts stay readable.
  void Stop() { freed_heap_watch_internal::state.on.store(false, std::memory_order_release); }
  // Blocks made and freed during the watch.
  size_t blocks_freed() const { return freed_heap_watch_internal::state.freed.load(); }
  // Of those, the ones that held a slice of a secret when freed.
  size_t blocks_with_secret() const { return freed_heap_watch_internal::state.hits.load(); }

 private:
  std::vector<std::string> secrets_;
};

}  // namespace ctfs::testing

// The replacements ([replacement.functions]). The aligned forms keep their defaults: they
// never see these blocks (and sanitizer runtimes pair them among themselves).
namespace ctfs::testing::freed_heap_watch_internal {
inline void* AllocateNoThrow(size_t len) noexcept {
  try {
    return Allocate(len);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
}  // namespace ctfs::testing::freed_heap_watch_internal

void* operator new(size_t len) { return ctfs::testing::freed_heap_watch_internal::Allocate(len); }
void* operator new[](size_t len) { return ctfs::testing::freed_heap_watch_internal::Allocate(len); }
void* operator new(size_t len, const std::nothrow_t&) noexcept {
  return ctfs::testing::freed_heap_watch_internal::AllocateNoThrow(len);
}
void* operator new[](size_t len, const std::nothrow_t&) noexcept {
  return ctfs::testing::freed_heap_watch_internal::AllocateNoThrow(len);
}
void operator delete(void* p) noexcept { ctfs::testing::freed_heap_watch_internal::Free(p); }
void operator delete[](void* p) noexcept { ctfs::testing::freed_heap_watch_internal::Free(p); }
void operator delete(void* p, size_t) noexcept {
  ctfs::testing::freed_heap_watch_internal::Free(p);
}
void operator delete[](void* p, size_t) noexcept {
  ctfs::testing::freed_heap_watch_internal::Free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  ctfs::testing::freed_heap_watch_internal::Free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  ctfs::testing::freed_heap_watch_internal::Free(p);
}

#endif  // CTFS_TESTS_TESTING_FREED_HEAP_WATCH_H_
