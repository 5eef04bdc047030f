// SPDX-License-Identifier: Apache-2.0
#include "format/model_index.h"

#include <gtest/gtest.h>

namespace ctfs::format {
namespace {

constexpr char kIndex[] =
    R"({"metadata": {"total_size": 48, "extra": "x"}, "weight_map": {"a": "m-1.safetensors",)"
    R"( "b": "m-2.safetensors"}})";

TEST(ModelIndexTest, ParsesWeightMap) {
  auto m = ParseWeightMap(kIndex, "idx");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ(m->at("a"), "m-1.safetensors");
  EXPECT_EQ(m->at("b"), "m-2.safetensors");
}

TEST(ModelIndexTest, RejectsBadIndexes) {
  EXPECT_FALSE(ParseWeightMap("{}", "idx").ok());
  EXPECT_FALSE(ParseWeightMap(R"({"weight_map": []})", "idx").ok());
  EXPECT_FALSE(ParseWeightMap(R"({"weight_map": {"a": 1}})", "idx").ok());
  EXPECT_FALSE(ParseWeightMap("[", "idx").ok());
  auto dup = ParseWeightMap(R"({"weight_map": {"a": "x", "a": "y"}})", "idx");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("idx"), std::string::npos);
}

TEST(ModelIndexTest, RewriteMovesOnlyNamedTensorsAndKeepsOtherMembers) {
  auto text = RewriteWeightMap(kIndex, {{"a", "m-locked.safetensors"}}, "idx");
  ASSERT_TRUE(text.ok()) << text.status().message();
  auto m = ParseWeightMap(*text, "idx");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->at("a"), "m-locked.safetensors");
  EXPECT_EQ(m->at("b"), "m-2.safetensors");
  EXPECT_NE(text->find("\"extra\": \"x\""), std::string::npos);
  EXPECT_NE(text->find("\"total_size\": 48"), std::string::npos);
}

TEST(ModelIndexTest, RewriteRefusesUnlistedTensor) {
  auto text = RewriteWeightMap(kIndex, {{"zzz", "m-locked.safetensors"}}, "idx");
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("zzz"), std::string::npos);
}

TEST(ModelIndexTest, NewIndexRoundTrips) {
  std::string text = NewModelIndex(123, {{"x", "f1"}, {"y", "f2"}});
  auto m = ParseWeightMap(text, "new");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->at("x"), "f1");
  EXPECT_EQ(m->at("y"), "f2");
  EXPECT_NE(text.find("\"total_size\": 123"), std::string::npos);
}

}  // namespace
}  // namespace ctfs::format
