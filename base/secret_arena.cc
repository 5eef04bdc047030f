// SPDX-License-Identifier: Apache-2.0
#include "base/secret_arena.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <mutex>
#include <vector>

#include "base/check.h"

namespace ctfs {
namespace {

constexpr size_t kMinSlotLen = 16;
// Size classes 16, 32, ..., kMaxSlotLen.
constexpr size_t kClasses = std::countr_zero(SecretArena::kMaxSlotLen) -
                            std::countr_zero(kMinSlotLen) + 1;

size_t ClassOf(size_t len) {
  const size_t slot = std::bit_ceil(len < kMinSlotLen ? kMinSlotLen : len);
  return static_cast<size_t>(std::countr_zero(slot) - std::countr_zero(kMinSlotLen));
}
size_t SlotLenOf(size_t cls) { return kMinSlotLen << cls; }

size_t PageRound(size_t len) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return (len + page - 1) / page * page;
}

struct Arena {
  std::mutex mu;
  std::array<std::vector<uint8_t*>, kClasses> free_slots;  // GUARDED_BY(mu)
  SecretArenaStats stats;                                   // GUARDED_BY(mu)

  // MapLocked maps `len` bytes for secrets; nullptr if the kernel refuses.
  uint8_t* MapLocked(size_t len) {
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    (void)::madvise(p, len, MADV_DONTDUMP);
    (void)::madvise(p, len, MADV_WIPEONFORK);
    if (::mlock(p, len) != 0) stats.lock_failures += 1;
    stats.mapped_bytes += len;
    return static_cast<uint8_t*>(p);
  }
};

Arena& TheArena() {
  static Arena* arena = new Arena();  // never destroyed: secrets may be freed at exit
  return *arena;
}

}  // namespace

uint8_t* SecretArena::Allocate(size_t len) {
  CTFS_CHECK(len > 0);
  Arena& a = TheArena();
  std::lock_guard<std::mutex> lock(a.mu);
  uint8_t* p = nullptr;
  if (len > kMaxSlotLen) {
    p = a.MapLocked(PageRound(len));  // fresh anonymous pages are zero
  } else {
    std::vector<uint8_t*>& slots = a.free_slots[ClassOf(len)];
    if (slots.empty()) {
      const size_t slot_len = SlotLenOf(ClassOf(len));
      uint8_t* slab = a.MapLocked(kSlabLen);
      if (slab == nullptr) return nullptr;
      for (size_t off = kSlabLen; off >= slot_len; off -= slot_len) {
        slots.push_back(slab + off - slot_len);
      }
    }
    p = slots.back();
    slots.pop_back();
  }
  if (p == nullptr) return nullptr;
  a.stats.live_bytes += len;
  a.stats.live_blocks += 1;
  return p;
}

void SecretArena::Free(uint8_t* p, size_t len) {
  if (p == nullptr) return;
  Arena& a = TheArena();
  if (len > kMaxSlotLen) {
    const size_t mapped = PageRound(len);
    explicit_bzero(p, mapped);
    (void)::munlock(p, mapped);
    (void)::munmap(p, mapped);
    std::lock_guard<std::mutex> lock(a.mu);
    a.stats.mapped_bytes -= mapped;
    a.stats.live_bytes -= len;
    a.stats.live_blocks -= 1;
    return;
  }
  explicit_bzero(p, SlotLenOf(ClassOf(len)));  // free slots are zero: Allocate relies on it
  std::lock_guard<std::mutex> lock(a.mu);
  a.free_slots[ClassOf(len)].push_back(p);
  a.stats.live_bytes -= len;
  a.stats.live_blocks -= 1;
}

SecretArenaStats SecretArena::Stats() {
  Arena& a = TheArena();
  std::lock_guard<std::mutex> lock(a.mu);
  return a.stats;
}

}  // namespace ctfs
