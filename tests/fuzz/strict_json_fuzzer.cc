// SPDX-License-Identifier: Apache-2.0
// Fuzzes format/internal/strict_json (the only JSON parser of hostile text). Oracles, for an
// accepted document:
//   * MemberOrder lists the root object's member names (each once) and those of
//     root["__metadata__"] when that is an object, and nothing else;
//   * nesting is within kMaxJsonDepth; the text has no raw NUL;
//   * GetU64 accepts exactly the unsigned integers <= 2^48 - 1, GetString exactly strings;
//   * the document written back (dump) parses again to an equal document.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "format/internal/strict_json.h"
#include "format/limits.h"
#include "tests/fuzz/fuzz_util.h"

namespace ctfs::fuzz {
namespace {

using format::internal::Json;

// Depth: containers nested in `j` (a scalar is 0, [] and {} are 1).
size_t Depth(const Json& j) {
  if (!j.is_structured()) return 0;
  size_t inner = 0;
  for (const Json& v : j) inner = std::max(inner, Depth(v));
  return inner + 1;
}

// CheckAccessors checks GetU64 and GetString on every value of the tree.
void CheckAccessors(const Json& j) {
  auto u = format::internal::GetU64(j, "value");
  const bool want_u64 =
      j.is_number_unsigned() && j.get<uint64_t>() <= format::kMaxJsonInteger;
  FUZZ_CHECK(u.ok() == want_u64, "GetU64 on " + j.dump());
  if (u.ok()) FUZZ_CHECK(*u == j.get<uint64_t>(), "GetU64 value");
  auto s = format::internal::GetString(j, "value");
  FUZZ_CHECK(s.ok() == j.is_string(), "GetString on " + j.dump());
  if (s.ok()) FUZZ_CHECK(*s == j.get_ref<const std::string&>(), "GetString value");
  if (j.is_structured()) {
    for (const Json& v : j) CheckAccessors(v);
  }
}

// SameNames: `order` lists exactly the member names of object `obj`, each once.
bool SameNames(const std::vector<std::string>& order, const Json& obj) {
  std::set<std::string> names(order.begin(), order.end());
  if (names.size() != order.size() || names.size() != obj.size()) return false;
  for (const auto& member : obj.items()) {
    if (names.count(member.key()) == 0) return false;
  }
  return true;
}

void FuzzStrictJson(ByteSpan input) {
  const std::string_view text = AsStringView(input);
  format::internal::MemberOrder order;
  order.nested_key = "__metadata__";
  auto parsed = format::internal::ParseStrictJson(text, "fuzz", &order);
  auto plain = format::internal::ParseStrictJson(text, "fuzz");
  FUZZ_CHECK(parsed.ok() == plain.ok(), "MemberOrder changes acceptance");
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().message().rfind("fuzz: ", 0) == 0,
               "error not prefixed with `what`: " + parsed.status().ToString());
    return;
  }
  const Json& j = *parsed;
  FUZZ_CHECK(j == *plain, "MemberOrder changes the result");
  FUZZ_CHECK(text.find('\0') == std::string_view::npos, "accepted a raw NUL byte");
  FUZZ_CHECK(Depth(j) <= format::kMaxJsonDepth + 1,
             "accepted nesting depth " + std::to_string(Depth(j)));

  if (j.is_object()) {
    FUZZ_CHECK(SameNames(order.root, j), "MemberOrder.root does not list the root members");
    auto nested = j.find(order.nested_key);
    if (nested != j.end() && nested->is_object()) {
      FUZZ_CHECK(SameNames(order.nested, *nested), "MemberOrder.nested does not list its members");
    } else {
      FUZZ_CHECK(order.nested.empty(), "MemberOrder.nested without a nested object");
    }
  } else {
    FUZZ_CHECK(order.root.empty() && order.nested.empty(), "MemberOrder for a non-object");
  }

  CheckAccessors(j);

  // Written back, it parses to the same document (floats excepted: their text need not
  // round-trip bit for bit, e.g. 1e400 parses as infinity and dumps as null).
  bool has_float = false;
  std::function<void(const Json&)> find_float = [&](const Json& v) {
    if (v.is_number_float()) has_float = true;
    if (v.is_structured()) {
      for (const Json& e : v) find_float(e);
    }
  };
  find_float(j);
  if (!has_float) {
    const std::string dumped = j.dump();
    auto again = format::internal::ParseStrictJson(dumped, "fuzz");
    FUZZ_CHECK(again.ok(), "own dump rejected: " + again.status().ToString() + ": " + dumped);
    FUZZ_CHECK(*again == j, "dump round trip changed the document: " + dumped);
  }
}

}  // namespace
}  // namespace ctfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctfs::fuzz::FuzzStrictJson(ctfs::ByteSpan(data, size));
  return 0;
}
