// SPDX-License-Identifier: Apache-2.0
// SecretArena: the memory SecretBytes live in. Every byte of it comes from anonymous mappings
// that are
//   - locked into RAM (mlock, best effort: RLIMIT_MEMLOCK may refuse; see stats()),
//   - excluded from core dumps (MADV_DONTDUMP: a lock alone does not keep pages out of a core),
//   - zero in a fork()ed child (MADV_WIPEONFORK): a child never inherits key bytes, so a
//     process that must hold keys after a fork has to load them after it;
// and every block is wiped (explicit_bzero) when it is freed. Small blocks are slots of 64 KiB
// slabs, one slab per size class; slabs stay mapped and locked for the life of the process, so
// freeing one secret never unlocks a page another secret still uses. Blocks over kMaxSlotLen
// get a mapping of their own, wiped and unmapped when freed.
// Thread safety: thread-safe.
#ifndef CTFS_BASE_SECRET_ARENA_H_
#define CTFS_BASE_SECRET_ARENA_H_

#include <cstddef>
#include <cstdint>

namespace ctfs {

struct SecretArenaStats {
  size_t live_bytes = 0;      // bytes of secrets allocated and not yet freed (requested sizes)
  size_t live_blocks = 0;     // secrets allocated and not yet freed
  size_t mapped_bytes = 0;    // bytes mapped for secrets (slabs and own mappings)
  size_t lock_failures = 0;   // mappings mlock() refused (RLIMIT_MEMLOCK): swappable
};

class SecretArena {
 public:
  // Allocate returns `len` (> 0) zero bytes, or nullptr if no memory could be mapped.
  static uint8_t* Allocate(size_t len);
  // Free wipes and releases a block from Allocate of the same `len`.
  static void Free(uint8_t* p, size_t len);
  static SecretArenaStats Stats();

  static constexpr size_t kSlabLen = 64 << 10;
  static constexpr size_t kMaxSlotLen = 4096;  // larger blocks get their own mapping
};

}  // namespace ctfs

#endif  // CTFS_BASE_SECRET_ARENA_H_
