// SPDX-License-Identifier: Apache-2.0
// Test-only helpers for the crypto known-answer tests: read a plain-text vector file from
// CTFS_TESTDATA_DIR/vectors (one vector per line, whitespace-separated hex fields, '#'
// comments, "-" for an empty field) and decode hex. Header-only; not a library.
#ifndef CTFS_TESTS_UNIT_CRYPTO_VECTOR_FILE_H_
#define CTFS_TESTS_UNIT_CRYPTO_VECTOR_FILE_H_

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"

namespace ctfs::crypto::testing {

// VectorLine is one non-comment line of a vector file.
struct VectorLine {
  int line_no = 0;
  std::vector<std::string> fields;
};

// HexToBytes decodes lowercase or uppercase hex; "-" is the empty string. Records a test
// failure (and returns what it decoded so far) on malformed input.
inline Bytes HexToBytes(std::string_view hex) {
  Bytes out;
  if (hex == "-") return out;
  if (hex.size() % 2 != 0) {
    ADD_FAILURE() << "odd-length hex: " << hex;
    return out;
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      ADD_FAILURE() << "bad hex digit in: " << hex;
      return out;
    }
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

// BytesToHex encodes lowercase hex.
inline std::string BytesToHex(ByteSpan bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
  return out;
}

// ReadVectorFile reads CTFS_TESTDATA_DIR "/vectors/" + `name`. Every non-comment line must
// have exactly `num_fields` fields (a test failure otherwise). A missing file records a
// failure and returns no vectors, so callers' minimum-count checks fail too.
inline std::vector<VectorLine> ReadVectorFile(const std::string& name, size_t num_fields) {
  const std::string path = std::string(CTFS_TESTDATA_DIR) + "/vectors/" + name;
  std::ifstream in(path);
  std::vector<VectorLine> vectors;
  if (!in) {
    ADD_FAILURE() << "cannot open vector file " << path;
    return vectors;
  }
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    VectorLine v;
    v.line_no = line_no;
    std::istringstream fields(line);
    std::string field;
    while (fields >> field) v.fields.push_back(field);
    if (v.fields.size() != num_fields) {
      ADD_FAILURE() << path << ":" << line_no << ": expected " << num_fields << " fields, got "
                    << v.fields.size();
      continue;
    }
    vectors.push_back(std::move(v));
  }
  return vectors;
}

}  // namespace ctfs::crypto::testing

#endif  // CTFS_TESTS_UNIT_CRYPTO_VECTOR_FILE_H_
