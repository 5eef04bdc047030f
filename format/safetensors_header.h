// SPDX-License-Identifier: Apache-2.0
// The safetensors container: parse and validate a header exactly by rules S1-S15
// (style.md §1), and serialize one the way the reference writer does.
//
//   offset 0   : u64 LE N
//   offset 8   : N bytes of UTF-8 JSON, right-padded with spaces
//   offset 8+N : data region; data_offsets count from here
#ifndef CTFS_FORMAT_SAFETENSORS_HEADER_H_
#define CTFS_FORMAT_SAFETENSORS_HEADER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "format/dtype.h"

namespace ctfs::format {

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::kU8;
  std::vector<uint64_t> shape;
  uint64_t begin = 0;  // data_offsets[0], relative to the data region
  uint64_t end = 0;    // data_offsets[1]
  uint64_t byte_len() const { return end - begin; }
};

struct MetadataEntry {
  std::string key;
  std::string value;
};

struct SafetensorsHeader {
  // N: length of the JSON text including padding.
  uint64_t header_len = 0;
  // Whether the JSON had a "__metadata__" member (possibly empty).
  bool has_metadata = false;
  // __metadata__ entries in file order.
  std::vector<MetadataEntry> metadata;
  // Tensors in file (JSON member) order.
  std::vector<TensorInfo> tensors;
  // Bytes of the data region (= the largest `end`, 0 without tensors).
  uint64_t data_len = 0;

  uint64_t data_start() const { return 8 + header_len; }
  uint64_t file_len() const { return 8 + header_len + data_len; }
  // FindMetadata returns the value of `key`, or nullptr.
  const std::string* FindMetadata(std::string_view key) const;
  // FindTensor returns the tensor named `name`, or nullptr.
  const TensorInfo* FindTensor(std::string_view name) const;
};

// ParseHeaderLength reads N from the first 8 bytes and checks S1-S3 against `file_len`.
// `first_bytes` may be shorter than 8 only if the file is (S1, HeaderTooSmall).
Result<uint64_t> ParseHeaderLength(ByteSpan first_bytes, uint64_t file_len);

// ParseHeaderJson parses and validates the N header bytes (S4-S14): UTF-8, a JSON object,
// string-only __metadata__, complete tensor entries with known dtypes, sorted contiguous
// offsets from 0, overflow-checked sizes matching shape x dtype. Duplicate keys and unknown
// tensor fields are rejected. Errors are InvalidArgument naming the rule and the tensor.
Result<SafetensorsHeader> ParseHeaderJson(ByteSpan json_bytes);

// ParseHeader = ParseHeaderLength + ParseHeaderJson + S15 (8 + N + data_len == file_len).
// `prefix` holds at least the first 8 + N bytes of the file.
Result<SafetensorsHeader> ParseHeader(ByteSpan prefix, uint64_t file_len);

// SerializeHeaderJson writes compact JSON like the reference (serde_json escaping): the
// __metadata__ object first (if has_metadata) with entries in vector order, then each tensor
// in vector order as {"dtype":..,"shape":[..],"data_offsets":[b,e]}. No padding.
std::string SerializeHeaderJson(const SafetensorsHeader& header);

// BuildHeaderPrefix returns u64le(N) || json || spaces, N = json length rounded up to a
// multiple of `align` (8 by default, as the reference writer pads).
Bytes BuildHeaderPrefix(std::string_view json, uint64_t align = 8);

// JsonQuote returns `s` as a JSON string literal escaped exactly like serde_json: \" \\ \b \t
// \n \f \r, other bytes < 0x20 as \u00xx (lowercase hex), everything else raw.
std::string JsonQuote(std::string_view s);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_SAFETENSORS_HEADER_H_
