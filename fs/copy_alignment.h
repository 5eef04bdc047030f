// SPDX-License-Identifier: Apache-2.0
// Where a decrypted chunk starts in its buffer, so that the kernel copies it cheaply.
//
// Two kernel copies move each chunk: pread() of its ciphertext from the page cache into the
// buffer (a reader's miss, or every read without direct I/O), and the reply to a FUSE read,
// which the kernel copies from the buffer into the mount's page cache. On this project's VM
// (AMD EPYC, bench/copy_offsets.py) such a copy ran 4-6x slower when its destination address
// lay 1-31 bytes past its source address modulo 4 KiB, and at full speed for every other
// distance measured (0, 32, 48, 64, 128, 2048, 4080, 4095). Served from a buffer at lead 0,
// a model whose tensor data starts 16 bytes past a page took 40 % more daemon CPU for a cold
// scan (bench/RESULTS.md, sixth session of 2026-12-01).
//
// Page cache pages are page-aligned, so a buffer whose chunk starts `lead` bytes past a page
// boundary meets the reply copy at distance (served_off - lead) and the pread at distance
// (lead - cipher_off), modulo 4 KiB, where served_off and cipher_off are where the chunk
// starts in the served file and in the encrypted file. ChunkLead picks a lead that keeps both
// distances out of the slow window (widened to kSlowCopyWindow bytes for other CPUs).
#ifndef CTFS_FS_COPY_ALIGNMENT_H_
#define CTFS_FS_COPY_ALIGNMENT_H_

#include <cstddef>
#include <cstdint>
#include <optional>

namespace ctfs::fs {

inline constexpr size_t kCopyPageLen = 4096;
// Copies whose destination lies 1 to kSlowCopyWindow - 1 bytes past their source (modulo a
// page) are avoided.
inline constexpr size_t kSlowCopyWindow = 64;

// SlowCopyDistance: a copy whose destination is `dst_minus_src` bytes past its source (modulo
// a page) may take the slow path.
bool SlowCopyDistance(uint64_t dst_minus_src);

// ChunkLead returns the smallest lead (< kCopyPageLen) for a chunk that starts at `served_off`
// in the served file such that the reply out of its buffer is not a slow-distance copy, nor
// the pread into it of its ciphertext from `pread_off` in the encrypted file (nullopt: the
// ciphertext is not pread into the buffer, e.g. read with O_DIRECT and decrypted from
// elsewhere). 0 for most chunks; a non-zero lead can make the chunk's buffer one granule
// longer (fs/chunk_buffer_pool.h).
size_t ChunkLead(uint64_t served_off, std::optional<uint64_t> pread_off);

}  // namespace ctfs::fs

#endif  // CTFS_FS_COPY_ALIGNMENT_H_
