// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the libFuzzer targets of tests/fuzz: an oracle check that aborts (libFuzzer
// then saves the input as a crash artifact), reading fixtures, and comparing parsed headers.
#ifndef CTFS_TESTS_FUZZ_FUZZ_UTIL_H_
#define CTFS_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "format/safetensors_header.h"

// FUZZ_CHECK(cond, message): an oracle. On failure prints the condition and `message` (any
// expression convertible to std::string) and aborts, which libFuzzer reports as a crash.
#define FUZZ_CHECK(cond, message)                                                        \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n  %s\n", __FILE__, __LINE__, #cond, \
                   std::string(message).c_str());                                        \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace ctfs::fuzz {

// TestdataPath: a file under tests/testdata (CTFS_TESTDATA_DIR, set by ctfs_fuzzer()).
inline std::string TestdataPath(std::string_view rel) {
  return std::string(CTFS_TESTDATA_DIR) + "/" + std::string(rel);
}

// ReadFileOrDie reads a fixture; a missing fixture is a broken setup, not a finding.
inline std::string ReadFileOrDie(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "fuzzer setup: cannot read %s\n", path.c_str());
    std::exit(2);
  }
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Fnv1a: a stable hash of the input, to derive choices (read offsets, modes) from it.
inline uint64_t Fnv1a(ByteSpan data) {
  uint64_t h = 14695981039346656037ull;
  for (uint8_t c : data) h = (h ^ c) * 1099511628211ull;
  return h;
}

inline bool SameTensor(const format::TensorInfo& a, const format::TensorInfo& b) {
  return a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.begin == b.begin &&
         a.end == b.end;
}

// SameTensorTable: the same tensors in the same order.
inline bool SameTensorTable(const format::SafetensorsHeader& a,
                            const format::SafetensorsHeader& b) {
  if (a.tensors.size() != b.tensors.size() || a.data_len != b.data_len) return false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    if (!SameTensor(a.tensors[i], b.tensors[i])) return false;
  }
  return true;
}

// SameMetadata: the same entries in the same order, and the same has_metadata.
inline bool SameMetadata(const format::SafetensorsHeader& a, const format::SafetensorsHeader& b) {
  if (a.has_metadata != b.has_metadata || a.metadata.size() != b.metadata.size()) return false;
  for (size_t i = 0; i < a.metadata.size(); ++i) {
    if (a.metadata[i].key != b.metadata[i].key || a.metadata[i].value != b.metadata[i].value) {
      return false;
    }
  }
  return true;
}

}  // namespace ctfs::fuzz

#endif  // CTFS_TESTS_FUZZ_FUZZ_UTIL_H_
