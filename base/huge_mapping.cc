// SPDX-License-Identifier: Apache-2.0
#include "base/huge_mapping.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <fstream>

#include "base/check.h"

namespace ctfs {

Result<uint8_t*> MapHugeAligned(size_t len, const std::string& what) {
  CTFS_CHECK(len > 0 && len % kHugePageLen == 0);
  // Map one huge page more and trim both ends: what is left starts on a boundary.
  if (len > SIZE_MAX - kHugePageLen) return InvalidArgumentError(what + " too large");
  void* p = ::mmap(nullptr, len + kHugePageLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (p == MAP_FAILED) {
    return ErrnoError(errno, "mmap of a " + std::to_string(len) + "-byte " + what);
  }
  const uintptr_t raw = reinterpret_cast<uintptr_t>(p);
  const uintptr_t base = (raw + kHugePageLen - 1) & ~uintptr_t{kHugePageLen - 1};
  if (base > raw) ::munmap(p, base - raw);
  ::munmap(reinterpret_cast<void*>(base + len), raw + kHugePageLen - base);  // never empty
  auto* data = reinterpret_cast<uint8_t*>(base);
  (void)::madvise(data, len, MADV_HUGEPAGE);  // best effort
  return data;
}

std::string ThpModeFrom(std::string_view enabled_text) {
  const size_t open = enabled_text.find('[');
  const size_t close = enabled_text.find(']', open);
  if (open == std::string_view::npos || close == std::string_view::npos) return "";
  return std::string(enabled_text.substr(open + 1, close - open - 1));
}

std::string ThpMode() {
  std::ifstream in(kThpEnabledPath);
  std::string line;
  if (!std::getline(in, line)) return "";
  return ThpModeFrom(line);
}

}  // namespace ctfs
