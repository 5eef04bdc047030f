// SPDX-License-Identifier: Apache-2.0
// MapHugeAligned: anonymous memory that starts on a huge-page boundary and asks the kernel for
// transparent huge pages (MADV_HUGEPAGE; best effort: the kernel's THP setting decides).
//
// Why: the kernel handles such memory in 2 MiB pieces instead of 4 KiB ones wherever it pins
// or walks it: 2 segments per 4 MiB O_DIRECT read instead of 1,024. On this project's virtio
// VM, cold 4 MiB O_DIRECT reads ran at 0.6-0.8 GB/s into 4 KiB pages and 3.0-3.9 GB/s into
// huge pages (bench/direct_read.py; bench/RESULTS.md).
#ifndef CTFS_BASE_HUGE_MAPPING_H_
#define CTFS_BASE_HUGE_MAPPING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace ctfs {

inline constexpr size_t kHugePageLen = size_t{2} << 20;  // x86-64 transparent huge page

// MapHugeAligned maps `len` bytes (REQUIRES a positive multiple of kHugePageLen), zero-filled,
// readable and writable, at a kHugePageLen-aligned address. Release it with munmap(p, len).
// `what` names the memory in the error message.
Result<uint8_t*> MapHugeAligned(size_t len, const std::string& what);

inline constexpr char kThpEnabledPath[] = "/sys/kernel/mm/transparent_hugepage/enabled";

// ThpModeFrom returns the mode marked in the text of kThpEnabledPath ("always [madvise] never"
// gives "madvise"), or "" when none is marked.
std::string ThpModeFrom(std::string_view enabled_text);

// ThpMode returns this kernel's transparent huge page mode ("always", "madvise" or "never"),
// or "" where the kernel has none. With "never", MapHugeAligned gives small pages.
std::string ThpMode();

}  // namespace ctfs

#endif  // CTFS_BASE_HUGE_MAPPING_H_
