// SPDX-License-Identifier: Apache-2.0
// Fuzzes format/safetensors_header: the input is a whole file (ParseHeader with its real
// length), the JSON text alone (ParseHeaderJson), and a length prefix checked against an
// arbitrary file length (the input's last 8 bytes). Oracles, for an accepted header:
//   * rules S1-S15 hold for the result (contiguous offsets from 0, sizes = shape x dtype,
//     8 + N + data_len = file length);
//   * serialized again (SerializeHeaderJson + BuildHeaderPrefix) with the same data, it parses
//     to the same header; its signing message is valid JSON text for the strict parser.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/checked_math.h"
#include "format/dtype.h"
#include "format/internal/strict_json.h"
#include "format/limits.h"
#include "format/safetensors_header.h"
#include "format/signing_message.h"
#include "tests/fuzz/fuzz_util.h"

namespace ctfs::fuzz {
namespace {

uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// CheckLayout: S11-S14 on an accepted header.
void CheckLayout(const format::SafetensorsHeader& h) {
  std::vector<const format::TensorInfo*> by_offset;
  for (const auto& t : h.tensors) by_offset.push_back(&t);
  std::stable_sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) {
    return std::pair(a->begin, a->end) < std::pair(b->begin, b->end);
  });
  uint64_t next = 0;
  for (const format::TensorInfo* t : by_offset) {
    FUZZ_CHECK(t->begin == next, "tensor " + t->name + " is not contiguous");
    FUZZ_CHECK(t->end >= t->begin, "tensor " + t->name + " ends before it begins");
    next = t->end;
    // S12 as written: element count first (each partial product checked), then bits.
    std::optional<uint64_t> elements = 1;
    for (uint64_t d : t->shape) elements = elements ? CheckedMul(*elements, d) : std::nullopt;
    std::optional<uint64_t> bits =
        elements ? CheckedMul(*elements, format::DtypeBits(t->dtype)) : std::nullopt;
    FUZZ_CHECK(bits && *bits % 8 == 0 && *bits / 8 == t->byte_len(),
               "tensor " + t->name + ": size does not match shape x dtype");
    FUZZ_CHECK(t->shape.size() <= format::kMaxRank, "rank");
    FUZZ_CHECK(t->name.size() <= format::kMaxNameBytes, "name length");
  }
  FUZZ_CHECK(next == h.data_len, "data_len is not the last end");
}

void CheckAccepted(const format::SafetensorsHeader& h, ByteSpan file) {
  CheckLayout(h);
  FUZZ_CHECK(h.file_len() == file.size(), "S15: 8 + N + data_len != file length");
  FUZZ_CHECK(h.has_metadata || h.metadata.empty(), "metadata without __metadata__");

  // Serialized again, with the same data region, it parses to the same header.
  Bytes again = format::BuildHeaderPrefix(format::SerializeHeaderJson(h));
  const uint64_t n = again.size() - 8;
  again.insert(again.end(), file.begin() + static_cast<long>(h.data_start()), file.end());
  auto reparsed = format::ParseHeader(again, again.size());
  FUZZ_CHECK(reparsed.ok(), "serialized header rejected: " + reparsed.status().ToString());
  FUZZ_CHECK(reparsed->header_len == n, "header_len of the serialized header");
  FUZZ_CHECK(SameTensorTable(*reparsed, h), "serialized header has another tensor table");
  FUZZ_CHECK(SameMetadata(*reparsed, h), "serialized header has other metadata");

  const std::string message = format::BuildSigningMessage(h);
  auto json = format::internal::ParseStrictJson(message, "signing message");
  FUZZ_CHECK(json.ok(), "signing message is not JSON: " + json.status().ToString());
}

void FuzzSafetensorsHeader(ByteSpan input) {
  auto header = format::ParseHeader(input, input.size());
  auto n = format::ParseHeaderLength(input.first(std::min<size_t>(8, input.size())), input.size());
  if (header.ok()) {
    FUZZ_CHECK(n.ok() && *n == header->header_len, "ParseHeaderLength disagrees with ParseHeader");
    CheckAccepted(*header, input);
  } else {
    FUZZ_CHECK(!header.status().message().empty(), "empty error message");
  }

  // The JSON path alone, on the whole input.
  auto json_only = format::ParseHeaderJson(input);
  if (json_only.ok()) {
    CheckLayout(*json_only);
    FUZZ_CHECK(json_only->header_len == input.size(), "header_len of ParseHeaderJson");
  }

  // A length prefix against an arbitrary file length.
  if (input.size() >= 16) {
    const uint64_t file_len = LoadLe64(input.data() + input.size() - 8);
    auto n2 = format::ParseHeaderLength(input.first(8), file_len);
    if (n2.ok()) {
      FUZZ_CHECK(*n2 <= format::kMaxHeaderBytes && 8 + *n2 <= file_len, "S2/S3 violated");
    }
    auto h2 = format::ParseHeader(input, file_len);
    if (h2.ok()) {
      FUZZ_CHECK(CheckedAdd(h2->data_start(), h2->data_len) == file_len, "S15 violated");
      CheckLayout(*h2);
    }
  }
}

}  // namespace
}  // namespace ctfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctfs::fuzz::FuzzSafetensorsHeader(ctfs::ByteSpan(data, size));
  return 0;
}
