// SPDX-License-Identifier: Apache-2.0
// The plain view of an encrypted file: the header a loader sees once the CryptoTensors keys
// are removed, and how the writer makes that header byte-identical to the original.
//
// Reconstruction rule (ours; the reference ignores it):
//   1. Take the encrypted header's members in file order, drop the four reserved metadata keys
//      (and kPlainHeaderKey), drop "__metadata__" entirely if nothing is left, serialize compactly
//      (SerializeHeaderJson) and pad with spaces to a multiple of 8.
//   2. If the encrypted header carries kPlainHeaderKey, its value is the base64 of the original
//      N header bytes; use them instead, after checking they describe exactly the same tensors
//      (names, dtypes, shapes, offsets) and user metadata. The writer adds this key only when
//      rule 1 would not reproduce the original bytes (non-compact JSON, extra padding, odd
//      escapes, metadata not first). It is covered by the signature like all metadata.
// So for any plain file F, Decrypt(Encrypt(F)) == F byte for byte, and the mounted view too.
#ifndef CTFS_FORMAT_PLAIN_VIEW_H_
#define CTFS_FORMAT_PLAIN_VIEW_H_

#include <string>

#include "base/bytes.h"
#include "base/result.h"
#include "format/safetensors_header.h"

namespace ctfs::format {

// Metadata key holding base64(original header bytes) when rule 1 does not reproduce them.
inline constexpr char kPlainHeaderKey[] = "__ctfs_plain_header__";

// PlainHeaderOf returns the plain view's header by rule 1 as a struct: reserved keys removed,
// has_metadata false if no entry is left, tensor table unchanged, header_len of the padded
// rule-1 serialization.
SafetensorsHeader PlainHeaderOf(const SafetensorsHeader& encrypted);

// BuildPlainPrefix returns the full plain prefix u64le(N') || header JSON || padding for an
// encrypted header (rules 1 and 2 above). Errors: InvalidArgument if kPlainHeaderKey is present
// but malformed or disagrees with the signed tensor table / metadata.
Result<Bytes> BuildPlainPrefix(const SafetensorsHeader& encrypted);

// OriginalHeaderNeedsCopy: for the writer. True if rule 1 applied to an encrypted header built
// from `plain` would not reproduce `plain_prefix` (the original first 8+N bytes).
bool OriginalHeaderNeedsCopy(const SafetensorsHeader& plain, ByteSpan plain_prefix);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_PLAIN_VIEW_H_
