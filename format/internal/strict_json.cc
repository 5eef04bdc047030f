// SPDX-License-Identifier: Apache-2.0
#include "format/internal/strict_json.h"

#include <set>
#include <string>
#include <vector>

#include "format/limits.h"

namespace ctfs::format::internal {

Result<Json> ParseStrictJson(std::string_view text, std::string_view what, MemberOrder* order) {
  // nlohmann's lexer treats a NUL byte as the end of input, so "{}\0anything" would parse as
  // "{}" (a polyglot). JSON never allows a raw NUL (inside strings it must be escaped), so
  // reject it up front, as serde_json does.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return InvalidArgumentError(std::string(what) + ": invalid JSON (NUL byte at offset " +
                                std::to_string(nul) + ")");
  }
  std::vector<std::set<std::string>> key_stack;
  std::string failure;
  bool in_nested = false;  // inside root[order->nested_key]
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) -> bool {
    if (!failure.empty()) return true;
    if (static_cast<size_t>(depth) > kMaxJsonDepth) {
      failure = "JSON nested deeper than " + std::to_string(kMaxJsonDepth);
      return true;
    }
    switch (event) {
      case Json::parse_event_t::object_start:
        key_stack.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!key_stack.empty()) key_stack.pop_back();
        break;
      case Json::parse_event_t::key: {
        if (key_stack.empty()) break;
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!key_stack.back().insert(key).second) failure = "duplicate key \"" + key + "\"";
        if (order != nullptr && depth == 1) {
          order->root.push_back(key);
          in_nested = key == order->nested_key;
        } else if (order != nullptr && depth == 2 && in_nested) {
          order->nested.push_back(key);
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  Json j;
  try {
    j = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false);
  } catch (const std::exception& e) {
    // The callback path may still throw (e.g. bad_alloc, type errors); never let it escape.
    return InvalidArgumentError(std::string(what) + ": invalid JSON (" + e.what() + ")");
  }
  if (!failure.empty()) return InvalidArgumentError(std::string(what) + ": " + failure);
  if (j.is_discarded()) {
    return InvalidArgumentError(std::string(what) + ": invalid JSON or invalid UTF-8");
  }
  return j;
}

Result<uint64_t> GetU64(const Json& v, std::string_view what) {
  if (!v.is_number_unsigned()) {
    return InvalidArgumentError(std::string(what) + ": expected a non-negative integer");
  }
  uint64_t x = v.get<uint64_t>();
  if (x > kMaxJsonInteger) {
    return InvalidArgumentError(std::string(what) + ": integer " + std::to_string(x) +
                                " exceeds 2^48-1");
  }
  return x;
}

Result<std::string> GetString(const Json& v, std::string_view what) {
  if (!v.is_string()) return InvalidArgumentError(std::string(what) + ": expected a string");
  return v.get<std::string>();
}

}  // namespace ctfs::format::internal
