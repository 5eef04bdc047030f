// SPDX-License-Identifier: Apache-2.0
// Tests of the dtype table (style.md §1.4): every safetensors name parses and prints back,
// bit sizes match tensor.rs Dtype::bitsize, and the CryptoTensors ordinal follows its enum.
#include "format/dtype.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ctfs::format {
namespace {

struct Expected {
  std::string name;
  uint32_t bits;
  int ordinal;
};

const std::vector<Expected>& AllDtypes() {
  static const std::vector<Expected> kAll = {
      {"BOOL", 8, 0},         {"F4", 4, 1},           {"F6_E2M3", 6, 2}, {"F6_E3M2", 6, 3},
      {"U8", 8, 4},           {"I8", 8, 5},           {"F8_E5M2", 8, 6}, {"F8_E4M3", 8, 7},
      {"F8_E8M0", 8, 8},      {"I16", 16, 9},         {"U16", 16, 10},   {"F16", 16, 11},
      {"BF16", 16, 12},       {"I32", 32, 13},        {"U32", 32, 14},   {"F32", 32, 15},
      {"C64", 64, 16},        {"F64", 64, 17},        {"I64", 64, 18},   {"U64", 64, 19},
      {"F8_E4M3FNUZ", 8, 20}, {"F8_E5M2FNUZ", 8, 21},
  };
  return kAll;
}

TEST(DtypeTest, EveryNameParsesWithItsBitsAndOrdinal) {
  for (const Expected& e : AllDtypes()) {
    SCOPED_TRACE(e.name);
    Result<Dtype> d = ParseDtype(e.name);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(DtypeName(*d), e.name);
    EXPECT_EQ(DtypeBits(*d), e.bits);
    EXPECT_EQ(CryptoTensorsOrdinal(*d), e.ordinal);
  }
}

TEST(DtypeTest, OrdinalIsEnumOrder) {
  EXPECT_EQ(CryptoTensorsOrdinal(Dtype::kBool), 0);
  EXPECT_EQ(CryptoTensorsOrdinal(Dtype::kU64), 19);
  EXPECT_EQ(CryptoTensorsOrdinal(Dtype::kF8_E4M3FNUZ), 20);
  EXPECT_EQ(CryptoTensorsOrdinal(Dtype::kF8_E5M2FNUZ), 21);
  EXPECT_LT(CryptoTensorsOrdinal(Dtype::kF16), CryptoTensorsOrdinal(Dtype::kBF16));
}

TEST(DtypeTest, UnknownNamesAreRejected) {
  for (const char* name : {"", "f32", "F128", "FLOAT32", "F32 ", " F32", "F8_E4M3FN", "bool"}) {
    SCOPED_TRACE(name);
    Result<Dtype> d = ParseDtype(name);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("unknown dtype"), std::string::npos);
  }
}

TEST(DtypeTest, UnknownNameMessageIsBounded) {
  Result<Dtype> d = ParseDtype(std::string(10000, 'X'));
  ASSERT_FALSE(d.ok());
  EXPECT_LT(d.status().message().size(), 100u);
}

}  // namespace
}  // namespace ctfs::format
