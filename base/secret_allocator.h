// SPDX-License-Identifier: Apache-2.0
// SecretAllocator<T>: a standard allocator over the SecretArena (base/secret_arena.h), for
// containers that may hold key material while it is being parsed (the JSON tree and lexer
// buffers of key documents, format/internal/strict_json.h). Every block is locked in RAM where
// possible, excluded from core dumps and wiped when it is freed, so a container that grows by
// reallocation leaves no unwiped copy behind. Slower than the heap (one mutex per call): not
// for bulk data. Allocation failure throws std::bad_alloc.
// Thread safety: stateless; the arena is thread-safe.
#ifndef CTFS_BASE_SECRET_ALLOCATOR_H_
#define CTFS_BASE_SECRET_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>

#include "base/secret_arena.h"

namespace ctfs {

template <typename T>
class SecretAllocator {
 public:
  using value_type = T;

  SecretAllocator() = default;
  template <typename U>
  SecretAllocator(const SecretAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit

  T* allocate(size_t n) {
    // The arena's blocks are aligned to their size class (>= 16 bytes) or to a page.
    static_assert(alignof(T) <= 16, "SecretArena blocks are 16-byte aligned");
    if (n > std::numeric_limits<size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    uint8_t* p = SecretArena::Allocate(BlockLen(n));
    if (p == nullptr) throw std::bad_alloc();
    return reinterpret_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) noexcept {
    SecretArena::Free(reinterpret_cast<uint8_t*>(p), BlockLen(n));  // wipes
  }

  template <typename U>
  bool operator==(const SecretAllocator<U>&) const noexcept {
    return true;  // one arena: any instance frees what another allocated
  }

 private:
  // The arena refuses empty blocks; a zero-length request gets one byte.
  static size_t BlockLen(size_t n) { return n == 0 ? 1 : n * sizeof(T); }
};

}  // namespace ctfs

#endif  // CTFS_BASE_SECRET_ALLOCATOR_H_
