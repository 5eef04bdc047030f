// SPDX-License-Identifier: Apache-2.0
// Byte vocabulary shared by all layers.
#ifndef CTFS_BASE_BYTES_H_
#define CTFS_BASE_BYTES_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace ctfs {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsStringView(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace ctfs

#endif  // CTFS_BASE_BYTES_H_
