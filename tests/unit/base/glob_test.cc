// SPDX-License-Identifier: Apache-2.0
#include "base/glob.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace ctfs {
namespace {

bool NameMatch(std::string_view pattern, std::string_view text) {
  Result<Glob> g = Glob::Compile(pattern, Glob::Kind::kName);
  EXPECT_TRUE(g.ok()) << pattern << ": " << g.status().ToString();
  return g.ok() && g->Match(text);
}

bool PathMatch(std::string_view pattern, std::string_view text) {
  Result<Glob> g = Glob::Compile(pattern, Glob::Kind::kPath);
  EXPECT_TRUE(g.ok()) << pattern << ": " << g.status().ToString();
  return g.ok() && g->Match(text);
}

std::string CompileError(std::string_view pattern, Glob::Kind kind) {
  Result<Glob> g = Glob::Compile(pattern, kind);
  if (g.ok()) return "compiled";
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  return g.status().message();
}

TEST(Glob, NameStarAndQuestion) {
  EXPECT_TRUE(NameMatch("*", ""));
  EXPECT_TRUE(NameMatch("*", "anything/at all"));
  EXPECT_TRUE(NameMatch("model.layers.*.weight", "model.layers.12.mlp/x.weight"));
  EXPECT_FALSE(NameMatch("model.layers.*.weight", "model.layers.12.bias"));
  EXPECT_TRUE(NameMatch("a?c", "abc"));
  EXPECT_TRUE(NameMatch("a?c", "a/c"));  // kName: '?' crosses '/'
  EXPECT_FALSE(NameMatch("a?c", "ac"));
  EXPECT_FALSE(NameMatch("a?c", "abbc"));
  EXPECT_TRUE(NameMatch("*.bias", ".bias"));
  EXPECT_TRUE(NameMatch("a*b*c", "aXXbYYbZZc"));
  EXPECT_FALSE(NameMatch("a*b*c", "aXXbYYbZZ"));
  EXPECT_TRUE(NameMatch("**", "x"));
  EXPECT_TRUE(NameMatch("a**b", "a/x/y/b"));  // kName: `**` is just a star
}

TEST(Glob, Literal) {
  Result<Glob> g = Glob::Compile("python3", Glob::Kind::kName);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g->literal());
  EXPECT_TRUE(g->Match("python3"));
  EXPECT_FALSE(g->Match("python3.11"));
  EXPECT_FALSE(g->Match("python"));
  EXPECT_EQ(g->pattern(), "python3");
  EXPECT_EQ(g->kind(), Glob::Kind::kName);
  for (std::string_view p : {"a*", "a?", "[a]", "\\a"}) {
    Result<Glob> h = Glob::Compile(p, Glob::Kind::kName);
    ASSERT_TRUE(h.ok()) << p;
    EXPECT_FALSE(h->literal()) << p;
  }
  EXPECT_TRUE(NameMatch("a]b", "a]b"));  // a lone ']' is an ordinary byte
}

TEST(Glob, Sets) {
  EXPECT_TRUE(NameMatch("[abc]", "b"));
  EXPECT_FALSE(NameMatch("[abc]", "d"));
  EXPECT_TRUE(NameMatch("x[0-9]", "x7"));
  EXPECT_FALSE(NameMatch("x[0-9]", "xa"));
  EXPECT_TRUE(NameMatch("[a-cx-z]", "y"));
  EXPECT_FALSE(NameMatch("[a-cx-z]", "m"));
  EXPECT_TRUE(NameMatch("[!a-z]", "Q"));
  EXPECT_FALSE(NameMatch("[!a-z]", "q"));
  EXPECT_TRUE(NameMatch("[^a-z]", "Q"));
  EXPECT_FALSE(NameMatch("[^a-z]", "q"));
  EXPECT_TRUE(NameMatch("[a-]", "-"));  // '-' before ']' is a member
  EXPECT_TRUE(NameMatch("[-a]", "-"));  // '-' first is a member
  EXPECT_FALSE(NameMatch("[a-]", "b"));
  EXPECT_TRUE(NameMatch("[\\]]", "]"));    // escaped ']' in a set
  EXPECT_TRUE(NameMatch("[a\\-z]", "-"));  // escaped '-' is not a range
  EXPECT_FALSE(NameMatch("[a\\-z]", "m"));
}

TEST(Glob, SetsHighBytes) {
  EXPECT_TRUE(NameMatch("[\x80-\xff]", "\xc3"));
  EXPECT_FALSE(NameMatch("[\x80-\xff]", "a"));
  EXPECT_TRUE(NameMatch("[!\x80-\xff]", "a"));
}

TEST(Glob, Escapes) {
  EXPECT_TRUE(NameMatch("a\\*b", "a*b"));
  EXPECT_FALSE(NameMatch("a\\*b", "aXb"));
  EXPECT_TRUE(NameMatch("\\?", "?"));
  EXPECT_FALSE(NameMatch("\\?", "x"));
  EXPECT_TRUE(NameMatch("\\[x]", "[x]"));
  EXPECT_TRUE(NameMatch("\\\\", "\\"));
  EXPECT_TRUE(NameMatch("\\a", "a"));
}

TEST(Glob, PathStarStaysInSegment) {
  EXPECT_TRUE(PathMatch("llama/*.json", "llama/config.json"));
  EXPECT_FALSE(PathMatch("llama/*.json", "llama/sub/config.json"));
  EXPECT_FALSE(PathMatch("llama/*.json", "other/config.json"));
  EXPECT_FALSE(PathMatch("a?b/x", "a/b/x"));
  EXPECT_TRUE(PathMatch("a?b/x", "a_b/x"));
  EXPECT_FALSE(PathMatch("a[/]b/x", "a/b/x"));  // '/' in a set never matches
  EXPECT_TRUE(PathMatch("/usr/bin/python3*", "/usr/bin/python3.11"));
  EXPECT_FALSE(PathMatch("/usr/bin/python3*", "/usr/bin/python3/x"));
}

TEST(Glob, PathBasenameOnly) {
  EXPECT_TRUE(PathMatch("*.json", "config.json"));
  EXPECT_TRUE(PathMatch("*.json", "llama/config.json"));
  EXPECT_TRUE(PathMatch("*.json", "a/b/c/config.json"));
  EXPECT_FALSE(PathMatch("*.json", "config.json/x"));
  EXPECT_TRUE(PathMatch("config.json", "llama/config.json"));  // literal, basename
  EXPECT_FALSE(PathMatch("config.json", "llama/config.json.bak"));
  EXPECT_TRUE(PathMatch("python3", "/usr/bin/python3"));
  // A leading '/' anchors at the root.
  EXPECT_TRUE(PathMatch("/config.json", "config.json"));
  EXPECT_FALSE(PathMatch("/config.json", "llama/config.json"));
  EXPECT_FALSE(PathMatch("/*.json", "llama/config.json"));
  EXPECT_TRUE(PathMatch("/*.json", "/x.json"));
}

TEST(Glob, PathLeadingSlashes) {
  EXPECT_TRUE(PathMatch("/usr/bin/python3", "/usr/bin/python3"));
  EXPECT_TRUE(PathMatch("usr/bin/python3", "/usr/bin/python3"));
  EXPECT_TRUE(PathMatch("/usr/bin/python3", "usr/bin/python3"));
  EXPECT_FALSE(PathMatch("/usr/bin/python3", "/usr/local/bin/python3"));
  EXPECT_TRUE(PathMatch("/system.slice/*.service", "/system.slice/vllm.service"));
  EXPECT_TRUE(PathMatch("/", "/"));
  EXPECT_FALSE(PathMatch("/", "/a"));
}

TEST(Glob, PathDoubleStar) {
  EXPECT_TRUE(PathMatch("**", "a"));
  EXPECT_TRUE(PathMatch("**", "a/b/c"));
  EXPECT_TRUE(PathMatch("**/x.json", "x.json"));
  EXPECT_TRUE(PathMatch("**/x.json", "a/b/x.json"));
  EXPECT_FALSE(PathMatch("**/x.json", "a/b/y.json"));
  EXPECT_TRUE(PathMatch("a/**", "a/b"));
  EXPECT_TRUE(PathMatch("a/**", "a/b/c/d"));
  EXPECT_TRUE(PathMatch("a/**", "a"));  // zero segments
  EXPECT_FALSE(PathMatch("a/**", "b/c"));
  EXPECT_TRUE(PathMatch("a/**/z", "a/z"));
  EXPECT_TRUE(PathMatch("a/**/z", "a/b/c/z"));
  EXPECT_FALSE(PathMatch("a/**/z", "a/b/c/y"));
  EXPECT_FALSE(PathMatch("a/**/z", "b/a/z"));
  EXPECT_TRUE(PathMatch("a/**/b/**/c", "a/x/b/y/z/c"));
  EXPECT_TRUE(PathMatch("a/**/b/**/c", "a/b/c"));
  EXPECT_FALSE(PathMatch("a/**/b/**/c", "a/x/c"));
  EXPECT_TRUE(PathMatch("**/*.safetensors", "org/llama/model-00001.safetensors"));
  EXPECT_TRUE(PathMatch("/**/llama/*", "/org/llama/w.bin"));
  EXPECT_TRUE(PathMatch("a/**/**/b", "a/b"));
  EXPECT_TRUE(PathMatch("a/**/**/b", "a/1/2/3/b"));
}

TEST(Glob, Errors) {
  using K = Glob::Kind;
  EXPECT_EQ(CompileError("", K::kName), "glob \"\": empty pattern at offset 0");
  EXPECT_EQ(CompileError("ab[cd", K::kName), "glob \"ab[cd\": unclosed '[' at offset 2");
  EXPECT_EQ(CompileError("ab[]", K::kPath), "glob \"ab[]\": empty set '[]' at offset 2");
  EXPECT_EQ(CompileError("[!]", K::kName), "glob \"[!]\": empty set '[]' at offset 0");
  EXPECT_EQ(CompileError("[^]x", K::kName), "glob \"[^]x\": empty set '[]' at offset 0");
  EXPECT_EQ(CompileError("abc\\", K::kName), "glob \"abc\\\\\": trailing '\\' at offset 3");
  EXPECT_EQ(CompileError("[a\\", K::kName), "glob \"[a\\\\\": unclosed '[' at offset 0");
  EXPECT_EQ(CompileError(std::string_view("ab\0c", 4), K::kName),
            "glob \"ab\\x00c\": NUL byte at offset 2");
  EXPECT_EQ(CompileError("a/b**/c", K::kPath),
            "glob \"a/b**/c\": '**' not a whole path segment at offset 3");
  EXPECT_EQ(CompileError("/x/**b", K::kPath),
            "glob \"/x/**b\": '**' not a whole path segment at offset 3");
  EXPECT_EQ(CompileError("***", K::kPath),
            "glob \"***\": '**' not a whole path segment at offset 0");
  EXPECT_EQ(CompileError("a**", K::kName), "compiled");       // kName: no segments
  EXPECT_EQ(CompileError("a/\\**/c", K::kPath), "compiled");  // "\**": an escaped '*' then '*'
  EXPECT_EQ(CompileError("a/[*]*/c", K::kPath), "compiled");
  std::string long_pattern(4097, 'a');
  EXPECT_NE(CompileError(long_pattern, K::kName).find("longer than 4096 bytes"), std::string::npos);
  EXPECT_EQ(CompileError(std::string(4096, 'a'), K::kName), "compiled");
}

TEST(Glob, HostilePatternsFinish) {
  // Exponential for a naive recursive matcher; the two-pointer scheme is quadratic at worst.
  const std::string text(20000, 'a');
  EXPECT_FALSE(NameMatch("*a*a*a*a*a*a*a*a*a*a*b", text));
  EXPECT_TRUE(NameMatch("*a*a*a*a*a*a*a*a*a*a*", text));
  EXPECT_FALSE(PathMatch("*a*a*a*a*a*a*a*a*a*a*b", text));
  // The same at the segment level: `**` against many segments.
  std::string path;
  for (int i = 0; i < 2000; ++i) path += "a/";
  path += "a";
  EXPECT_FALSE(PathMatch("**/a/**/a/**/a/**/a/**/a/**/b", path));
  EXPECT_TRUE(PathMatch("**/a/**/a/**/a/**/a/**/a/**/a", path));
}

}  // namespace
}  // namespace ctfs
