// SPDX-License-Identifier: Apache-2.0
// Allocation-free base64 encoding into a caller's buffer, for writers that emit key material
// (jwk.cc): the caller reserves the exact final size first, so no partial copy of a secret is
// left behind in a freed, unwiped buffer. Private to format/.
#ifndef CTFS_FORMAT_INTERNAL_BASE64_INTERNAL_H_
#define CTFS_FORMAT_INTERNAL_BASE64_INTERNAL_H_

#include <cstddef>
#include <string>

#include "base/bytes.h"

namespace ctfs::format::internal {

// Base64EncodedLen returns the padded encoded length of `n` bytes (4 * ceil(n / 3)).
size_t Base64EncodedLen(size_t n);

// Base64EncodeTo writes the standard padded encoding of `data` to `out`, which has room for
// Base64EncodedLen(data.size()) bytes.
void Base64EncodeTo(ByteSpan data, char* out);

// Base64EncodeAppend appends the standard padded encoding of `data` to `*out`. It does not
// reallocate `*out` if its capacity already fits the result.
void Base64EncodeAppend(ByteSpan data, std::string* out);

}  // namespace ctfs::format::internal

#endif  // CTFS_FORMAT_INTERNAL_BASE64_INTERNAL_H_
