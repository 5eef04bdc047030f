// SPDX-License-Identifier: Apache-2.0
// Strict, non-throwing JSON parsing for hostile input. The only place (with its .cc) that
// parses JSON text; private to format/ (never include from other layers).
#ifndef CTFS_FORMAT_INTERNAL_STRICT_JSON_H_
#define CTFS_FORMAT_INTERNAL_STRICT_JSON_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/secret_allocator.h"

namespace ctfs::format::internal {

// Objects are std::map based (O(log n) insertion). nlohmann::ordered_json would keep member
// order but inserts with a linear search: quadratic in the member count, so a hostile 100 MB
// header could stall the parser for hours. Where member order matters it is recorded
// separately (MemberOrder).
using Json = nlohmann::json;

// SecretJson is the tree of a document that holds key material (JWK, JWK Set): every string,
// object node and array it owns lives in the SecretArena (locked, not dumped, wiped when
// freed), and so does the parser's token buffer (a SecretString). Slower than Json: never use
// it for model headers.
using SecretString = std::basic_string<char, std::char_traits<char>, SecretAllocator<char>>;
using SecretJson = nlohmann::basic_json<std::map, std::vector, SecretString, bool, std::int64_t,
                                        std::uint64_t, double, SecretAllocator>;

// MemberOrder records the order of the root object's members and of the members of one named
// object member of the root (e.g. "__metadata__").
struct MemberOrder {
  std::string nested_key;           // in: the root member whose own member order is wanted
  std::vector<std::string> root;    // out: root member names in text order
  std::vector<std::string> nested;  // out: member names of root[nested_key] in text order
};

// ParseStrictJson parses `text` as one JSON value. Rejects (InvalidArgument, message prefixed
// with `what`): invalid JSON or UTF-8, a raw NUL byte, duplicate object keys at any level,
// nesting deeper than kMaxJsonDepth. If `order` is given, member order is recorded into it.
Result<Json> ParseStrictJson(std::string_view text, std::string_view what,
                             MemberOrder* order = nullptr);

// ParseStrictSecretJson is ParseStrictJson (same checks) for a document holding key material:
// the text is read in place, and every copy of it the parser makes (the tree, its token
// buffers, the lexer's record of the raw token) is in the SecretArena and wiped when freed.
// Messages quote no string value (a duplicate member's name at most).
Result<SecretJson> ParseStrictSecretJson(std::string_view text, std::string_view what);

// GetU64 reads an unsigned integer JSON value <= kMaxJsonInteger. Floats (1.0, 1e3), negative
// numbers and non-numbers are InvalidArgument naming `what`.
Result<uint64_t> GetU64(const Json& v, std::string_view what);

// GetString reads a JSON string value; InvalidArgument naming `what` otherwise. The SecretJson
// overload copies into an ordinary std::string: only for members that are not secret (kid, alg).
Result<std::string> GetString(const Json& v, std::string_view what);
Result<std::string> GetString(const SecretJson& v, std::string_view what);

}  // namespace ctfs::format::internal

#endif  // CTFS_FORMAT_INTERNAL_STRICT_JSON_H_
