// SPDX-License-Identifier: Apache-2.0
#include "policy/embedded_policy.h"

#include <gtest/gtest.h>

namespace ctfs::policy {
namespace {

TEST(EmbeddedPolicy, DefaultAllows) {
  EXPECT_TRUE(EvaluateEmbeddedPolicy("package model\nallow = true").ok());
  EXPECT_TRUE(EvaluateEmbeddedPolicy("\n package model\nallow = true\n").ok());
}

TEST(EmbeddedPolicy, DenyAllDenies) {
  Status s = EvaluateEmbeddedPolicy("package model\nallow = false");
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("denies"), std::string::npos);
}

TEST(EmbeddedPolicy, AnythingElseFailsClosed) {
  for (const char* text :
       {"", "package cryptotensors\nallow = true", "package model\nallow = true\nallow = false",
        "package model\nallow { time.now_ns() < 1 }", "package model allow = true"}) {
    Status s = EvaluateEmbeddedPolicy(text);
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << text;
    EXPECT_NE(s.message().find("unsupported"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace ctfs::policy
