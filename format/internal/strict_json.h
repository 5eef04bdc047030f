// SPDX-License-Identifier: Apache-2.0
// Strict, non-throwing JSON parsing for hostile input. The only place (with its .cc) that
// parses JSON text; private to format/ (never include from other layers).
#ifndef CTFS_FORMAT_INTERNAL_STRICT_JSON_H_
#define CTFS_FORMAT_INTERNAL_STRICT_JSON_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "base/result.h"

namespace ctfs::format::internal {

using Json = nlohmann::ordered_json;

// ParseStrictJson parses `text` as one JSON value. Rejects (InvalidArgument, message prefixed
// with `what`): invalid JSON or UTF-8, duplicate object keys at any level, nesting deeper than
// kMaxJsonDepth. Object member order is preserved.
Result<Json> ParseStrictJson(std::string_view text, std::string_view what);

// GetU64 reads an unsigned integer JSON value <= kMaxJsonInteger. Floats (1.0, 1e3), negative
// numbers and non-numbers are InvalidArgument naming `what`.
Result<uint64_t> GetU64(const Json& v, std::string_view what);

// GetString reads a JSON string value; InvalidArgument naming `what` otherwise.
Result<std::string> GetString(const Json& v, std::string_view what);

}  // namespace ctfs::format::internal

#endif  // CTFS_FORMAT_INTERNAL_STRICT_JSON_H_
