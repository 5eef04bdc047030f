// SPDX-License-Identifier: Apache-2.0
#include "format/internal/strict_json.h"

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "format/internal/secret_text_iterator.h"
#include "format/limits.h"

namespace ctfs::format::internal {
namespace {

// DeepBracketAt returns the offset of the first '[' or '{' (outside strings) that opens a
// container the depth check below refuses (the parser reports the nesting of a container's
// start as the number of containers around it: the (kMaxJsonDepth + 2)-th level is the first
// one over), or npos. This runs before the parser because the parser's callback only records
// the failure: the parser builds the whole nesting anyway, tens of bytes of DOM per level, so
// a header of 100 MB of '[' (within kMaxHeaderBytes) would cost gigabytes and minutes before
// being refused. For valid JSON the count is exact, so nothing the parser accepts is refused.
size_t DeepBracketAt(std::string_view text) {
  size_t open = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++open > kMaxJsonDepth + 1) return i;
    } else if ((c == ']' || c == '}') && open > 0) {
      --open;
    }
  }
  return std::string_view::npos;
}

std::string TooDeep() { return "JSON nested deeper than " + std::to_string(kMaxJsonDepth); }

// ParseStrict holds the checks of both entry points: JsonT is Json or SecretJson, [first,
// last) the text (char or SecretChar iterators). `quote_errors`: whether a message may carry
// the text of an exception from the parser (never for secret documents).
template <typename JsonT, typename Iterator>
Result<JsonT> ParseStrict(std::string_view text, Iterator first, Iterator last,
                          std::string_view what, MemberOrder* order, bool quote_errors) {
  using StringT = typename JsonT::string_t;
  // nlohmann's lexer treats a NUL byte as the end of input, so "{}\0anything" would parse as
  // "{}" (a polyglot). JSON never allows a raw NUL (inside strings it must be escaped), so
  // reject it up front, as serde_json does.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return InvalidArgumentError(std::string(what) + ": invalid JSON (NUL byte at offset " +
                                std::to_string(nul) + ")");
  }
  if (size_t deep = DeepBracketAt(text); deep != std::string_view::npos) {
    return InvalidArgumentError(std::string(what) + ": " + TooDeep() + " (at offset " +
                                std::to_string(deep) + ")");
  }
  // Member names seen per open object, in the tree's own allocator (the arena for SecretJson).
  using KeySet = std::set<StringT, std::less<>,
                          typename std::allocator_traits<
                              typename JsonT::allocator_type>::template rebind_alloc<StringT>>;
  std::vector<KeySet> key_stack;
  std::string failure;
  bool in_nested = false;  // inside root[order->nested_key]
  auto callback = [&](int depth, typename JsonT::parse_event_t event, JsonT& parsed) -> bool {
    if (!failure.empty()) return true;
    if (static_cast<size_t>(depth) > kMaxJsonDepth) {
      failure = TooDeep();
      return true;
    }
    switch (event) {
      case JsonT::parse_event_t::object_start:
        key_stack.emplace_back();
        break;
      case JsonT::parse_event_t::object_end:
        if (!key_stack.empty()) key_stack.pop_back();
        break;
      case JsonT::parse_event_t::key: {
        if (key_stack.empty()) break;
        const StringT& key = parsed.template get_ref<const StringT&>();
        if (!key_stack.back().insert(key).second) {
          failure = "duplicate key \"" + std::string(key.data(), key.size()) + "\"";
        }
        if (order != nullptr && depth == 1) {
          order->root.emplace_back(key.data(), key.size());
          in_nested = std::string_view(key.data(), key.size()) == order->nested_key;
        } else if (order != nullptr && depth == 2 && in_nested) {
          order->nested.emplace_back(key.data(), key.size());
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  JsonT j;
  try {
    j = JsonT::parse(first, last, callback, /*allow_exceptions=*/false);
  } catch (const std::exception& e) {
    // The callback path may still throw (e.g. bad_alloc, type errors); never let it escape.
    return InvalidArgumentError(std::string(what) + ": invalid JSON" +
                                (quote_errors ? std::string(" (") + e.what() + ")" : ""));
  }
  if (!failure.empty()) return InvalidArgumentError(std::string(what) + ": " + failure);
  if (j.is_discarded()) {
    return InvalidArgumentError(std::string(what) + ": invalid JSON or invalid UTF-8");
  }
  return j;
}

template <typename JsonT>
Result<std::string> GetStringOf(const JsonT& v, std::string_view what) {
  if (!v.is_string()) return InvalidArgumentError(std::string(what) + ": expected a string");
  const auto& s = v.template get_ref<const typename JsonT::string_t&>();
  return std::string(s.data(), s.size());
}

}  // namespace

Result<Json> ParseStrictJson(std::string_view text, std::string_view what, MemberOrder* order) {
  return ParseStrict<Json>(text, text.begin(), text.end(), what, order, /*quote_errors=*/true);
}

Result<SecretJson> ParseStrictSecretJson(std::string_view text, std::string_view what) {
  return ParseStrict<SecretJson>(text, SecretTextIterator(text.data()),
                                 SecretTextIterator(text.data() + text.size()), what,
                                 /*order=*/nullptr, /*quote_errors=*/false);
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

Result<std::string> GetString(const Json& v, std::string_view what) { return GetStringOf(v, what); }

Result<std::string> GetString(const SecretJson& v, std::string_view what) {
  return GetStringOf(v, what);
}

}  // namespace ctfs::format::internal
