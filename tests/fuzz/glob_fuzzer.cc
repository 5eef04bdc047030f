// SPDX-License-Identifier: Apache-2.0
// Fuzzes base/glob (shell-style patterns). Input: byte 0 picks the kind (bit 0: kPath), the rest
// is PATTERN NUL TEXT (no NUL: the whole rest is the pattern, the text is empty). Lengths are
// capped (pattern 64, text 256 bytes) so the reference below stays fast. Oracles:
//   * Compile accepts exactly the patterns that a reference validator accepts (the errors of
//     glob.h: empty, unclosed '[', empty set, trailing '\', `**` not a whole kPath segment);
//     errors are InvalidArgument naming the pattern and an offset;
//   * an accepted Glob keeps its pattern and kind; literal() iff no `*?[\`;
//   * Match(text) equals an independent reference matcher of the semantics in glob.h: a dynamic
//     program over the whole pattern and text (no greedy backtracking), segment lists for kPath
//     (`**` takes zero or more whole segments, '/' never matched by `*`, `?` or a set, a pattern
//     without '/' matches the base name, leading '/'s of pattern and text ignored).
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/glob.h"
#include "tests/fuzz/fuzz_util.h"

namespace ctfs::fuzz {
namespace {

constexpr size_t kMaxPattern = 64;
constexpr size_t kMaxText = 256;

// One element of a pattern: a star, or a byte class (a literal, `?` or a set).
struct Elem {
  bool star = false;
  std::array<bool, 256> in{};  // the bytes this element matches (not a star)
};

// A pattern segment: its elements, and whether it is the kPath `**`.
struct Segment {
  std::vector<Elem> elems;
  bool globstar = false;
};

// Parses `pat` into segments (one for kName; split at unescaped '/' outside sets for kPath).
// nullopt: the pattern is invalid per glob.h (an empty one too, unless allow_empty).
std::optional<std::vector<Segment>> ParsePattern(std::string_view pat, bool path,
                                                 bool allow_empty = false) {
  if ((pat.empty() && !allow_empty) || pat.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  std::vector<Segment> segs(1);
  std::vector<std::string> raw(1);  // each segment's source text, to recognise `**`
  size_t i = 0;
  while (i < pat.size()) {
    const char c = pat[i];
    Elem e;
    const size_t start = i;
    if (c == '*') {
      e.star = true;
      ++i;
    } else if (c == '?') {
      e.in.fill(true);
      ++i;
    } else if (c == '\\') {
      if (i + 1 >= pat.size()) return std::nullopt;
      e.in[static_cast<uint8_t>(pat[i + 1])] = true;
      i += 2;
    } else if (c == '[') {
      size_t j = i + 1;
      bool negate = false;
      if (j < pat.size() && (pat[j] == '!' || pat[j] == '^')) {
        negate = true;
        ++j;
      }
      if (j < pat.size() && pat[j] == ']') return std::nullopt;  // empty set
      // Members: a byte or `\x`, optionally `-` and a second one (a range) unless the `-` is
      // right before the closing ']'.
      std::array<bool, 256> members{};
      bool closed = false;
      while (j < pat.size()) {
        if (pat[j] == ']') {
          closed = true;
          ++j;
          break;
        }
        auto member = [&](size_t& k) -> std::optional<uint8_t> {
          if (pat[k] == '\\') {
            if (k + 1 >= pat.size()) return std::nullopt;
            ++k;
          }
          return static_cast<uint8_t>(pat[k++]);
        };
        std::optional<uint8_t> lo = member(j);
        if (!lo) return std::nullopt;
        uint8_t hi = *lo;
        if (j + 1 < pat.size() && pat[j] == '-' && pat[j + 1] != ']') {
          ++j;
          std::optional<uint8_t> h = member(j);
          if (!h) return std::nullopt;
          hi = *h;
        }
        for (int b = *lo; b <= hi; ++b) members[b] = true;
      }
      if (!closed) return std::nullopt;
      for (int b = 0; b < 256; ++b) e.in[b] = members[b] != negate;
      i = j;
    } else if (c == '/' && path) {
      segs.emplace_back();
      raw.emplace_back();
      ++i;
      continue;
    } else {
      e.in[static_cast<uint8_t>(c)] = true;
      ++i;
    }
    if (path) e.in['/'] = false;  // nothing but a separator crosses '/' in a path
    segs.back().elems.push_back(e);
    raw.back() += pat.substr(start, i - start);
  }
  if (path) {
    for (size_t s = 0; s < segs.size(); ++s) {
      if (raw[s] == "**") {
        segs[s].globstar = true;
      } else {
        for (size_t k = 0; k + 1 < segs[s].elems.size(); ++k) {
          if (segs[s].elems[k].star && segs[s].elems[k + 1].star) return std::nullopt;
        }
      }
    }
  }
  return segs;
}

// Elements against bytes: the textbook dynamic program (dp[i][j]: elems[i..] match text[j..]).
bool MatchElems(const std::vector<Elem>& elems, std::string_view text) {
  const size_t n = elems.size(), m = text.size();
  std::vector<std::vector<char>> dp(n + 1, std::vector<char>(m + 1, 0));
  dp[n][m] = 1;
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m + 1; j-- > 0;) {
      if (elems[i].star) {
        dp[i][j] = dp[i + 1][j] || (j < m && dp[i][j + 1]);
      } else {
        dp[i][j] = j < m && elems[i].in[static_cast<uint8_t>(text[j])] && dp[i + 1][j + 1];
      }
    }
  }
  return dp[0][0] != 0;
}

std::vector<std::string_view> SplitText(std::string_view text) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t slash = text.find('/');
    out.push_back(text.substr(0, slash));
    if (slash == std::string_view::npos) return out;
    text.remove_prefix(slash + 1);
  }
}

// Segments against text segments: `**` takes zero or more of them, any other segment one.
bool MatchPathSegments(const std::vector<Segment>& segs,
                       const std::vector<std::string_view>& text) {
  const size_t n = segs.size(), m = text.size();
  std::vector<std::vector<char>> dp(n + 1, std::vector<char>(m + 1, 0));
  dp[n][m] = 1;
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m + 1; j-- > 0;) {
      if (segs[i].globstar) {
        dp[i][j] = dp[i + 1][j] || (j < m && dp[i][j + 1]);
      } else {
        dp[i][j] = j < m && dp[i + 1][j + 1] && MatchElems(segs[i].elems, text[j]);
      }
    }
  }
  return dp[0][0] != 0;
}

std::string_view StripSlashes(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  return s;
}

// The reference: nullopt if the pattern is invalid, else whether it matches.
std::optional<bool> ReferenceMatch(std::string_view pat, bool path, std::string_view text) {
  std::optional<std::vector<Segment>> all = ParsePattern(pat, path);
  if (!all) return std::nullopt;
  if (!path) return MatchElems((*all)[0].elems, text);
  // A '/' anywhere in the pattern (not escaped, not in a set: a separator) anchors it; the
  // leading ones only anchor, they name no segment.
  const bool anchored = all->size() > 1;
  // "/" alone is the root: one empty segment, matching "" and "/".
  std::optional<std::vector<Segment>> segs = ParsePattern(StripSlashes(pat), true, true);
  text = StripSlashes(text);
  if (!anchored) {
    const size_t slash = text.rfind('/');
    if (slash != std::string_view::npos) text.remove_prefix(slash + 1);
  }
  return MatchPathSegments(*segs, SplitText(text));
}

std::string Show(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

void FuzzGlob(ByteSpan input) {
  if (input.empty()) return;
  const bool path = (input[0] & 1) != 0;
  std::string_view rest = AsStringView(input.subspan(1));
  const size_t nul = rest.find('\0');
  std::string_view pat = rest.substr(0, nul);
  std::string_view text = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  if (pat.size() > kMaxPattern) pat = pat.substr(0, kMaxPattern);
  if (text.size() > kMaxText) text = text.substr(0, kMaxText);
  const Glob::Kind kind = path ? Glob::Kind::kPath : Glob::Kind::kName;
  const std::string what = std::string(path ? "kPath" : "kName") + " pattern \"" + Show(pat) +
                           "\" text \"" + Show(text) + "\"";

  Result<Glob> glob = Glob::Compile(pat, kind);
  const std::optional<bool> expected = ReferenceMatch(pat, path, text);
  if (!glob.ok()) {
    FUZZ_CHECK(!expected.has_value(),
               "Compile rejects a valid " + what + ": " + glob.status().ToString());
    const std::string& m = glob.status().message();
    FUZZ_CHECK(glob.status().code() == StatusCode::kInvalidArgument && m.rfind("glob \"", 0) == 0 &&
                   m.find(" at offset ") != std::string::npos,
               "error: " + glob.status().ToString());
    return;
  }
  FUZZ_CHECK(expected.has_value(), "Compile accepts an invalid " + what);
  FUZZ_CHECK(glob->pattern() == pat && glob->kind() == kind, "pattern or kind changed");
  FUZZ_CHECK(glob->literal() == (pat.find_first_of("*?[\\") == std::string_view::npos),
             "literal() wrong for " + what);
  const bool got = glob->Match(text);
  FUZZ_CHECK(got == *expected, "Match " + what + ": " + (got ? "true" : "false") +
                                   ", the reference says " + (*expected ? "true" : "false"));
}

}  // namespace
}  // namespace ctfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctfs::fuzz::FuzzGlob(ctfs::ByteSpan(data, size));
  return 0;
}
