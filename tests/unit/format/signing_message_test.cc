// SPDX-License-Identifier: Apache-2.0
// Tests of the canonical signed message (cryptotensors-format.md §3.1). Expected messages come
// from tests/testdata/vectors/gen_format_vectors.py, which builds them with Python's json module
// (independent of this code) and checks the §1.8 example signature over its message with the
// `cryptography` package. The hand-built headers here mirror ZERO_SIZE and ESCAPE there.
#include "format/signing_message.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "format/crypt_metadata.h"

namespace ctfs::format {
namespace {

std::string ReadVector(const std::string& name) {
  std::ifstream in(std::string(CTFS_TESTDATA_DIR) + "/vectors/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TensorInfo Tensor(std::string name, Dtype dtype, std::vector<uint64_t> shape, uint64_t begin,
                  uint64_t end) {
  TensorInfo t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.begin = begin;
  t.end = end;
  return t;
}

TEST(SigningMessageTest, FormatDocExample) {
  const std::string header_text = ReadVector("header_1_8.json");
  const std::string expected = ReadVector("signing_message_1_8.txt");
  ASSERT_EQ(header_text.size(), 1024u);
  ASSERT_EQ(expected.size(), 913u);
  Result<SafetensorsHeader> h = ParseHeaderJson(AsBytes(header_text));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(BuildSigningMessage(*h), expected);
}

TEST(SigningMessageTest, FormatDocExampleFastPathAgrees) {
  // §3.1 fast path: a reference-written header is the message plus the __signature__ member
  // plus padding. Cut both out of the raw text and compare.
  std::string raw = ReadVector("header_1_8.json");
  raw.erase(raw.find_last_not_of(' ') + 1);
  const size_t start = raw.find("\"__signature__\":\"");
  ASSERT_NE(start, std::string::npos);
  const size_t close = raw.find('"', start + 17);
  ASSERT_NE(close, std::string::npos);
  ASSERT_EQ(raw[close + 1], ',');
  raw.erase(start, close + 2 - start);
  Result<SafetensorsHeader> h = ParseHeaderJson(AsBytes(ReadVector("header_1_8.json")));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(BuildSigningMessage(*h), raw);
}

SafetensorsHeader ZeroSizeHeader() {
  SafetensorsHeader h;
  h.has_metadata = true;
  h.metadata = {{"format", "pt"}};
  h.tensors = {Tensor("y", Dtype::kI64, {0}, 8, 8),    Tensor("b", Dtype::kU8, {0}, 0, 0),
               Tensor("z", Dtype::kU8, {1}, 8, 9),     Tensor("c", Dtype::kF32, {0}, 0, 0),
               Tensor("x", Dtype::kF32, {2}, 0, 8),    Tensor("a", Dtype::kF32, {0}, 0, 0),
               Tensor("d", Dtype::kBF16, {0, 3}, 0, 0)};
  h.data_len = 9;
  return h;
}

TEST(SigningMessageTest, ZeroSizeTiesBreakByDtypeDescendingThenName) {
  SafetensorsHeader h = ZeroSizeHeader();
  const std::string expected = ReadVector("signing_message_zero_size.txt");
  EXPECT_EQ(BuildSigningMessage(h), expected);
  // The order of the input table does not matter.
  std::reverse(h.tensors.begin(), h.tensors.end());
  EXPECT_EQ(BuildSigningMessage(h), expected);
  std::rotate(h.tensors.begin(), h.tensors.begin() + 3, h.tensors.end());
  EXPECT_EQ(BuildSigningMessage(h), expected);
}

TEST(SigningMessageTest, FnuzSortsAfterU64InTies) {
  // CryptoTensorsOrdinal puts the FNUZ types (unknown to the 0.2.3 enum) after U64, so in a
  // descending tie-break they come first.
  SafetensorsHeader h;
  h.tensors = {Tensor("a", Dtype::kU64, {0}, 0, 0), Tensor("z", Dtype::kF8_E4M3FNUZ, {0}, 0, 0)};
  EXPECT_EQ(BuildSigningMessage(h),
            R"({"z":{"dtype":"F8_E4M3FNUZ","shape":[0],"data_offsets":[0,0]},)"
            R"("a":{"dtype":"U64","shape":[0],"data_offsets":[0,0]}})");
}

TEST(SigningMessageTest, EscapesLikeSerdeJsonAndSortsKeysBytewise) {
  SafetensorsHeader h;
  h.has_metadata = true;
  h.metadata = {{"format", "pt"},
                {"__signature__", "c2ln"},
                {"z\xc3\xa9\xe4\xb8\xad",
                 std::string("tab\there \"q\" back\\slash /slash \x01\x1f\x7f \xc3\xa9 "
                             "\xf0\x9f\x98\x80 \b\f\n\r") +
                     std::string(1, '\0') + " end"},
                {"A", "x"},
                {"\x1f"
                 "ctl",
                 "v"},
                {"\xc3\xa9", "accent"},
                {"e\xcc\x81", "combining"}};
  h.tensors = {Tensor("t\xc3\xbc\n\"", Dtype::kF16, {1}, 0, 2),
               Tensor("\xe4\xb8\xad", Dtype::kBF16, {}, 2, 4)};
  h.data_len = 4;
  EXPECT_EQ(BuildSigningMessage(h), ReadVector("signing_message_escape.txt"));
}

TEST(SigningMessageTest, WithoutMetadataMemberOmitsIt) {
  SafetensorsHeader h;
  h.tensors = {Tensor("t", Dtype::kF32, {2, 3}, 0, 24)};
  h.data_len = 24;
  EXPECT_EQ(BuildSigningMessage(h), R"({"t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})");
}

TEST(SigningMessageTest, MetadataHoldingOnlySignatureIsEmptyObject) {
  SafetensorsHeader h;
  h.has_metadata = true;
  h.metadata = {{kSignatureKey, "AAAA"}};
  EXPECT_EQ(BuildSigningMessage(h), R"({"__metadata__":{}})");
  h.tensors = {Tensor("s", Dtype::kBool, {}, 0, 1)};
  EXPECT_EQ(BuildSigningMessage(h),
            R"({"__metadata__":{},"s":{"dtype":"BOOL","shape":[],"data_offsets":[0,1]}})");
}

TEST(SigningMessageTest, EmptyHeader) { EXPECT_EQ(BuildSigningMessage(SafetensorsHeader()), "{}"); }

TEST(SigningMessageTest, LargeIntegersInPlainDecimal) {
  SafetensorsHeader h;
  const uint64_t big = (uint64_t{1} << 48) - 1;
  h.tensors = {Tensor("u", Dtype::kU8, {big}, 0, big)};
  EXPECT_EQ(BuildSigningMessage(h), R"({"u":{"dtype":"U8","shape":[281474976710655],)"
                                    R"("data_offsets":[0,281474976710655]}})");
}

}  // namespace
}  // namespace ctfs::format
