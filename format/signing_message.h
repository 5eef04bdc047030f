// SPDX-License-Identifier: Apache-2.0
// The canonical message that the Ed25519 header signature covers (cryptotensors-format.md §3.1):
//   {"__metadata__":{<all entries except __signature__, keys sorted bytewise>},
//    "<t>":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...}
// compact, tensors sorted by (begin, end, -CryptoTensorsOrdinal(dtype), name), serde_json
// escaping. Metadata values (including the JSON-text crypto keys) are signed as opaque strings.
#ifndef CTFS_FORMAT_SIGNING_MESSAGE_H_
#define CTFS_FORMAT_SIGNING_MESSAGE_H_

#include <string>

#include "format/safetensors_header.h"

namespace ctfs::format {

// BuildSigningMessage returns the message for `header` (its __signature__ entry, if any, is
// left out).
std::string BuildSigningMessage(const SafetensorsHeader& header);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_SIGNING_MESSAGE_H_
