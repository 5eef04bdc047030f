// SPDX-License-Identifier: Apache-2.0
// Typed scalars and lists of a mount config (config/config_parser.h).
#include "config/config_parser.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>

#include "config/rfc3339.h"

namespace ctfs::config::internal {

// Quote renders user text for a message: at most 80 bytes, control bytes escaped.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 80) out += "...";
  return out + "\"";
}

std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return Quote(n.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}

std::string Join(const std::vector<std::string_view>& v) {
  std::string out;
  for (std::string_view s : v) out += (out.empty() ? "" : ", ") + std::string(s);
  return out;
}

Status Parser::CheckTag(const YAML::Node& n, const YAML::Mark& fallback) const {
  const std::string& tag = n.Tag();
  // "?": no tag (plain), "!": quoted scalar, "": null. Explicit tags would only change how a
  // scalar is typed, which this schema decides itself.
  if (tag.empty() || tag == "?" || tag == "!") return Status::Ok();
  return Error(n.IsNull() ? fallback : n.Mark(),
               "YAML tags are not supported here (" + Quote(tag) + "): remove the tag");
}

Result<std::vector<Entry>> Parser::Entries(const YAML::Node& map, const YAML::Mark& where,
                                           const std::string& prefix, const std::string& what,
                                           const std::vector<std::string_view>& known) const {
  CTFS_RETURN_IF_ERROR(CheckTag(map, where));
  if (!map.IsMap()) {
    return Error(map.IsNull() ? where : map.Mark(),
                 what + ": expected a mapping (key: value), got " + Describe(map));
  }
  std::vector<Entry> out;
  std::map<std::string, int> seen;  // key -> line (1-based)
  for (auto it = map.begin(); it != map.end(); ++it) {
    // A copy, not a reference: the iterator's operator-> hands out a temporary proxy, so a
    // reference to its member dangles at the end of this statement.
    const YAML::Node k = it->first;
    CTFS_RETURN_IF_ERROR(CheckTag(k, k.Mark()));
    if (!k.IsScalar()) {
      return Error(k.IsNull() ? where : k.Mark(),
                   what + ": keys must be plain names, got " + Describe(k));
    }
    const std::string key = k.Scalar();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Error(k.Mark(),
                   "unknown key " + Quote(key) + " in " + what + " (known keys: " + Join(known) +
                       ")");
    }
    auto [first, inserted] = seen.emplace(key, k.Mark().line + 1);
    if (!inserted) {
      return Error(k.Mark(), "duplicate key " + Quote(key) + " in " + what +
                                 " (first given on line " + std::to_string(first->second) + ")");
    }
    out.push_back({key, prefix.empty() ? key : prefix + "." + key, k.Mark(), it->second});
  }
  return out;
}

Result<std::string> Parser::String(const Entry& e) const {
  CTFS_RETURN_IF_ERROR(CheckTag(e.value, e.key_mark));
  if (!e.value.IsScalar()) {
    return Error(ValueMark(e), e.name + ": expected a string, got " + Describe(e.value));
  }
  const std::string& s = e.value.Scalar();
  if (s.empty()) return Error(ValueMark(e), e.name + ": must not be empty");
  if (s.find('\0') != std::string::npos) {
    return Error(ValueMark(e), e.name + ": contains a NUL byte");
  }
  return s;
}

Result<std::string> Parser::Path(const Entry& e) const {
  CTFS_ASSIGN_OR_RETURN(std::string s, String(e));
  std::filesystem::path p(s);
  if (p.is_relative()) p = base_dir_ / p;
  return p.lexically_normal().string();
}

Result<bool> Parser::Bool(const Entry& e) const {
  CTFS_RETURN_IF_ERROR(CheckTag(e.value, e.key_mark));
  if (e.value.IsScalar() && e.value.Tag() != "!") {  // a quoted "true" is a string
    const std::string& s = e.value.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  return Error(ValueMark(e), e.name + ": expected true or false, got " + Describe(e.value));
}

std::optional<uint64_t> Decimal(std::string_view s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return UINT64_MAX;  // too many digits
  return v;
}

Result<uint64_t> Parser::Unsigned(const Entry& e, uint64_t lo, uint64_t hi) const {
  CTFS_RETURN_IF_ERROR(CheckTag(e.value, e.key_mark));
  const std::string range = std::to_string(lo) + " to " + std::to_string(hi);
  if (e.value.IsScalar() && e.value.Tag() != "!") {  // a quoted "5" is a string
    if (std::optional<uint64_t> v = Decimal(e.value.Scalar())) {
      if (*v >= lo && *v <= hi) return *v;
      return Error(ValueMark(e),
                   e.name + ": " + Quote(e.value.Scalar()) + " is out of range (" + range + ")");
    }
  }
  return Error(ValueMark(e),
               e.name + ": expected a whole number from " + range + ", got " + Describe(e.value));
}

Result<std::string> Parser::OneOf(const Entry& e,
                                  const std::vector<std::string_view>& values) const {
  CTFS_RETURN_IF_ERROR(CheckTag(e.value, e.key_mark));
  if (e.value.IsScalar() &&
      std::find(values.begin(), values.end(), e.value.Scalar()) != values.end()) {
    return e.value.Scalar();
  }
  return Error(ValueMark(e), e.name + ": expected one of " + Join(values) + ", got " +
                                 Describe(e.value));
}

// List: a list of strings, or one string standing for a list of one ("group: mlops").
Result<std::vector<Item>> Parser::List(const Entry& e) const {
  CTFS_RETURN_IF_ERROR(CheckTag(e.value, e.key_mark));
  std::vector<Item> out;
  if (e.value.IsScalar()) {
    CTFS_ASSIGN_OR_RETURN(std::string s, String(e));
    out.push_back({std::move(s), e.value.Mark()});
    return out;
  }
  if (!e.value.IsSequence()) {
    return Error(ValueMark(e),
                 e.name + ": expected a string or a list of strings, got " + Describe(e.value));
  }
  if (e.value.size() == 0) {
    return Error(ValueMark(e), e.name + ": empty list (leave the key out to match anything)");
  }
  size_t i = 0;
  for (auto it = e.value.begin(); it != e.value.end(); ++it, ++i) {
    Entry elem{e.key, e.name + "[" + std::to_string(i) + "]", it->Mark(), *it};
    if (it->IsNull()) elem.key_mark = e.value.Mark();
    CTFS_ASSIGN_OR_RETURN(std::string s, String(elem));
    out.push_back({std::move(s), ValueMark(elem)});
  }
  return out;
}

Result<std::vector<std::string>> Parser::Globs(const Entry& e, Glob::Kind kind) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<Item> items, List(e));
  std::vector<std::string> out;
  for (Item& item : items) {
    Result<Glob> g = Glob::Compile(item.text, kind);
    if (!g.ok()) return Error(item.mark, e.name + ": bad pattern: " + g.status().message());
    out.push_back(std::move(item.text));
  }
  return out;
}

// Hex: hex digests (exe_sha256, machine_id) of exactly `digits` digits, stored lowercase.
Result<std::vector<std::string>> Parser::Hex(const Entry& e, size_t digits) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<Item> items, List(e));
  std::vector<std::string> out;
  for (Item& item : items) {
    std::string s = item.text;
    bool ok = s.size() == digits;
    for (char& c : s) {
      if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) ok = false;
    }
    if (!ok) {
      return Error(item.mark, e.name + ": expected " + std::to_string(digits) +
                                  " hex digits, got " + Quote(item.text));
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<int64_t> Parser::Time(const Entry& e) const {
  CTFS_ASSIGN_OR_RETURN(std::string s, String(e));
  std::optional<int64_t> t = ParseRfc3339(s);
  if (!t) {
    return Error(ValueMark(e), e.name + ": expected an RFC 3339 time with a zone, e.g. "
                               "2027-06-30T00:00:00Z or 2027-06-30T02:00:00+02:00, got " +
                                   Quote(s));
  }
  return *t;
}

}  // namespace ctfs::config::internal
