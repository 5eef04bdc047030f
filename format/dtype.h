// SPDX-License-Identifier: Apache-2.0
// Safetensors dtypes: names, bit sizes (one table, style.md §1.4), and the CryptoTensors
// writer order used to break ties when signing (cryptotensors-format.md §1.1, §3.1).
#ifndef CTFS_FORMAT_DTYPE_H_
#define CTFS_FORMAT_DTYPE_H_

#include <cstdint>
#include <string_view>

#include "base/result.h"

namespace ctfs::format {

enum class Dtype {
  kBool,
  kF4,
  kF6_E2M3,
  kF6_E3M2,
  kU8,
  kI8,
  kF8_E5M2,
  kF8_E4M3,
  kF8_E8M0,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kC64,
  kF64,
  kI64,
  kU64,
  kF8_E4M3FNUZ,
  kF8_E5M2FNUZ,
};

// ParseDtype maps "F32", "BF16", "F8_E4M3", ... to a Dtype; InvalidArgument names the string.
Result<Dtype> ParseDtype(std::string_view name);
// DtypeName returns the safetensors name ("F32").
std::string_view DtypeName(Dtype dtype);
// DtypeBits returns the size of one element in bits (4, 6, 8, 16, 32 or 64).
uint32_t DtypeBits(Dtype dtype);
// CryptoTensorsOrdinal: position in the CryptoTensors 0.2.3 enum (BOOL=0 ... U64=19). The FNUZ
// types, unknown to that enum, sort after U64 (20, 21).
int CryptoTensorsOrdinal(Dtype dtype);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_DTYPE_H_
