// SPDX-License-Identifier: Apache-2.0
// The one dtype table of ctfs (style.md §1.4): safetensors name and bit size of every Dtype,
// indexed by the enum value. A new dtype is added here and in dtype.h, nowhere else. The
// CryptoTensors signing order is a separate function so the bit-size table can grow without
// changing the order in which existing files are signed.
#include "format/dtype.h"

#include <array>
#include <cstddef>
#include <string>

#include "base/check.h"

namespace ctfs::format {
namespace {

struct DtypeInfo {
  Dtype dtype;
  std::string_view name;  // exactly as safetensors spells it
  uint32_t bits;          // tensor.rs Dtype::bitsize
};

// In enum order; kDtypeTable[i].dtype == Dtype(i) is checked at compile time below.
constexpr std::array<DtypeInfo, 22> kDtypeTable = {{
    {Dtype::kBool, "BOOL", 8},
    {Dtype::kF4, "F4", 4},
    {Dtype::kF6_E2M3, "F6_E2M3", 6},
    {Dtype::kF6_E3M2, "F6_E3M2", 6},
    {Dtype::kU8, "U8", 8},
    {Dtype::kI8, "I8", 8},
    {Dtype::kF8_E5M2, "F8_E5M2", 8},
    {Dtype::kF8_E4M3, "F8_E4M3", 8},
    {Dtype::kF8_E8M0, "F8_E8M0", 8},
    {Dtype::kI16, "I16", 16},
    {Dtype::kU16, "U16", 16},
    {Dtype::kF16, "F16", 16},
    {Dtype::kBF16, "BF16", 16},
    {Dtype::kI32, "I32", 32},
    {Dtype::kU32, "U32", 32},
    {Dtype::kF32, "F32", 32},
    {Dtype::kC64, "C64", 64},
    {Dtype::kF64, "F64", 64},
    {Dtype::kI64, "I64", 64},
    {Dtype::kU64, "U64", 64},
    {Dtype::kF8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {Dtype::kF8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
}};

constexpr bool TableMatchesEnum() {
  for (size_t i = 0; i < kDtypeTable.size(); ++i) {
    if (static_cast<size_t>(kDtypeTable[i].dtype) != i) return false;
  }
  return static_cast<size_t>(Dtype::kF8_E5M2FNUZ) + 1 == kDtypeTable.size();
}
static_assert(TableMatchesEnum(), "kDtypeTable must list every Dtype in enum order");

const DtypeInfo& Info(Dtype dtype) {
  size_t i = static_cast<size_t>(dtype);
  CTFS_CHECK(i < kDtypeTable.size());  // a Dtype value outside the enum is a bug
  return kDtypeTable[i];
}

}  // namespace

Result<Dtype> ParseDtype(std::string_view name) {
  for (const DtypeInfo& info : kDtypeTable) {
    if (info.name == name) return info.dtype;
  }
  // Quote at most 32 bytes of a hostile name: enough to recognize it, never a huge message.
  constexpr size_t kMaxShown = 32;
  std::string shown(name.substr(0, kMaxShown));
  if (name.size() > kMaxShown) shown += "...";
  return InvalidArgumentError("unknown dtype \"" + shown + "\"");
}

std::string_view DtypeName(Dtype dtype) { return Info(dtype).name; }

uint32_t DtypeBits(Dtype dtype) { return Info(dtype).bits; }

int CryptoTensorsOrdinal(Dtype dtype) {
  // The Dtype enum is declared in CryptoTensors 0.2.3 order (BOOL=0 ... U64=19) with the FNUZ
  // types appended (20, 21), so the ordinal is the enum value. Kept as its own function: the
  // signing order must not move if the bit-size table is ever reordered.
  static_assert(static_cast<int>(Dtype::kBool) == 0 && static_cast<int>(Dtype::kU64) == 19 &&
                static_cast<int>(Dtype::kF8_E4M3FNUZ) == 20 &&
                static_cast<int>(Dtype::kF8_E5M2FNUZ) == 21);
  return static_cast<int>(dtype);
}

}  // namespace ctfs::format
