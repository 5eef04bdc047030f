// SPDX-License-Identifier: Apache-2.0
// Tests of the strict JSON layer: duplicate keys at any depth, nesting depth, invalid JSON and
// UTF-8, and the integer/string accessors that reject floats, signs and huge values; the
// secret variant (same checks, tree kept in the SecretArena).
#include "format/internal/strict_json.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <string>

#include "base/secret_arena.h"
#include "format/limits.h"

namespace ctfs::format::internal {
namespace {

bool Contains(const Status& s, std::string_view needle) {
  return s.message().find(needle) != std::string::npos;
}

TEST(StrictJsonTest, ParsesObjectAndRecordsMemberOrder) {
  MemberOrder order;
  order.nested_key = "m";
  Result<Json> j = ParseStrictJson(
      R"({"z":1,"a":[1,{"q":2}],"m":{"y":"v","b":{"deep":1},"c":"w"},"x":{"n":1}})", "t", &order);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(order.root, (std::vector<std::string>{"z", "a", "m", "x"}));
  EXPECT_EQ(order.nested, (std::vector<std::string>{"y", "b", "c"}));
  EXPECT_EQ((*j)["m"]["c"], "w");
  // Without a MemberOrder the parse still works (order is not needed there).
  EXPECT_TRUE(ParseStrictJson(R"({"z":1})", "t").ok());
}

// Regression: ordered_json inserted members with a linear search (quadratic parse; a hostile
// header with millions of members stalled for hours). 200k members must parse and keep order.
TEST(StrictJsonTest, ManyMembersKeepOrder) {
  std::string text = "{";
  for (int i = 199999; i >= 0; --i) {
    text += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + (i ? "," : "");
  }
  text += "}";
  MemberOrder order;
  Result<Json> j = ParseStrictJson(text, "t", &order);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  ASSERT_EQ(order.root.size(), 200000u);
  EXPECT_EQ(order.root.front(), "k199999");
  EXPECT_EQ(order.root.back(), "k0");
}

TEST(StrictJsonTest, ObjectMembersParseInLinearTime) {
  // A header is an object of n tensor objects. The parser's callback mode rescanned every
  // member of the enclosing object after each inner object ended: O(n^2), 5 s for 20,000
  // entries, hours for a hostile 100 MB header. Compared with n integer members in the same
  // run (whatever the machine or sanitizer): linear is a few times slower, quadratic ~100x.
  constexpr int kMembers = 50000;
  auto members = [&](const std::string& value) {
    std::string text = "{";
    for (int i = 0; i < kMembers; ++i) {
      text += (i ? ",\"t" : "\"t") + std::to_string(i) + "\":" + value;
    }
    return text + "}";
  };
  auto seconds_to_parse = [](const std::string& text) {
    const auto t0 = std::chrono::steady_clock::now();
    Result<Json> j = ParseStrictJson(text, "t");
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double ints = seconds_to_parse(members("1"));
  const double objects = seconds_to_parse(members(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})"));
  EXPECT_LT(objects, 20 * ints + 0.5) << "integers " << ints << " s, objects " << objects << " s";
}

TEST(StrictJsonTest, RejectsDuplicateKeyAtRoot) {
  Result<Json> j = ParseStrictJson(R"({"a":1,"b":2,"a":3})", "header");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(j.status(), "duplicate key \"a\"")) << j.status().message();
  EXPECT_TRUE(Contains(j.status(), "header")) << j.status().message();
}

TEST(StrictJsonTest, RejectsDuplicateKeyNested) {
  Result<Json> j = ParseStrictJson(R"({"t":{"dtype":"F32","dtype":"F16"}})", "t");
  ASSERT_FALSE(j.ok());
  EXPECT_TRUE(Contains(j.status(), "duplicate key \"dtype\"")) << j.status().message();
}

TEST(StrictJsonTest, SameKeyInSiblingObjectsIsNotADuplicate) {
  Result<Json> j = ParseStrictJson(R"({"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]})", "t");
  EXPECT_TRUE(j.ok()) << j.status().ToString();
}

TEST(StrictJsonTest, RejectsDeepNesting) {
  std::string deep = std::string(200, '[') + std::string(200, ']');
  Result<Json> j = ParseStrictJson(deep, "t");
  ASSERT_FALSE(j.ok());
  EXPECT_TRUE(Contains(j.status(), "deeper")) << j.status().message();

  std::string deep_obj;
  for (int i = 0; i < 50; ++i) deep_obj += "{\"a\":";
  deep_obj += "1" + std::string(50, '}');
  EXPECT_FALSE(ParseStrictJson(deep_obj, "t").ok());
}

// Found by fuzzing (a hostile header of nested brackets): the parser used to build the whole
// nesting before the depth check's verdict counted, tens of bytes per level, so a 100 MB
// header of '[' (allowed by kMaxHeaderBytes) took 7 GB and minutes. Now the text is refused
// at the first bracket over the limit, before any of it is built.
TEST(StrictJsonTest, RefusesDeepNestingBeforeBuildingIt) {
  const std::string deep(size_t{8} << 20, '[');
  rusage before{};
  ASSERT_EQ(::getrusage(RUSAGE_SELF, &before), 0);
  Result<Json> j = ParseStrictJson(deep, "t");
  rusage after{};
  ASSERT_EQ(::getrusage(RUSAGE_SELF, &after), 0);
  ASSERT_FALSE(j.ok());
  // The 18th bracket (offset 17) is the first level over kMaxJsonDepth (16, counted from 0).
  EXPECT_TRUE(Contains(j.status(), "deeper than 16 (at offset 17)")) << j.status().message();
  // Peak RSS (KiB) grew by far less than the ~600 MB the DOM of 8 Mi levels took.
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 << 10);

  // Brackets inside strings, escaped quotes included, are not nesting.
  const std::string in_string = "[\"" + std::string(100, '[') + "\\\"" + std::string(100, '{') +
                                "\"]";
  EXPECT_TRUE(ParseStrictJson(in_string, "t").ok());
}

TEST(StrictJsonTest, AcceptsNestingWithinLimit) {
  // Root object + tensor object + shape array: the real header depth.
  EXPECT_TRUE(ParseStrictJson(R"({"t":{"shape":[1,2]}})", "t").ok());
  std::string at_limit = std::string(kMaxJsonDepth - 1, '[') + std::string(kMaxJsonDepth - 1, ']');
  EXPECT_TRUE(ParseStrictJson(at_limit, "t").ok());
  // The exact edge: 17 nested containers pass when the innermost is empty, not with a value
  // inside it (the value is at depth 17); 18 never pass.
  const size_t n = kMaxJsonDepth + 1;
  EXPECT_TRUE(ParseStrictJson(std::string(n, '[') + std::string(n, ']'), "t").ok());
  EXPECT_FALSE(ParseStrictJson(std::string(n, '[') + "1" + std::string(n, ']'), "t").ok());
  EXPECT_FALSE(ParseStrictJson(std::string(n + 1, '[') + std::string(n + 1, ']'), "t").ok());
}

TEST(StrictJsonTest, RejectsInvalidJson) {
  for (const char* text : {"", "{", "{\"a\":}", "{'a':1}", "{\"a\":1,}", "not json", "{} x",
                           "{\"a\":01}", "{\"a\":NaN}"}) {
    SCOPED_TRACE(text);
    Result<Json> j = ParseStrictJson(text, "t");
    ASSERT_FALSE(j.ok());
    EXPECT_EQ(j.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(StrictJsonTest, RejectsOutOfRangeFloat) { EXPECT_FALSE(ParseStrictJson("[1e400]", "t").ok()); }

TEST(StrictJsonTest, RejectsNulByteAnywhere) {
  // nlohmann alone stops at a NUL and would accept "{}\0garbage".
  using namespace std::string_literals;
  for (const std::string& text : {"{}\0"s, "{}\0garbage"s, "{\"a\":\"x\0y\"}"s, "\0{}"s}) {
    Result<Json> j = ParseStrictJson(text, "t");
    ASSERT_FALSE(j.ok());
    EXPECT_TRUE(Contains(j.status(), "NUL")) << j.status().message();
  }
  // An escaped NUL inside a string is valid JSON.
  Result<Json> j = ParseStrictJson(R"({"a":"x\u0000y"})", "t");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["a"].get<std::string>(), std::string("x\0y", 3));
}

TEST(StrictJsonTest, RejectsInvalidUtf8InStrings) {
  EXPECT_FALSE(ParseStrictJson("{\"a\":\"\xff\"}", "t").ok());
  EXPECT_FALSE(ParseStrictJson("{\"\xc0\xaf\":1}", "t").ok());      // overlong '/'
  EXPECT_FALSE(ParseStrictJson("{\"\xed\xa0\x80\":1}", "t").ok());  // surrogate
  EXPECT_TRUE(ParseStrictJson("{\"\xc3\xa9\":1}", "t").ok());       // é
}

TEST(StrictJsonTest, GetU64AcceptsUnsignedIntegersUpTo2Pow48Minus1) {
  Result<Json> j = ParseStrictJson(R"([0, 7, 281474976710655])", "t");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*GetU64((*j)[0], "x"), 0u);
  EXPECT_EQ(*GetU64((*j)[1], "x"), 7u);
  EXPECT_EQ(*GetU64((*j)[2], "x"), kMaxJsonInteger);
}

TEST(StrictJsonTest, GetU64RejectsFloatsNegativesHugeAndNonNumbers) {
  Result<Json> j = ParseStrictJson(
      R"([1.0, 1e3, 1E0, -1, -0, 281474976710656, 18446744073709551615,
          18446744073709551616, "1", null, true, [1], {"a":1}])",
      "t");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  for (const Json& v : *j) {
    SCOPED_TRACE(v.dump());
    Result<uint64_t> r = GetU64(v, "offset");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(r.status(), "offset")) << r.status().message();
  }
}

TEST(StrictJsonTest, GetString) {
  Result<Json> j = ParseStrictJson(R"(["pt", 1, null])", "t");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*GetString((*j)[0], "v"), "pt");
  EXPECT_FALSE(GetString((*j)[1], "v").ok());
  EXPECT_FALSE(GetString((*j)[2], "v").ok());
}

// The secret parser runs the same checks (one implementation) with the same messages.
TEST(StrictJsonTest, SecretParserRejectsWhatThePlainOneRejects) {
  using namespace std::string_literals;
  for (const std::string& text :
       {R"({"a":1,"b":2,"a":3})"s, R"({"t":{"k":"x","k":"y"}})"s,
        std::string(200, '[') + std::string(200, ']'), "{}\0garbage"s, "{\"a\":\"\xff\"}"s,
        "{\"\xed\xa0\x80\":1}"s, ""s, "{\"a\":}"s, "{} x"s, "{\"a\":01}"s, "[1e400]"s}) {
    SCOPED_TRACE(text);
    Result<Json> plain = ParseStrictJson(text, "doc");
    Result<SecretJson> secret = ParseStrictSecretJson(text, "doc");
    ASSERT_FALSE(plain.ok());
    ASSERT_FALSE(secret.ok());
    EXPECT_EQ(secret.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(secret.status().message(), plain.status().message());
  }
}

TEST(StrictJsonTest, SecretParserReadsWhatThePlainOneReads) {
  const std::string text =
      R"({"k":"L+xl38kCEteXk+6Tm1mzu5JvFriVibzAsgpYX2WmAgA=","a":[1,true,null,{"b":"\u00e9\u0000"}],)"
      R"("n":281474976710655,"s":"short"})";
  Result<Json> plain = ParseStrictJson(text, "t");
  Result<SecretJson> secret = ParseStrictSecretJson(text, "t");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  EXPECT_EQ(*GetString((*secret)["k"], "k"), *GetString((*plain)["k"], "k"));
  EXPECT_EQ(*GetString((*secret)["a"][3]["b"], "b"), std::string("\xc3\xa9\0", 3));
  EXPECT_EQ(*GetString((*secret)["s"], "s"), "short");
  EXPECT_EQ((*secret)["n"].get<uint64_t>(), 281474976710655u);
  EXPECT_TRUE((*secret)["a"][1].get<bool>());
  EXPECT_TRUE((*secret)["a"][2].is_null());
  EXPECT_FALSE(GetString((*secret)["a"], "a").ok());
}

// Every string, object node and array of a SecretJson lives in the SecretArena, and all of it
// goes back (wiped) when the tree is destroyed, also when the parse fails half way.
TEST(StrictJsonTest, SecretJsonTreeLivesInTheArena) {
  const std::string key(44, 'Q');
  const std::string text = R"({"keys":[{"kty":"oct","kid":"a","k":")" + key +
                           R"("},{"kty":"okp","kid":"b","d":")" + key + R"("}]})";
  const SecretArenaStats before = SecretArena::Stats();
  {
    Result<SecretJson> j = ParseStrictSecretJson(text, "t");
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    const SecretArenaStats during = SecretArena::Stats();
    // The root object and its member node, the array and its storage, 2 objects with 6
    // member nodes and 6 string values, the 2 long strings' buffers: 20 blocks.
    EXPECT_GE(during.live_blocks, before.live_blocks + 20);
    EXPECT_GE(during.live_bytes, before.live_bytes + 2 * key.size());
  }
  EXPECT_EQ(SecretArena::Stats().live_blocks, before.live_blocks);
  EXPECT_EQ(SecretArena::Stats().live_bytes, before.live_bytes);
  for (const std::string& bad : {text.substr(0, text.size() / 2), text + "x", text + text}) {
    EXPECT_FALSE(ParseStrictSecretJson(bad, "t").ok());
    EXPECT_EQ(SecretArena::Stats().live_blocks, before.live_blocks);
    EXPECT_EQ(SecretArena::Stats().live_bytes, before.live_bytes);
  }
}

}  // namespace
}  // namespace ctfs::format::internal
