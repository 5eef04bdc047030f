// SPDX-License-Identifier: Apache-2.0
// Overflow-checked arithmetic for offsets and sizes. Every computation on a number that came
// from a file goes through these.
#ifndef CTFS_BASE_CHECKED_MATH_H_
#define CTFS_BASE_CHECKED_MATH_H_

#include <cstdint>
#include <optional>

namespace ctfs {

// CheckedAdd returns a + b, or nullopt on overflow.
inline std::optional<uint64_t> CheckedAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// CheckedMul returns a * b, or nullopt on overflow.
inline std::optional<uint64_t> CheckedMul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// CeilDiv returns ceil(a / b). REQUIRES: b > 0.
inline uint64_t CeilDiv(uint64_t a, uint64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

}  // namespace ctfs

#endif  // CTFS_BASE_CHECKED_MATH_H_
