// SPDX-License-Identifier: Apache-2.0
// Reading this process's /proc/self/smaps in tests: which mapping holds an address, whether
// the kernel counts it as eligible for transparent huge pages, and its VmFlags.
#ifndef CTFS_TESTS_TESTING_SMAPS_H_
#define CTFS_TESTS_TESTING_SMAPS_H_

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

namespace ctfs::testing {

struct Vma {
  uintptr_t start = 0;
  uintptr_t end = 0;
  std::optional<bool> thp_eligible;  // the "THPeligible" field, where the kernel has it
  std::string flags;                 // the "VmFlags" field: two-letter codes (lo, dd, wf...)

  // HasFlag: `code` (e.g. "dd": excluded from core dumps) is among the VmFlags.
  bool HasFlag(const std::string& code) const {
    return (" " + flags + " ").find(" " + code + " ") != std::string::npos;
  }
};

// VmaOf returns the mapping that contains `addr`, or nullopt.
inline std::optional<Vma> VmaOf(const void* addr) {
  const auto a = reinterpret_cast<uintptr_t>(addr);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  std::optional<Vma> found;
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's first line
      if (found) return found;                                   // the next mapping's header: done
      if (a >= lo && a < hi) found = Vma{.start = lo, .end = hi, .thp_eligible = std::nullopt, .flags = ""};
      continue;
    }
    if (found && line.rfind("VmFlags:", 0) == 0) {
      found->flags = line.substr(8);
      while (!found->flags.empty() && found->flags.front() == ' ') found->flags.erase(0, 1);
      while (!found->flags.empty() && found->flags.back() == ' ') found->flags.pop_back();
    }
    int eligible = 0;
    if (found && std::sscanf(line.c_str(), "THPeligible: %d", &eligible) == 1) {
      found->thp_eligible = eligible != 0;
    }
  }
  return found;
}

}  // namespace ctfs::testing

#endif  // CTFS_TESTS_TESTING_SMAPS_H_
