// SPDX-License-Identifier: Apache-2.0
#include "policy/embedded_policy.h"

#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ctfs::policy {
namespace {

constexpr size_t kMaxQuotedBytes = 80;

// Line `line` (1-based) of `text`, without its line break.
std::string_view LineOf(std::string_view text, size_t line) {
  size_t start = 0;
  for (size_t i = 1; i < line && start != std::string_view::npos; ++i) {
    start = text.find('\n', start);
    if (start != std::string_view::npos) ++start;
  }
  if (start == std::string_view::npos || start > text.size()) return {};
  std::string_view rest = text.substr(start);
  rest = rest.substr(0, rest.find('\n'));
  if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
  return rest;
}

// `line N: "<text>"`, escaped and truncated.
std::string QuoteLine(std::string_view text, size_t line) {
  std::string_view src = LineOf(text, line);
  bool cut = src.size() > kMaxQuotedBytes;
  if (cut) src = src.substr(0, kMaxQuotedBytes);
  std::string out = "line " + std::to_string(line) + ": \"";
  for (char c : src) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\t') {
      out += "\\t";
    } else if (b < 0x20 || b >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", b);
      out += buf;
    } else {
      out += c;
    }
  }
  if (cut) out += "...";
  out += '"';
  return out;
}

// A dotted name (package or import path: identifier bytes and dots only, nothing to escape),
// cut like a quoted line so that a reason stays short whatever the module holds.
std::string Clip(std::string_view name) {
  if (name.size() <= kMaxQuotedBytes) return std::string(name);
  return std::string(name.substr(0, kMaxQuotedBytes)) + "...";
}

enum class Tok { kIdent, kAssign, kEq, kLBrace, kRBrace, kSemi, kDot, kNewline, kEnd, kBad };

struct Token {
  Tok kind = Tok::kEnd;
  std::string_view text;
  size_t line = 1;
};

// Lexer: the tokens of the subset. Blanks are spaces, tabs and a CR before an LF (a lone CR is
// an error in the reference's lexer); `#` starts a comment up to the end of the line. Any other
// byte (quotes, digits, operators, control or non-ASCII bytes) is a kBad token.
class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  Token Next() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (c == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') {
        ++pos_;
      } else if (c == '#') {
        size_t nl = text_.find('\n', pos_);
        pos_ = nl == std::string_view::npos ? text_.size() : nl;
      } else {
        break;
      }
    }
    Token t;
    t.line = line_;
    if (pos_ >= text_.size()) return t;
    const size_t start = pos_;
    const char c = text_[pos_++];
    auto is_alpha = [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
    };
    if (is_alpha(c)) {
      while (pos_ < text_.size() &&
             (is_alpha(text_[pos_]) || (text_[pos_] >= '0' && text_[pos_] <= '9'))) {
        ++pos_;
      }
      t.kind = Tok::kIdent;
    } else if (c == '\n') {
      t.kind = Tok::kNewline;
      ++line_;
    } else if (c == ':' && pos_ < text_.size() && text_[pos_] == '=') {
      ++pos_;
      t.kind = Tok::kAssign;
    } else if (c == '=' && !(pos_ < text_.size() && text_[pos_] == '=')) {
      t.kind = Tok::kEq;
    } else if (c == '{') {
      t.kind = Tok::kLBrace;
    } else if (c == '}') {
      t.kind = Tok::kRBrace;
    } else if (c == ';') {
      t.kind = Tok::kSemi;
    } else if (c == '.') {
      t.kind = Tok::kDot;
    } else {
      t.kind = Tok::kBad;
    }
    t.text = text_.substr(start, pos_ - start);
    return t;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t line_ = 1;
};

// One `allow` rule (or the default) as parsed.
struct Rule {
  bool value = true;
  bool holds = true;  // its body holds (no body: true)
  size_t line = 0;
};

// Parser: recursive descent over the subset in embedded_policy.h, then the evaluation.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text), lex_(text) { Advance(); }

  EmbeddedDecision Run() {
    SkipNewlines();
    if (!IsIdent("package")) return Unsupported("expected `package model` first");
    const size_t package_line = cur_.line;
    Advance();
    std::optional<std::string> pkg = ParsePath();
    if (!pkg || !AtEndOfLine()) return Unsupported("expected `package model`");
    if (*pkg != "model") {
      return Deny(QuoteLine(text_, package_line) + ": package " + Clip(*pkg) +
                  " leaves data.model.allow undefined");
    }
    if (auto err = ParseImports()) return *std::move(err);
    std::vector<Rule> defaults;
    std::vector<Rule> rules;
    for (SkipNewlines(); cur_.kind != Tok::kEnd; SkipNewlines()) {
      const bool is_default = IsIdent("default");
      Rule r;
      r.line = cur_.line;
      if (auto err = is_default ? ParseDefault(r) : ParseAllow(r)) return *std::move(err);
      (is_default ? defaults : rules).push_back(r);
    }
    return Evaluate(defaults, rules);
  }

 private:
  void Advance() { cur_ = lex_.Next(); }
  void SkipNewlines() {
    while (cur_.kind == Tok::kNewline) Advance();
  }
  bool IsIdent(std::string_view word) const {
    return cur_.kind == Tok::kIdent && cur_.text == word;
  }
  bool AtEndOfLine() const { return cur_.kind == Tok::kNewline || cur_.kind == Tok::kEnd; }

  EmbeddedDecision Unsupported(std::string_view what) const {
    return {EmbeddedVerdict::kUnsupported,
            QuoteLine(text_, cur_.line) + ": " + std::string(what) +
                " (ctfs decides only constant `package model` modules)"};
  }
  static EmbeddedDecision Deny(std::string reason) {
    return {EmbeddedVerdict::kDeny, std::move(reason)};
  }

  // ident ("." ident)*, joined with dots.
  std::optional<std::string> ParsePath() {
    if (cur_.kind != Tok::kIdent) return std::nullopt;
    std::string path(cur_.text);
    Advance();
    while (cur_.kind == Tok::kDot) {
      Advance();
      if (cur_.kind != Tok::kIdent) return std::nullopt;
      path += '.';
      path += cur_.text;
      Advance();
    }
    return path;
  }

  // `import rego.v1` alone, `import future.keywords` alone, or distinct future.keywords.X
  // imports: the reference rejects a repeated or overlapping import.
  std::optional<EmbeddedDecision> ParseImports() {
    static const std::set<std::string, std::less<>> kKnown = {
        "rego.v1",
        "future.keywords",
        "future.keywords.if",
        "future.keywords.in",
        "future.keywords.contains",
        "future.keywords.every",
    };
    std::set<std::string, std::less<>> seen;
    for (SkipNewlines(); IsIdent("import"); SkipNewlines()) {
      Advance();
      std::optional<std::string> path = ParsePath();
      if (!path || !AtEndOfLine()) return Unsupported("a malformed import");
      if (kKnown.count(*path) == 0) return Unsupported("an import of " + Clip(*path));
      auto whole = [](std::string_view p) { return p == "rego.v1" || p == "future.keywords"; };
      bool overlaps = seen.count(*path) > 0 || (!seen.empty() && whole(*path));
      for (const std::string& s : seen) overlaps = overlaps || whole(s);
      if (overlaps) return Unsupported("an import that repeats or overlaps an earlier one");
      seen.insert(*path);
    }
    return std::nullopt;
  }

  // true / false at the current token.
  std::optional<bool> ParseBool() {
    if (IsIdent("true") || IsIdent("false")) {
      bool v = cur_.text == "true";
      Advance();
      return v;
    }
    return std::nullopt;
  }

  // `default allow (:=|=) B` to the end of the line.
  std::optional<EmbeddedDecision> ParseDefault(Rule& r) {
    Advance();
    if (!IsIdent("allow")) {
      return Unsupported("a default rule other than `default allow := <bool>`");
    }
    Advance();
    if (cur_.kind != Tok::kAssign && cur_.kind != Tok::kEq) {
      return Unsupported("expected `default allow := true|false`");
    }
    Advance();
    std::optional<bool> v = ParseBool();
    if (!v) return Unsupported("a default value other than true or false");
    if (!AtEndOfLine()) return Unsupported("unexpected text after the default rule");
    r.value = *v;
    return std::nullopt;
  }

  // `allow [(:=|=) B] [if BODY]` (at least one of the two) to the end of the line.
  std::optional<EmbeddedDecision> ParseAllow(Rule& r) {
    if (!IsIdent("allow")) return Unsupported("a rule other than `allow` or `default allow`");
    Advance();
    if (cur_.kind == Tok::kLBrace) {  // regorus 0.4 parses Rego v1 only
      return Deny(QuoteLine(text_, cur_.line) +
                  ": a rule body without `if` (pre-v1 Rego) is a syntax error to the reference");
    }
    bool has_value = false;
    if (cur_.kind == Tok::kAssign || cur_.kind == Tok::kEq) {
      Advance();
      std::optional<bool> v = ParseBool();
      if (!v) return Unsupported("a value other than true or false");
      r.value = *v;
      has_value = true;
    }
    if (IsIdent("if")) {
      Advance();
      if (auto err = ParseBody(r)) return err;
    } else if (!has_value) {
      return Unsupported("expected `allow := <bool>` or `allow if <body>`");
    }
    if (!AtEndOfLine()) return Unsupported("unexpected text in the rule");
    return std::nullopt;
  }

  // BODY: one literal, or `{` literals separated by `;` or newlines `}`; holds iff all true.
  std::optional<EmbeddedDecision> ParseBody(Rule& r) {
    if (cur_.kind != Tok::kLBrace) {
      std::optional<bool> v = ParseBool();
      if (!v) return Unsupported("a rule body other than the constants true and false");
      r.holds = *v;
      return std::nullopt;
    }
    Advance();
    SkipNewlines();
    for (bool first = true;; first = false) {
      std::optional<bool> v = ParseBool();
      if (!v) {
        if (cur_.kind == Tok::kRBrace) {
          return Unsupported(first ? "an empty rule body" : "a `;` with no literal after it");
        }
        return Unsupported("a rule body other than the constants true and false");
      }
      r.holds = r.holds && *v;
      const bool newline = cur_.kind == Tok::kNewline;
      SkipNewlines();
      const bool semi = cur_.kind == Tok::kSemi;
      if (semi) {
        Advance();
        SkipNewlines();
      }
      if (cur_.kind == Tok::kRBrace && !semi) {
        Advance();
        return std::nullopt;
      }
      if (!newline && !semi) return Unsupported("expected `;`, a newline or `}` in the body");
    }
  }

  EmbeddedDecision Evaluate(const std::vector<Rule>& defaults, const std::vector<Rule>& rules) {
    if (defaults.size() > 1) {
      return {EmbeddedVerdict::kUnsupported,
              QuoteLine(text_, defaults[1].line) + ": a second default rule"};
    }
    const Rule* first_true = nullptr;
    const Rule* first_false = nullptr;
    for (const Rule& r : rules) {
      if (!r.holds) continue;
      const Rule*& slot = r.value ? first_true : first_false;
      if (slot == nullptr) slot = &r;
    }
    if (first_true != nullptr && first_false != nullptr) {
      return Deny("rules conflict: " + QuoteLine(text_, first_true->line) + " and " +
                  QuoteLine(text_, first_false->line));
    }
    if (first_true != nullptr) return {EmbeddedVerdict::kAllow, ""};
    if (first_false != nullptr) {
      return Deny(QuoteLine(text_, first_false->line) + " makes data.model.allow false");
    }
    if (!defaults.empty()) {
      if (defaults[0].value) return {EmbeddedVerdict::kAllow, ""};
      return Deny(QuoteLine(text_, defaults[0].line) + " and no other rule holds");
    }
    if (rules.empty()) return Deny("no rule defines data.model.allow (undefined)");
    return Deny(QuoteLine(text_, rules[0].line) +
                ": no rule body holds and there is no default, so data.model.allow is undefined");
  }

  std::string_view text_;
  Lexer lex_;
  Token cur_;
};

// The first line of `text` with anything but blanks on it, quoted.
std::string FirstLine(std::string_view text) {
  size_t line = 1;
  for (size_t pos = 0; pos < text.size(); ++line) {
    size_t nl = text.find('\n', pos);
    std::string_view l = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    if (l.find_first_not_of(" \t\r") != std::string_view::npos) return QuoteLine(text, line);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return "(empty module)";
}

}  // namespace

EmbeddedDecision DecideEmbeddedPolicy(std::string_view local_rego) {
  return Parser(local_rego).Run();
}

Status EvaluateEmbeddedPolicy(std::string_view local_rego) {
  EmbeddedDecision d = DecideEmbeddedPolicy(local_rego);
  switch (d.verdict) {
    case EmbeddedVerdict::kAllow:
      return Status::Ok();
    case EmbeddedVerdict::kDeny:
      return PermissionDeniedError("the file's embedded policy denies access (" + d.reason + ")");
    case EmbeddedVerdict::kUnsupported:
      break;
  }
  return PermissionDeniedError("unsupported embedded Rego policy, refusing to open: " + d.reason +
                               "; `embedded_policy: operator` in the mount config lets the "
                               "operator's rules decide instead");
}

EmbeddedPolicyOutcome ApplyEmbeddedPolicy(std::string_view local_rego, bool operator_decides) {
  EmbeddedPolicyOutcome out;
  out.status = EvaluateEmbeddedPolicy(local_rego);
  if (operator_decides && !out.status.ok()) {
    out.overridden = true;
    out.note = "opened although " + out.status.message() + "; module starts " +
               FirstLine(local_rego) + " (embedded_policy: operator)";
    out.status = Status::Ok();
  }
  return out;
}

}  // namespace ctfs::policy
