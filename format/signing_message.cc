// SPDX-License-Identifier: Apache-2.0
// The canonical header message covered by the Ed25519 signature (cryptotensors-format.md §3.1):
// what the reference gets by serializing its Metadata struct with serde_json. __metadata__
// first (if the header has one) with entries sorted by key bytes and __signature__ left out,
// then the tensors in writer order (begin, end, dtype descending in the CryptoTensors enum,
// name ascending), each {"dtype","shape","data_offsets"}; compact, serde_json escaping.
#include "format/signing_message.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "format/crypt_metadata.h"
#include "format/dtype.h"

namespace ctfs::format {

std::string BuildSigningMessage(const SafetensorsHeader& header) {
  std::string out = "{";
  bool first = true;
  if (header.has_metadata) {
    std::vector<const MetadataEntry*> meta;
    meta.reserve(header.metadata.size());
    for (const MetadataEntry& e : header.metadata) {
      if (e.key != kSignatureKey) meta.push_back(&e);
    }
    // std::string's operator< compares as unsigned bytes: UTF-8 byte order = code point order.
    std::sort(meta.begin(), meta.end(),
              [](const MetadataEntry* a, const MetadataEntry* b) { return a->key < b->key; });
    out += "\"__metadata__\":{";
    for (size_t i = 0; i < meta.size(); ++i) {
      if (i > 0) out += ",";
      out += JsonQuote(meta[i]->key) + ":" + JsonQuote(meta[i]->value);
    }
    out += "}";
    first = false;
  }
  std::vector<const TensorInfo*> tensors;
  tensors.reserve(header.tensors.size());
  for (const TensorInfo& t : header.tensors) tensors.push_back(&t);
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return std::forward_as_tuple(a->begin, a->end, CryptoTensorsOrdinal(b->dtype), a->name) <
           std::forward_as_tuple(b->begin, b->end, CryptoTensorsOrdinal(a->dtype), b->name);
  });
  for (const TensorInfo* t : tensors) {
    if (!first) out += ",";
    first = false;
    out += JsonQuote(t->name) + ":{\"dtype\":\"";
    out += DtypeName(t->dtype);
    out += "\",\"shape\":[";
    for (size_t i = 0; i < t->shape.size(); ++i) {
      if (i > 0) out += ",";
      out += std::to_string(t->shape[i]);
    }
    out += "],\"data_offsets\":[" + std::to_string(t->begin) + "," + std::to_string(t->end) + "]}";
  }
  out += "}";
  return out;
}

}  // namespace ctfs::format
