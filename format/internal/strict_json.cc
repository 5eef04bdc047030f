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

// StrictSax builds the tree as nlohmann's own parser does (json_sax_dom_parser) and adds the
// checks: nesting depth, duplicate keys, member order. A SAX handler, not the parser's callback
// mode: after every object that ends, the callback mode scans all members of the enclosing one
// for discarded values, so a header of n tensor entries cost O(n^2) (20,000 entries: 5 s; a
// hostile 100 MB header would have stalled a mount for hours). Returning false from an event
// stops the parse at once.
template <typename JsonT>
class StrictSax {
 public:
  using StringT = typename JsonT::string_t;

  StrictSax(JsonT& root, MemberOrder* order) : dom_(root, /*allow_exceptions_=*/false), order_(order) {}

  const std::string& failure() const { return failure_; }

  bool null() { return Value() && dom_.null(); }
  bool boolean(bool v) { return Value() && dom_.boolean(v); }
  bool number_integer(typename JsonT::number_integer_t v) {
    return Value() && dom_.number_integer(v);
  }
  bool number_unsigned(typename JsonT::number_unsigned_t v) {
    return Value() && dom_.number_unsigned(v);
  }
  // (Text: sax_parse also instantiates the binary readers, which pass a std::string.)
  template <typename Text>
  bool number_float(typename JsonT::number_float_t v, const Text& /*text*/) {
    return Value() && dom_.number_float(v, StringT());
  }
  bool string(StringT& v) { return Value() && dom_.string(v); }
  bool binary(typename JsonT::binary_t& v) { return Value() && dom_.binary(v); }

  bool start_object(std::size_t n) {
    if (!Value()) return false;
    keys_.emplace_back();
    ++open_;
    return dom_.start_object(n);
  }
  bool key(StringT& k) {
    if (!Value()) return false;  // a key sits at the depth of the object's members
    if (!keys_.empty() && !keys_.back().insert(k).second) {
      return Fail("duplicate key \"" + std::string(k.data(), k.size()) + "\"");
    }
    if (order_ != nullptr && open_ == 1) {
      order_->root.emplace_back(k.data(), k.size());
      in_nested_ = std::string_view(k.data(), k.size()) == order_->nested_key;
    } else if (order_ != nullptr && open_ == 2 && in_nested_) {
      order_->nested.emplace_back(k.data(), k.size());
    }
    return dom_.key(k);
  }
  bool end_object() {
    if (!keys_.empty()) keys_.pop_back();
    --open_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (!Value()) return false;
    keys_.emplace_back();  // an array has no keys: a placeholder keeps the stack aligned
    ++open_;
    return dom_.start_array(n);
  }
  bool end_array() {
    if (!keys_.empty()) keys_.pop_back();
    --open_;
    return dom_.end_array();
  }
  template <typename Exception>
  bool parse_error(std::size_t pos, const std::string& token, const Exception& ex) {
    return dom_.parse_error(pos, token, ex);
  }

 private:
  // Value: a value (or a container's start) at the current depth, which is the number of
  // containers open around it (the root is at 0), as the parser's callback counted it.
  bool Value() { return open_ <= kMaxJsonDepth || Fail(TooDeep()); }
  bool Fail(std::string why) {
    if (failure_.empty()) failure_ = std::move(why);
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<JsonT> dom_;
  MemberOrder* order_;
  // Member names seen per open container, in the tree's own allocator (the arena for
  // SecretJson).
  using KeySet = std::set<StringT, std::less<>,
                          typename std::allocator_traits<
                              typename JsonT::allocator_type>::template rebind_alloc<StringT>>;
  std::vector<KeySet> keys_;
  size_t open_ = 0;
  bool in_nested_ = false;  // inside root[order_->nested_key]
  std::string failure_;
};

// ParseStrict holds the checks of both entry points: JsonT is Json or SecretJson, [first,
// last) the text (char or SecretChar iterators). `quote_errors`: whether a message may carry
// the text of an exception from the parser (never for secret documents).
template <typename JsonT, typename Iterator>
Result<JsonT> ParseStrict(std::string_view text, Iterator first, Iterator last,
                          std::string_view what, MemberOrder* order, bool quote_errors) {
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
  JsonT j;
  StrictSax<JsonT> sax(j, order);
  bool parsed = false;
  try {
    parsed = JsonT::sax_parse(first, last, &sax, nlohmann::json::input_format_t::json,
                              /*strict=*/true);
  } catch (const std::exception& e) {
    // Never let anything escape (e.g. bad_alloc).
    return InvalidArgumentError(std::string(what) + ": invalid JSON" +
                                (quote_errors ? std::string(" (") + e.what() + ")" : ""));
  }
  if (!sax.failure().empty()) return InvalidArgumentError(std::string(what) + ": " + sax.failure());
  if (!parsed) return InvalidArgumentError(std::string(what) + ": invalid JSON or invalid UTF-8");
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
