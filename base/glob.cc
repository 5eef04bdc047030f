// SPDX-License-Identifier: Apache-2.0
// The compiled form (program_) is the pattern itself, validated, with the leading '/'s of a
// kPath pattern removed: Match walks it element by element (a literal byte, `\x`, `?`, `[..]`,
// `*`) without allocating. Within one run of text (a kName text, or one kPath segment) stars
// backtrack with the classic two-pointer scheme: only the latest `*` is ever resumed, so a
// match costs at most O(pattern * text) steps whatever the pattern ("*a*a*a*b" included). A
// kPath match applies the same scheme one level up, segment by segment, with `**` as the star
// and a segment glob as the one-unit element, so it is bounded by
// O(pattern segments * text segments) segment matches.
//
// kPath splits the pattern at '/' bytes that are neither escaped nor inside a set; an escaped
// '/' or a '/' in a set is an ordinary character, which can never match (segments hold no '/').
#include "base/glob.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ctfs {
namespace {

constexpr size_t kMaxPatternLen = 4096;
constexpr size_t kNone = std::string_view::npos;

// The pattern, printable, for error messages (control and non-ASCII bytes as \xNN).
std::string Printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Status PatternError(std::string_view pattern, size_t offset, std::string_view what) {
  return InvalidArgumentError("glob \"" + Printable(pattern) + "\": " + std::string(what) +
                              " at offset " + std::to_string(offset));
}

// One set "[...]" starting at pat[open] == '['. Returns the offset just past its ']' or kNone if
// it is not closed; empty is set when ']' follows the '[' (and its negation) at once.
size_t SetEnd(std::string_view pat, size_t open, bool* empty) {
  size_t i = open + 1;
  if (i < pat.size() && (pat[i] == '!' || pat[i] == '^')) ++i;
  if (empty != nullptr) *empty = i < pat.size() && pat[i] == ']';
  while (i < pat.size()) {
    if (pat[i] == ']') return i + 1;
    if (pat[i] == '\\') ++i;  // the escaped byte is a member, ']' included
    ++i;
  }
  return kNone;
}

// The offset just past the element (not `*`) at pat[p]. REQUIRES: a validated pattern.
size_t ElementEnd(std::string_view pat, size_t p) {
  if (pat[p] == '\\') return p + 2;
  if (pat[p] == '[') return SetEnd(pat, p, nullptr);
  return p + 1;
}

// Whether byte c is in the set pat[open, end) ("[...]", validated).
bool SetMatches(std::string_view pat, size_t open, size_t end, unsigned char c) {
  size_t i = open + 1;
  bool negate = false;
  if (pat[i] == '!' || pat[i] == '^') {
    negate = true;
    ++i;
  }
  const size_t close = end - 1;
  bool in = false;
  while (i < close) {
    if (pat[i] == '\\') ++i;
    unsigned char lo = static_cast<unsigned char>(pat[i]);
    ++i;
    unsigned char hi = lo;
    if (i + 1 < close && pat[i] == '-') {  // a range; a '-' before the ']' is a member
      ++i;
      if (pat[i] == '\\') ++i;
      hi = static_cast<unsigned char>(pat[i]);
      ++i;
    }
    if (c >= lo && c <= hi) in = true;
  }
  return in != negate;
}

// Whether the element at pat[p, end) matches byte c.
bool ElementMatches(std::string_view pat, size_t p, size_t end, unsigned char c) {
  switch (pat[p]) {
    case '?':
      return true;
    case '\\':
      return static_cast<unsigned char>(pat[p + 1]) == c;
    case '[':
      return SetMatches(pat, p, end, c);
    default:
      return static_cast<unsigned char>(pat[p]) == c;
  }
}

// Matches a run of text against a pattern of elements and stars (no separators): `*` may take
// any bytes of the text. Two-pointer backtracking: only the latest star is resumed.
bool MatchRun(std::string_view pat, std::string_view text) {
  size_t p = 0, t = 0;
  size_t star_p = kNone, star_t = 0;
  while (t < text.size()) {
    if (p < pat.size()) {
      if (pat[p] == '*') {
        while (p < pat.size() && pat[p] == '*') ++p;
        star_p = p;
        star_t = t;
        continue;
      }
      const size_t end = ElementEnd(pat, p);
      if (ElementMatches(pat, p, end, static_cast<unsigned char>(text[t]))) {
        p = end;
        ++t;
        continue;
      }
    }
    if (star_p == kNone) return false;
    t = ++star_t;
    p = star_p;
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

// The end of the pattern segment starting at p: the next separator '/' (not escaped, not in a
// set) or the end of the pattern.
size_t PatternSegmentEnd(std::string_view pat, size_t p) {
  while (p < pat.size() && pat[p] != '/') {
    p = pat[p] == '*' ? p + 1 : ElementEnd(pat, p);
  }
  return p;
}

size_t TextSegmentEnd(std::string_view text, size_t t) {
  const size_t slash = text.find('/', t);
  return slash == kNone ? text.size() : slash;
}

// The start of the segment after the one ending at end, or kNone past the last one.
size_t NextSegment(std::string_view s, size_t end) { return end < s.size() ? end + 1 : kNone; }

std::string_view StripLeadingSlashes(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  return s;
}

// Matches path segments: `**` takes zero or more whole text segments, any other pattern segment
// exactly one (MatchRun). Positions are segment start offsets; kNone is "past the last segment"
// (an empty string has one empty segment).
bool MatchSegments(std::string_view pat, std::string_view text) {
  size_t p = 0, t = 0;
  bool has_star = false;
  size_t star_p = kNone, star_t = 0;  // after the latest `**`; star_p may be kNone (last)
  while (t != kNone) {
    if (p != kNone) {
      const size_t pend = PatternSegmentEnd(pat, p);
      const std::string_view pseg = pat.substr(p, pend - p);
      if (pseg == "**") {
        has_star = true;
        star_p = NextSegment(pat, pend);
        star_t = t;
        p = star_p;
        continue;
      }
      const size_t tend = TextSegmentEnd(text, t);
      if (MatchRun(pseg, text.substr(t, tend - t))) {
        p = NextSegment(pat, pend);
        t = NextSegment(text, tend);
        continue;
      }
    }
    if (!has_star) return false;
    star_t = NextSegment(text, TextSegmentEnd(text, star_t));
    t = star_t;
    p = star_p;
  }
  // Only `**` segments may remain: each matches zero segments.
  while (p != kNone) {
    const size_t pend = PatternSegmentEnd(pat, p);
    if (pat.substr(p, pend - p) != "**") return false;
    p = NextSegment(pat, pend);
  }
  return true;
}

}  // namespace

Result<Glob> Glob::Compile(std::string_view pattern, Kind kind) {
  if (pattern.empty()) return PatternError(pattern, 0, "empty pattern");
  if (pattern.size() > kMaxPatternLen) {
    return PatternError(pattern.substr(0, 64), kMaxPatternLen,
                        "pattern longer than " + std::to_string(kMaxPatternLen) + " bytes");
  }
  if (size_t nul = pattern.find('\0'); nul != kNone) {
    return PatternError(pattern, nul, "NUL byte");
  }
  bool literal = true;
  bool has_separator = false;
  for (size_t i = 0; i < pattern.size();) {
    const char c = pattern[i];
    if (c == '\\') {
      literal = false;
      if (i + 1 == pattern.size()) return PatternError(pattern, i, "trailing '\\'");
      i += 2;
    } else if (c == '[') {
      literal = false;
      bool empty = false;
      const size_t end = SetEnd(pattern, i, &empty);
      if (empty) return PatternError(pattern, i, "empty set '[]'");
      if (end == kNone) return PatternError(pattern, i, "unclosed '['");
      i = end;
    } else {
      if (c == '*' || c == '?') literal = false;
      if (c == '/') has_separator = true;
      ++i;
    }
  }
  Glob glob;
  glob.pattern_ = std::string(pattern);
  glob.kind_ = kind;
  glob.literal_ = literal;
  if (kind == Kind::kName) {
    glob.program_ = glob.pattern_;
    return glob;
  }
  // kPath: `**` only as a whole segment.
  const size_t lead = pattern.size() - StripLeadingSlashes(pattern).size();
  const std::string_view prog = pattern.substr(lead);
  for (size_t p = 0; p != kNone;) {
    const size_t pend = PatternSegmentEnd(prog, p);
    const std::string_view seg = prog.substr(p, pend - p);
    if (seg != "**") {
      for (size_t i = 0; i < seg.size();) {
        if (seg[i] == '*' && i + 1 < seg.size() && seg[i + 1] == '*') {
          return PatternError(pattern, lead + p + i, "'**' not a whole path segment");
        }
        i = seg[i] == '*' ? i + 1 : ElementEnd(seg, i);
      }
    }
    p = NextSegment(prog, pend);
  }
  glob.program_ = std::string(prog);
  glob.basename_only_ = !has_separator;
  return glob;
}

bool Glob::Match(std::string_view text) const {
  if (kind_ == Kind::kName) {
    return literal_ ? text == program_ : MatchRun(program_, text);
  }
  text = StripLeadingSlashes(text);
  if (basename_only_) {
    const size_t slash = text.rfind('/');
    if (slash != kNone) text.remove_prefix(slash + 1);
  }
  if (literal_) return text == program_;
  return MatchSegments(program_, text);
}

}  // namespace ctfs
