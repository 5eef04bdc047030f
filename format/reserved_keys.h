// SPDX-License-Identifier: Apache-2.0
// Reserved names: the four CryptoTensors __metadata__ keys (crypt_metadata.h) and ctfs's own
// __ctfs_plain_header__ (plain_view.h). A file that uses one of them without being a complete
// CryptoTensors file is damaged or was stripped of its encryption entry, and its data may be
// ciphertext: the mount must never pass such a file through as plain weights.
#ifndef CTFS_FORMAT_RESERVED_KEYS_H_
#define CTFS_FORMAT_RESERVED_KEYS_H_

#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "format/safetensors_header.h"

namespace ctfs::format {

// ReservedKeyInUse returns the first reserved name that `header` uses as a __metadata__ key or
// as a tensor name, or nullopt.
std::optional<std::string> ReservedKeyInUse(const SafetensorsHeader& header);

// ReservedKeyMentioned returns the first reserved name that the raw header text `json` holds
// as a quoted JSON string ("__encryption__"), or nullopt: for headers too damaged to parse.
std::optional<std::string> ReservedKeyMentioned(ByteSpan json);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_RESERVED_KEYS_H_
