// SPDX-License-Identifier: Apache-2.0
// The embedded-policy subset, case by case. The expected verdicts of kAllow/kDeny rows are what
// cryptotensors 0.2.3 (regorus 0.4) decided for the same text; tests/interop/
// test_embedded_policy.py checks them against the live package.
#include "policy/embedded_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace ctfs::policy {
namespace {

using V = EmbeddedVerdict;

struct Case {
  const char* text;
  V verdict;
};

std::string VerdictName(V v) {
  switch (v) {
    case V::kAllow:
      return "allow";
    case V::kDeny:
      return "deny";
    case V::kUnsupported:
      return "unsupported";
  }
  return "?";
}

constexpr Case kCases[] = {
    // What the reference writer emits by default, and the constant complete rules.
    {"package model\nallow = true", V::kAllow},
    {"package model\nallow = false", V::kDeny},
    {"package model\nallow := true", V::kAllow},
    {"package model\nallow := false", V::kDeny},
    {"package model\nallow=true", V::kAllow},
    {"package model\nallow:=true", V::kAllow},
    // Defaults.
    {"package model\ndefault allow := false", V::kDeny},
    {"package model\ndefault allow = true", V::kAllow},
    {"package model\ndefault allow:=false", V::kDeny},
    {"package model\ndefault allow := false\nallow if { true }", V::kAllow},
    {"package model\ndefault allow := false\nallow if { false }", V::kDeny},
    {"package model\ndefault allow := true\nallow if { false }", V::kAllow},
    {"package model\ndefault allow := true\nallow := false", V::kDeny},
    {"package model\ndefault allow := true\nallow = false if true", V::kDeny},
    {"package model\ndefault allow = false\nallow = true", V::kAllow},
    {"package model\nallow if { false }\ndefault allow := true", V::kAllow},
    // Rules with bodies.
    {"package model\nallow if { true }", V::kAllow},
    {"package model\nallow if { false }", V::kDeny},  // undefined
    {"package model\nallow if true", V::kAllow},
    {"package model\nallow if false", V::kDeny},
    {"package model\nallow if{true}", V::kAllow},
    {"package model\nallow if {true;true}", V::kAllow},
    {"package model\nallow if { true ;true }", V::kAllow},
    {"package model\nallow if { true; false }", V::kDeny},
    {"package model\nallow if { true\n true }", V::kAllow},
    {"package model\nallow if { true\n false }", V::kDeny},
    {"package model\nallow if {\n  true\n  true\n}", V::kAllow},
    {"package model\nallow if {\n\n true\n\n true\n\n}", V::kAllow},
    {"package model\nallow if { true;\n true }", V::kAllow},
    {"package model\nallow if { true\n; true }", V::kAllow},
    {"package model\nallow = true if true", V::kAllow},
    {"package model\nallow := true if true", V::kAllow},
    {"package model\nallow = false if true", V::kDeny},
    {"package model\nallow := false if { true }", V::kDeny},
    {"package model\nallow := true if { false }", V::kDeny},  // undefined
    // Several rules: the values of the bodies that hold must agree.
    {"package model\nallow = true\nallow = true", V::kAllow},
    {"package model\nallow := true\nallow := true", V::kAllow},
    {"package model\nallow := true\nallow if true", V::kAllow},
    {"package model\nallow if true\nallow if true", V::kAllow},
    {"package model\nallow if { true }\nallow if { false }", V::kAllow},
    {"package model\nallow = true\nallow = false", V::kDeny},  // conflict
    {"package model\nallow := true\nallow := false", V::kDeny},
    {"package model\nallow if true\nallow = false if true", V::kDeny},
    {"package model\nallow if true\nallow = false if false", V::kAllow},
    {"package model\nallow := false\nallow if false", V::kDeny},
    {"package model\nallow = true\nallow if { true; false }", V::kAllow},
    {"package model\nallow if { false }\nallow = false if { true }", V::kDeny},
    {"package model\ndefault allow := true\nallow := false if false", V::kAllow},
    // Imports, comments, layout.
    {"package model\nimport rego.v1\nallow = true", V::kAllow},
    {"package model\nimport rego.v1\nallow if true", V::kAllow},
    {"package model\nimport future.keywords\nallow if true", V::kAllow},
    {"package model\nimport future.keywords.if\nallow if true", V::kAllow},
    {"package model\nimport future.keywords.if\nimport future.keywords.in\nallow if true",
     V::kAllow},
    {"package model\nimport rego.v1 # c\nallow = true", V::kAllow},
    {"# c\npackage model\n# c2\nallow = true # trailing", V::kAllow},
    {"package model # c\nallow = true", V::kAllow},
    {"package model\nallow if { true # c\n}", V::kAllow},
    {"package model\nallow if { # c\n true }", V::kAllow},
    {"package model\n# caf\xc3\xa9 \x01\nallow = true", V::kAllow},
    {"  package   model  \n\n\n allow=true  ", V::kAllow},
    {"\n package model\nallow = true\n", V::kAllow},
    {"package model\r\nallow = true\r\n", V::kAllow},
    {"package model\nallow if {\r\n true\r\n}\r\n", V::kAllow},
    {"package    model\t\nallow\t:=\ttrue", V::kAllow},
    {"package model\nallow = false\n", V::kDeny},
    // Pre-v1 syntax: a parse error to the reference.
    {"package model\nallow { true }", V::kDeny},
    {"package model\nimport future.keywords.if\nallow { true }", V::kDeny},
    // No data.model.allow: undefined, the reference refuses.
    {"package model", V::kDeny},
    {"package model\n\n\n", V::kDeny},
    {"package cryptotensors\nallow = true", V::kDeny},
    {"package model.x\nallow = true", V::kDeny},
    {"package data.model\nallow = true", V::kDeny},
    {"package model.allow", V::kDeny},
    // Outside the subset: refused whatever the reference says.
    {"", V::kUnsupported},
    {"# only comment", V::kUnsupported},
    {"package model\nallow = 1", V::kUnsupported},
    {"package model\nallow = \"true\"", V::kUnsupported},
    {"package model\nallow = null", V::kUnsupported},
    {"package model\nallow = True", V::kUnsupported},
    {"package model\nAllow = true", V::kUnsupported},
    {"package model\nallow = (true)", V::kUnsupported},
    {"package model\nallow if input.user == \"x\"", V::kUnsupported},
    {"package model\nallow if { input.user == \"x\" }", V::kUnsupported},
    {"package model\ndefault allow := true\nallow if input.user == \"x\"", V::kUnsupported},
    {"package model\ndefault allow := false\nallow if time.now_ns() > 0", V::kUnsupported},
    {"package model\nallow if not false", V::kUnsupported},
    {"package model\nallow if true == true", V::kUnsupported},
    {"package model\nallow := true\nx := 1", V::kUnsupported},
    {"package model\nallow if { true } else = false", V::kUnsupported},
    {"package model\nallow if { }", V::kUnsupported},  // the reference allows; not a constant form
    {"package model\nallow := true if {}", V::kUnsupported},
    {"package model\nallow if { true; }", V::kUnsupported},
    {"package model\nallow if { ; true }", V::kUnsupported},
    {"package model\nallow if { true;; true }", V::kUnsupported},
    {"package model\nallow if {true true}", V::kUnsupported},
    {"package model\nallow if true; false", V::kUnsupported},
    {"package model\nallow if true if true", V::kUnsupported},
    {"package model\ndefault allow if true", V::kUnsupported},
    {"package model\ndefault allow := 1", V::kUnsupported},
    {"package model\ndefault allow := false\ndefault allow := true", V::kUnsupported},
    {"package model\ndefault allow := true\ndefault allow := false", V::kUnsupported},
    {"package model; allow = true", V::kUnsupported},
    {"package model allow = true", V::kUnsupported},  // one rule per line
    {"package model\nallow = true allow = true", V::kUnsupported},
    {"package model\nallow =\ntrue", V::kUnsupported},
    {"package model\nallow\n= true", V::kUnsupported},
    {"package\nmodel\nallow = true", V::kUnsupported},
    {"package model\rallow = true", V::kUnsupported},
    {"package model\nimport input\nallow if true", V::kUnsupported},
    {"package model\nimport data.foo\nallow if true", V::kUnsupported},
    {"package model\nimport rego.v1\nimport rego.v1\nallow = true", V::kUnsupported},
    {"package model\nimport rego.v1\nimport future.keywords.if\nallow if true", V::kUnsupported},
    {"package model\nimport future.keywords.if\nimport future.keywords.if\nallow if true",
     V::kUnsupported},
    {"package model\nallow = true\nimport rego.v1", V::kUnsupported},
    {"import rego.v1\npackage model\nallow = true", V::kUnsupported},
    {"\xef\xbb\xbfpackage model\nallow = true", V::kUnsupported},  // BOM
    {"package model\nallow = true\x0b", V::kUnsupported},
    {"package model\nallow = true\x7f", V::kUnsupported},
    {"package model\nallow\xc2\xa0= true", V::kUnsupported},
    {"package model\nallow == true", V::kUnsupported},
    {"package model\nallow = true1", V::kUnsupported},
};

TEST(EmbeddedPolicy, DecidesEveryCaseOfTheTable) {
  for (const Case& c : kCases) {
    EmbeddedDecision d = DecideEmbeddedPolicy(c.text);
    EXPECT_EQ(VerdictName(d.verdict), VerdictName(c.verdict))
        << "module: " << c.text << "\nreason: " << d.reason;
    EXPECT_EQ(d.reason.empty(), d.verdict == V::kAllow) << c.text;
    Status s = EvaluateEmbeddedPolicy(c.text);
    if (c.verdict == V::kAllow) {
      EXPECT_TRUE(s.ok()) << c.text << ": " << s.message();
    } else {
      EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << c.text;
      EXPECT_NE(s.message().find(c.verdict == V::kDeny ? "denies access" : "unsupported"),
                std::string::npos)
          << s.message();
    }
  }
}

// A NUL inside the text (the reference's engine stops at it and allows) is refused here.
TEST(EmbeddedPolicy, NulByteIsRefused) {
  std::string text("package model\nallow = true\0", 27);
  EXPECT_EQ(VerdictName(DecideEmbeddedPolicy(text).verdict), "unsupported");
}

TEST(EmbeddedPolicy, ReasonsQuoteTheLine) {
  EXPECT_EQ(DecideEmbeddedPolicy("package model\n\nallow := false").reason,
            "line 3: \"allow := false\" makes data.model.allow false");
  EXPECT_EQ(DecideEmbeddedPolicy("package model\ndefault allow := false").reason,
            "line 2: \"default allow := false\" and no other rule holds");
  const std::string conflict =
      DecideEmbeddedPolicy("package model\nallow = true\nallow = false").reason;
  EXPECT_NE(conflict.find("conflict"), std::string::npos) << conflict;
  EXPECT_NE(conflict.find("line 3: \"allow = false\""), std::string::npos) << conflict;
  EXPECT_NE(DecideEmbeddedPolicy("package cryptotensors\nallow = true")
                .reason.find("line 1: \"package cryptotensors\""),
            std::string::npos);
  const std::string input =
      DecideEmbeddedPolicy("package model\nallow if input.user == \"x\"\r\n").reason;
  EXPECT_EQ(input.rfind("line 2: \"allow if input.user == \\\"x\\\"\": ", 0), 0u) << input;
}

TEST(EmbeddedPolicy, QuotesAreEscapedAndTruncated) {
  std::string text = "package model\nallow if \x1b[31m\t\xff\\";
  text += std::string(200, 'a');
  const std::string r = DecideEmbeddedPolicy(text).reason;
  EXPECT_NE(r.find("\"allow if \\x1b[31m\\t\\xff\\\\aaa"), std::string::npos) << r;
  EXPECT_NE(r.find("aaa...\""), std::string::npos) << r;
  EXPECT_EQ(r.find('\x1b'), std::string::npos);
  EXPECT_EQ(r.find(std::string(100, 'a')), std::string::npos) << "not truncated: " << r;
}

// The package and import names a reason names are cut like the quoted lines (found by
// tests/fuzz/embedded_policy_fuzzer: a long dotted name made a reason of any length).
TEST(EmbeddedPolicy, LongNamesInReasonsAreTruncated) {
  std::string name = "a";
  for (int i = 0; i < 500; ++i) name += ".a";
  for (const std::string& text :
       {"package " + name + "\nallow = true", "package model\nimport " + name + "\nallow = true"}) {
    const EmbeddedDecision d = DecideEmbeddedPolicy(text);
    EXPECT_NE(d.verdict, EmbeddedVerdict::kAllow) << text;
    EXPECT_LT(d.reason.size(), 400u) << d.reason;
    EXPECT_NE(d.reason.find("a.a.a..."), std::string::npos) << d.reason;
    EXPECT_EQ(d.reason.find(std::string(name, 0, 200)), std::string::npos) << d.reason;
  }
}

TEST(EmbeddedPolicy, OperatorModeOpensAndReportsTheOverride) {
  EmbeddedPolicyOutcome allow = ApplyEmbeddedPolicy("package model\nallow = true", true);
  EXPECT_TRUE(allow.status.ok());
  EXPECT_FALSE(allow.overridden);
  EXPECT_EQ(allow.note, "");

  EmbeddedPolicyOutcome deny = ApplyEmbeddedPolicy("\n  package model\nallow := false", true);
  EXPECT_TRUE(deny.status.ok());
  EXPECT_TRUE(deny.overridden);
  EXPECT_NE(deny.note.find("denies access"), std::string::npos) << deny.note;
  EXPECT_NE(deny.note.find("line 2: \"  package model\""), std::string::npos) << deny.note;
  EXPECT_NE(deny.note.find("embedded_policy: operator"), std::string::npos) << deny.note;

  EmbeddedPolicyOutcome odd = ApplyEmbeddedPolicy("package model\nallow if input.x", true);
  EXPECT_TRUE(odd.status.ok());
  EXPECT_TRUE(odd.overridden);
  EXPECT_NE(odd.note.find("unsupported"), std::string::npos) << odd.note;

  EXPECT_EQ(ApplyEmbeddedPolicy("", true).note.find("(empty module)") != std::string::npos, true);

  // Reference mode: the same refusals stand.
  EmbeddedPolicyOutcome ref = ApplyEmbeddedPolicy("package model\nallow := false", false);
  EXPECT_EQ(ref.status.code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(ref.overridden);
}

}  // namespace
}  // namespace ctfs::policy
