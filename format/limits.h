// SPDX-License-Identifier: Apache-2.0
// Named limits for parsing hostile headers. Each is enforced in exactly one place in format/.
#ifndef CTFS_FORMAT_LIMITS_H_
#define CTFS_FORMAT_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace ctfs::format {

// Upstream safetensors MAX_HEADER_SIZE (S2).
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Largest integer accepted for an offset or a dimension (safetensors schema: 2^48 - 1).
inline constexpr uint64_t kMaxJsonInteger = (uint64_t{1} << 48) - 1;
// JSON nesting depth of a header (the real maximum is 3: root, tensor, shape).
inline constexpr size_t kMaxJsonDepth = 16;
// Tensor rank.
inline constexpr size_t kMaxRank = 64;
// Bytes of a tensor name or metadata key.
inline constexpr size_t kMaxNameBytes = 4096;
// Chunks per tensor in v2 files (2^32: the nonce counter is 32 bits).
inline constexpr uint64_t kMaxChunksPerTensor = uint64_t{1} << 32;

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_LIMITS_H_
