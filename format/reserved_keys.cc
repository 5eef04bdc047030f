// SPDX-License-Identifier: Apache-2.0
#include "format/reserved_keys.h"

#include <algorithm>
#include <array>

#include "format/crypt_metadata.h"
#include "format/plain_view.h"

namespace ctfs::format {
namespace {

constexpr std::array<std::string_view, 5> kReservedNames = {
    kCryptoKeysKey, kEncryptionKey, kPolicyKey, kSignatureKey, kPlainHeaderKey};

bool IsReservedName(std::string_view s) {
  return std::find(kReservedNames.begin(), kReservedNames.end(), s) != kReservedNames.end();
}

}  // namespace

std::optional<std::string> ReservedKeyInUse(const SafetensorsHeader& header) {
  for (const MetadataEntry& e : header.metadata) {
    if (IsReservedName(e.key)) return e.key;
  }
  for (const TensorInfo& t : header.tensors) {
    if (IsReservedName(t.name)) return t.name;
  }
  return std::nullopt;
}

std::optional<std::string> ReservedKeyMentioned(ByteSpan json) {
  const std::string_view text(reinterpret_cast<const char*>(json.data()), json.size());
  for (std::string_view name : kReservedNames) {
    const std::string quoted = "\"" + std::string(name) + "\"";
    if (text.find(quoted) != std::string_view::npos) return std::string(name);
  }
  return std::nullopt;
}

}  // namespace ctfs::format
