// SPDX-License-Identifier: Apache-2.0
// Plain-view header reconstruction (see plain_view.h for the rules).
#include "format/plain_view.h"

#include <algorithm>
#include <map>
#include <string>

#include "format/base64.h"
#include "format/crypt_metadata.h"

namespace ctfs::format {
namespace {

bool IsRemovedKey(std::string_view key) { return IsReservedKey(key) || key == kPlainHeaderKey; }

bool SameTensors(const SafetensorsHeader& a, const SafetensorsHeader& b) {
  if (a.tensors.size() != b.tensors.size()) return false;
  std::map<std::string, const TensorInfo*> by_name;
  for (const TensorInfo& t : a.tensors) by_name[t.name] = &t;
  for (const TensorInfo& t : b.tensors) {
    auto it = by_name.find(t.name);
    if (it == by_name.end()) return false;
    const TensorInfo& o = *it->second;
    if (o.dtype != t.dtype || o.shape != t.shape || o.begin != t.begin || o.end != t.end) {
      return false;
    }
  }
  return true;
}

std::map<std::string, std::string> MetadataMap(const SafetensorsHeader& h) {
  std::map<std::string, std::string> m;
  for (const MetadataEntry& e : h.metadata) m[e.key] = e.value;
  return m;
}

}  // namespace

SafetensorsHeader PlainHeaderOf(const SafetensorsHeader& encrypted) {
  SafetensorsHeader plain;
  for (const MetadataEntry& e : encrypted.metadata) {
    if (!IsRemovedKey(e.key)) plain.metadata.push_back(e);
  }
  plain.has_metadata = !plain.metadata.empty();
  plain.tensors = encrypted.tensors;
  plain.data_len = encrypted.data_len;
  plain.header_len = BuildHeaderPrefix(SerializeHeaderJson(plain)).size() - 8;
  return plain;
}

Result<Bytes> BuildPlainPrefix(const SafetensorsHeader& encrypted) {
  SafetensorsHeader plain = PlainHeaderOf(encrypted);
  const std::string* stored = encrypted.FindMetadata(kPlainHeaderKey);
  if (stored == nullptr) return BuildHeaderPrefix(SerializeHeaderJson(plain));

  auto json = Base64Decode(*stored);
  if (!json.ok()) return json.status().WithContext(std::string(kPlainHeaderKey));
  auto original = ParseHeaderJson(*json);
  if (!original.ok()) return original.status().WithContext(std::string(kPlainHeaderKey));
  if (!SameTensors(*original, plain) || MetadataMap(*original) != MetadataMap(plain)) {
    return InvalidArgumentError(std::string(kPlainHeaderKey) +
                                ": stored original header disagrees with the signed header");
  }
  Bytes prefix(8 + json->size());
  uint64_t n = json->size();
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<uint8_t>(n >> (8 * i));
  std::copy(json->begin(), json->end(), prefix.begin() + 8);
  return prefix;
}

bool OriginalHeaderNeedsCopy(const SafetensorsHeader& plain, ByteSpan plain_prefix) {
  // Rule 1 applied to the encrypted header yields exactly PlainHeaderOf(plain) serialized,
  // because the writer keeps member order and appends only removable keys.
  Bytes rebuilt = BuildHeaderPrefix(SerializeHeaderJson(PlainHeaderOf(plain)));
  return !std::equal(rebuilt.begin(), rebuilt.end(), plain_prefix.begin(), plain_prefix.end());
}

}  // namespace ctfs::format
