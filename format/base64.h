// SPDX-License-Identifier: Apache-2.0
// Strict standard base64 (RFC 4648 §4 alphabet, '=' padding required), the only encoding of
// the CryptoTensors format. No whitespace, no base64url, no missing padding, non-zero unused
// bits rejected (so every byte string has exactly one accepted encoding).
#ifndef CTFS_FORMAT_BASE64_H_
#define CTFS_FORMAT_BASE64_H_

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "base/secret_bytes.h"

namespace ctfs::format {

std::string Base64Encode(ByteSpan data);

// Base64Decode: InvalidArgument("invalid base64 ...") on any deviation.
Result<Bytes> Base64Decode(std::string_view text);

// Base64DecodeSecret decodes key material straight into SecretBytes (no unwiped copies).
Result<SecretBytes> Base64DecodeSecret(std::string_view text);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_BASE64_H_
