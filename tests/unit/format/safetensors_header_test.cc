// SPDX-License-Identifier: Apache-2.0
// Tests of the safetensors header parser and serializer: one named negative test per rule
// S1-S15 (style.md §1.2) with its bytes built here, the upstream safetensors test cases
// (tensor.rs), our own decisions (§1.3, §1.6), and byte-for-byte agreement with headers that
// the Python `safetensors` package wrote (tests/testdata/safetensors/valid/).
#include "format/safetensors_header.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "format/limits.h"

namespace ctfs::format {
namespace {

// U64Le returns the 8-byte little-endian encoding of `v`.
Bytes U64Le(uint64_t v) {
  Bytes out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return out;
}

// MakeFile returns u64le(json.size()) || json || data_len zero bytes.
Bytes MakeFile(std::string_view json, uint64_t data_len) {
  Bytes out = U64Le(json.size());
  out.insert(out.end(), json.begin(), json.end());
  out.resize(out.size() + data_len, 0);
  return out;
}

Result<SafetensorsHeader> ParseFile(const Bytes& file) { return ParseHeader(file, file.size()); }

Result<SafetensorsHeader> ParseJson(std::string_view json) {
  return ParseHeaderJson(AsBytes(json));
}

// ExpectInvalid checks that `r` failed with InvalidArgument and a message containing `needle`.
template <typename T>
void ExpectInvalid(const Result<T>& r, std::string_view needle) {
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos)
      << "message: " << r.status().message() << "\nexpected to contain: " << needle;
}

constexpr std::string_view kTwoTensors =
    R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
    R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}})";

TEST(SafetensorsHeaderTest, ParsesValidFile) {
  Bytes file = MakeFile(kTwoTensors, 24);
  Result<SafetensorsHeader> h = ParseFile(file);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->header_len, kTwoTensors.size());
  EXPECT_EQ(h->data_start(), 8 + kTwoTensors.size());
  EXPECT_EQ(h->data_len, 24u);
  EXPECT_EQ(h->file_len(), file.size());
  EXPECT_TRUE(h->has_metadata);
  ASSERT_NE(h->FindMetadata("format"), nullptr);
  EXPECT_EQ(*h->FindMetadata("format"), "pt");
  EXPECT_EQ(h->FindMetadata("missing"), nullptr);
  ASSERT_EQ(h->tensors.size(), 2u);
  const TensorInfo* w = h->FindTensor("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, Dtype::kF32);
  EXPECT_EQ(w->shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(w->begin, 8u);
  EXPECT_EQ(w->end, 24u);
  EXPECT_EQ(w->byte_len(), 16u);
  EXPECT_EQ(h->FindTensor("__metadata__"), nullptr);
  EXPECT_EQ(h->FindTensor("x"), nullptr);
}

// ---- one named negative test per rule ----------------------------------------------------

TEST(SafetensorsHeaderTest, S1_FileShorterThanLengthPrefix) {
  for (size_t len = 0; len < 8; ++len) {
    Bytes file(len, 0);
    ExpectInvalid(ParseFile(file), "header too small");
    ExpectInvalid(ParseHeaderLength(file, file.size()), "header too small");
  }
}

TEST(SafetensorsHeaderTest, S2_HeaderLengthAboveMaximum) {
  Bytes prefix = U64Le(kMaxHeaderBytes + 1);
  ExpectInvalid(ParseHeaderLength(prefix, uint64_t{1} << 40), "header too large");
  ExpectInvalid(ParseHeaderLength(U64Le(UINT64_MAX), UINT64_MAX), "header too large");
  // A small file claiming a huge header (attack "huge N on a small file").
  Bytes file = U64Le(kMaxHeaderBytes + 1);
  file.push_back('{');
  ExpectInvalid(ParseFile(file), "header too large");
  // Exactly the maximum passes S2 (then fails S3 against a small file).
  ExpectInvalid(ParseHeaderLength(U64Le(kMaxHeaderBytes), 100), "invalid header length");
  EXPECT_TRUE(ParseHeaderLength(U64Le(kMaxHeaderBytes), 8 + kMaxHeaderBytes).ok());
}

TEST(SafetensorsHeaderTest, S3_HeaderLengthBeyondFile) {
  Bytes file = MakeFile("{}", 0);
  file.pop_back();  // N = 2, but only 1 JSON byte present
  ExpectInvalid(ParseFile(file), "invalid header length");
  ExpectInvalid(ParseHeaderLength(U64Le(100), 50), "invalid header length");
  Result<uint64_t> n = ParseHeaderLength(U64Le(42), 50);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 42u);
}

TEST(SafetensorsHeaderTest, S4_HeaderNotUtf8) {
  ExpectInvalid(ParseFile(MakeFile("{\"\xff\":{}}", 0)), "UTF-8");
  // Invalid UTF-8 outside any string, in the trailing padding.
  ExpectInvalid(ParseFile(MakeFile("{}  \xc3", 0)), "UTF-8");
  ExpectInvalid(ParseJson("{\"\xed\xa0\x80\":1}"), "UTF-8");      // surrogate
  ExpectInvalid(ParseJson("{\"\xe0\x80\xaf\":1}"), "UTF-8");      // overlong
  ExpectInvalid(ParseJson("{\"\xf4\x90\x80\x80\":1}"), "UTF-8");  // above U+10FFFF
}

TEST(SafetensorsHeaderTest, S5_HeaderNotAJsonObject) {
  for (std::string_view json : {"", "[]", "\"str\"", "1", "null", "{", "{\"a\":}", "{} {}",
                                "\xef\xbb\xbf{}", "{\"a\":1,}"}) {
    SCOPED_TRACE(std::string(json));
    Result<SafetensorsHeader> h = ParseFile(MakeFile(json, 0));
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.status().code(), StatusCode::kInvalidArgument);
  }
  ExpectInvalid(ParseJson("[]"), "must be an object");
  ExpectInvalid(ParseJson("\xef\xbb\xbf{}"), "must be an object");  // a BOM is not whitespace
  // Duplicate keys (§1.3): at the root and inside a tensor.
  ExpectInvalid(ParseJson(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},)"
                          R"("a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})"),
                "duplicate key \"a\"");
  ExpectInvalid(ParseJson(R"({"a":{"dtype":"U8","dtype":"U8","shape":[0],"data_offsets":[0,0]}})"),
                "duplicate key \"dtype\"");
  ExpectInvalid(ParseJson(R"({"__metadata__":{"k":"1","k":"2"}})"), "duplicate key \"k\"");
}

TEST(SafetensorsHeaderTest, S6_MetadataNotStringToString) {
  ExpectInvalid(ParseJson(R"({"__metadata__":{"format":1}})"), "must be a string");
  ExpectInvalid(ParseJson(R"({"__metadata__":{"format":null}})"), "must be a string");
  ExpectInvalid(ParseJson(R"({"__metadata__":{"a":{"b":"c"}}})"), "must be a string");
  ExpectInvalid(ParseJson(R"({"__metadata__":["a"]})"), "__metadata__ must be an object");
  ExpectInvalid(ParseJson(R"({"__metadata__":"pt"})"), "__metadata__ must be an object");
  ExpectInvalid(ParseJson(R"({"__metadata__":null})"), "__metadata__ must be an object");
  // A tensor-shaped __metadata__ is still metadata, never a tensor.
  ExpectInvalid(ParseJson(R"({"__metadata__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})"),
                "must be a string");
}

TEST(SafetensorsHeaderTest, S7_TensorEntryIncomplete) {
  ExpectInvalid(ParseJson(R"({"w":{"shape":[1],"data_offsets":[0,1]}})"),
                R"(tensor "w": missing field "dtype")");
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"U8","data_offsets":[0,1]}})"),
                R"(tensor "w": missing field "shape")");
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"U8","shape":[1]}})"),
                R"(tensor "w": missing field "data_offsets")");
  // Unknown extra field (schema additionalProperties: false; §1.3).
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":0}})"),
                R"(tensor "w": unknown field "x")");
  ExpectInvalid(ParseJson(R"({"w":[1]})"), R"(tensor "w": entry must be an object)");
  ExpectInvalid(ParseJson(R"({"w":"U8"})"), R"(tensor "w": entry must be an object)");
}

TEST(SafetensorsHeaderTest, S8_UnknownDtype) {
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})"),
                R"(tensor "w": unknown dtype "F128")");
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})"),
                "unknown dtype \"f32\"");
  ExpectInvalid(ParseJson(R"({"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})"),
                "dtype must be a string");
}

TEST(SafetensorsHeaderTest, S9_ShapeNotNonNegativeIntegers) {
  for (std::string_view shape :
       {"[-1]", "[1.0]", "[2e0]", "[\"2\"]", "[null]", "2", "{}", "[281474976710656]", "[[1]]"}) {
    SCOPED_TRACE(std::string(shape));
    std::string json =
        R"({"w":{"dtype":"U8","shape":)" + std::string(shape) + R"(,"data_offsets":[0,2]}})";
    ExpectInvalid(ParseJson(json), "tensor \"w\": shape");
  }
  // Rank above kMaxRank (64 ones: 1 element, valid apart from the rank).
  std::string dims;
  for (size_t i = 0; i <= kMaxRank; ++i) dims += (i ? ",1" : "1");
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"U8","shape":[)" + dims + R"(],"data_offsets":[0,1]}})"),
                "rank 65");
}

TEST(SafetensorsHeaderTest, S10_DataOffsetsInvalid) {
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})"),
                R"(tensor "w": data_offsets [4, 0]: end is before begin)");
  for (std::string_view offsets :
       {"[0]", "[0,1,2]", "[]", "0", "[-1,0]", "[0,1.0]", "[0,281474976710656]", "[\"0\",\"1\"]"}) {
    SCOPED_TRACE(std::string(offsets));
    std::string json =
        R"({"w":{"dtype":"U8","shape":[1],"data_offsets":)" + std::string(offsets) + "}}";
    ExpectInvalid(ParseJson(json), "tensor \"w\": data_offsets");
  }
}

TEST(SafetensorsHeaderTest, S11_OffsetsNotContiguousFromZero) {
  // First tensor does not start at 0.
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})"),
                R"(tensor "w": data_offsets [1, 2] leave a gap: expected begin 0)");
  // Gap between tensors.
  ExpectInvalid(ParseJson(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                          R"("b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})"),
                R"(tensor "b": data_offsets [2, 3] leave a gap: expected begin 1)");
  // Overlap.
  ExpectInvalid(ParseJson(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                          R"("b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})"),
                R"(tensor "b": data_offsets [1, 3] overlap another tensor: expected begin 2)");
}

TEST(SafetensorsHeaderTest, S12_SizeOverflow) {
  // Upstream test_validation_overflow: 2^47 * 2^47 elements overflows 64 bits.
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"U8","shape":[140737488355328,140737488355328],)"
                          R"("data_offsets":[0,16]}})"),
                R"(tensor "w": shape [140737488355328, 140737488355328] element count overflows)");
  // Element count fits, bit count does not: 2^61 F64 elements = 2^67 bits.
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"F64","shape":[2097152,1099511627776],)"
                          R"("data_offsets":[0,8]}})"),
                "bit count overflows");
}

TEST(SafetensorsHeaderTest, S13_MisalignedBitCount) {
  // Upstream test_fp4_misaligned: F4 x 3 = 12 bits.
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})"),
                R"(tensor "w": shape [3] x F4 is 12 bits, not a whole number of bytes)");
  ExpectInvalid(ParseJson(R"({"w":{"dtype":"F6_E2M3","shape":[3],"data_offsets":[0,3]}})"),
                "misaligned");
}

TEST(SafetensorsHeaderTest, S14_OffsetsDoNotMatchShapeAndDtype) {
  ExpectInvalid(ParseJson(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[8,20]}})"),
                R"(tensor "w": data_offsets [8, 20] do not match shape [2, 2] x F32 (16 bytes))");
  // Upstream test_invalid_info flavour: one byte too many for a scalar.
  ExpectInvalid(ParseJson(R"({"s":{"dtype":"F16","shape":[],"data_offsets":[0,3]}})"),
                "do not match shape [] x F16 (2 bytes)");
}

TEST(SafetensorsHeaderTest, S15_FileLengthDoesNotMatchHeader) {
  Bytes file = MakeFile(kTwoTensors, 24);
  const uint64_t good_len = file.size();
  file.push_back(0);  // a trailing byte (polyglot)
  ExpectInvalid(ParseHeader(file, file.size()), "file length " + std::to_string(good_len + 1) +
                                                    " does not match header (expected " +
                                                    std::to_string(good_len) + ")");
  // Short data (upstream test_incomplete_buffer flavour).
  ExpectInvalid(ParseHeader(file, good_len - 1), "file length " + std::to_string(good_len - 1) +
                                                     " does not match header (expected " +
                                                     std::to_string(good_len) + ")");
  EXPECT_TRUE(ParseHeader(file, good_len).ok());
}

// ---- upstream test cases (safetensors tensor.rs) -----------------------------------------

TEST(SafetensorsHeaderTest, UpstreamZeroSizedTensor) {
  Result<SafetensorsHeader> h =
      ParseFile(MakeFile(R"({"z":{"dtype":"F32","shape":[2,0],"data_offsets":[0,0]}})", 0));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(h->tensors.size(), 1u);
  EXPECT_EQ(h->tensors[0].byte_len(), 0u);
  EXPECT_EQ(h->data_len, 0u);
}

TEST(SafetensorsHeaderTest, ZeroSizedTensorsMayShareAnOffset) {
  Result<SafetensorsHeader> h =
      ParseFile(MakeFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                         R"("z1":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},)"
                         R"("z2":{"dtype":"I8","shape":[0,4],"data_offsets":[1,1]},)"
                         R"("b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                         2));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->data_len, 2u);
}

TEST(SafetensorsHeaderTest, UpstreamScalarShape) {
  Result<SafetensorsHeader> h =
      ParseFile(MakeFile(R"({"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})", 8));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE(h->tensors[0].shape.empty());
  EXPECT_EQ(h->tensors[0].byte_len(), 8u);
}

TEST(SafetensorsHeaderTest, NoTensorsIsValid) {
  Result<SafetensorsHeader> h = ParseFile(MakeFile("{}", 0));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE(h->tensors.empty());
  EXPECT_FALSE(h->has_metadata);
  EXPECT_EQ(h->data_len, 0u);
  h = ParseFile(MakeFile(R"({"__metadata__":{}})", 0));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE(h->has_metadata);
  EXPECT_TRUE(h->metadata.empty());
}

TEST(SafetensorsHeaderTest, UpstreamWhitespacePaddedHeader) {
  // Trailing 0x20 padding, as the reference writer emits.
  Result<SafetensorsHeader> h = ParseFile(MakeFile(std::string(kTwoTensors) + "       ", 24));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->header_len, kTwoTensors.size() + 7);
  // test_whitespace_leading_padded_header: leading tab/LF, trailing CR and space (decision:
  // accepted, like the reference reader).
  h = ParseFile(MakeFile("\t\n" + std::string(kTwoTensors) + "\r ", 24));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->tensors.size(), 2u);
  // Other padding bytes are not whitespace.
  ExpectInvalid(ParseFile(MakeFile(std::string(kTwoTensors) + std::string(1, '\0'), 24)), "header");
  ExpectInvalid(ParseFile(MakeFile(std::string(kTwoTensors) + "\v", 24)), "header");
}

TEST(SafetensorsHeaderTest, UpstreamJsonAttackSharedOffsetsRejected) {
  // test_json_attack: ten tensors aliasing the same bytes.
  std::string json = "{";
  for (int i = 0; i < 10; ++i) {
    if (i) json += ',';
    json += "\"weight_" + std::to_string(i) +
            R"(":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";
  }
  json += "}";
  ExpectInvalid(ParseFile(MakeFile(json, 16)), "overlap another tensor");
}

TEST(SafetensorsHeaderTest, UpstreamFp4Misaligned) {
  ExpectInvalid(ParseFile(MakeFile(R"({"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", 2)),
                "misaligned");
  // An even count of F4 is fine: 4 elements = 2 bytes.
  EXPECT_TRUE(
      ParseFile(MakeFile(R"({"w":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}})", 2)).ok());
}

TEST(SafetensorsHeaderTest, UpstreamValidationOverflow) {
  ExpectInvalid(
      ParseFile(MakeFile(R"({"w":{"dtype":"F32","shape":[140737488355328,140737488355328],)"
                         R"("data_offsets":[0,16]}})",
                         16)),
      "overflows");
}

TEST(SafetensorsHeaderTest, UpstreamIncompleteBuffer) {
  // Header says 24 data bytes; the file has 12.
  ExpectInvalid(ParseFile(MakeFile(kTwoTensors, 12)), "does not match header");
}

TEST(SafetensorsHeaderTest, UpstreamNonUtf8AndNotJson) {
  ExpectInvalid(ParseFile(MakeFile("\xff\xff\xff\xff", 0)), "UTF-8");
  ExpectInvalid(ParseFile(MakeFile("{\"a\": not json}", 0)), "header");
  ExpectInvalid(ParseFile(MakeFile("{\"a\": 1", 0)), "invalid JSON");
}

TEST(SafetensorsHeaderTest, JsonOrderDiffersFromOffsetOrder) {
  // Members in reverse offset order: accepted, file order kept in the result.
  constexpr std::string_view kJson = R"({"c":{"dtype":"F16","shape":[1],"data_offsets":[6,8]},)"
                                     R"("b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},)"
                                     R"("__metadata__":{"z":"1","a":"2"},)"
                                     R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  Result<SafetensorsHeader> h = ParseFile(MakeFile(kJson, 8));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(h->tensors.size(), 3u);
  EXPECT_EQ(h->tensors[0].name, "c");
  EXPECT_EQ(h->tensors[1].name, "b");
  EXPECT_EQ(h->tensors[2].name, "a");
  ASSERT_EQ(h->metadata.size(), 2u);
  EXPECT_EQ(h->metadata[0].key, "z");
  EXPECT_EQ(h->metadata[1].key, "a");
  EXPECT_EQ(h->data_len, 8u);
}

// ---- our limits and decisions ------------------------------------------------------------

TEST(SafetensorsHeaderTest, NameLengthLimit) {
  const std::string ok_name(kMaxNameBytes, 'n');
  const std::string long_name(kMaxNameBytes + 1, 'n');
  auto tensor = [](const std::string& name) {
    return "{\"" + name + R"(":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})";
  };
  EXPECT_TRUE(ParseJson(tensor(ok_name)).ok());
  Result<SafetensorsHeader> h = ParseJson(tensor(long_name));
  ExpectInvalid(h, "name of 4097 bytes exceeds 4096");
  EXPECT_LT(h.status().message().size(), 400u);  // the hostile name is cut in the message

  EXPECT_TRUE(ParseJson(R"({"__metadata__":{")" + ok_name + R"(":"v"}})").ok());
  ExpectInvalid(ParseJson(R"({"__metadata__":{")" + long_name + R"(":"v"}})"),
                "__metadata__ key of 4097 bytes exceeds 4096");
}

TEST(SafetensorsHeaderTest, LargestIntegerAccepted) {
  // 2^48 - 1 bytes of U8: the schema's maximum for a dimension and an offset.
  Result<SafetensorsHeader> h = ParseJson(
      R"({"w":{"dtype":"U8","shape":[281474976710655],"data_offsets":[0,281474976710655]}})");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->data_len, kMaxJsonInteger);
}

TEST(SafetensorsHeaderTest, EveryDtypeAccepted) {
  for (const char* name :
       {"BOOL",    "F4",  "F6_E2M3", "F6_E3M2", "U8",          "I8",         "F8_E5M2", "F8_E4M3",
        "F8_E8M0", "I16", "U16",     "F16",     "BF16",        "I32",        "U32",     "F32",
        "C64",     "F64", "I64",     "U64",     "F8_E4M3FNUZ", "F8_E5M2FNUZ"}) {
    SCOPED_TRACE(name);
    Result<Dtype> d = ParseDtype(name);
    ASSERT_TRUE(d.ok());
    const uint64_t len = DtypeBits(*d);  // 8 elements = DtypeBits bytes
    std::string json = std::string(R"({"t":{"dtype":")") + name +
                       R"(","shape":[8],"data_offsets":[0,)" + std::to_string(len) + "]}}";
    Result<SafetensorsHeader> h = ParseJson(json);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    EXPECT_EQ(h->tensors[0].dtype, *d);
  }
}

TEST(SafetensorsHeaderTest, ParseHeaderNeedsWholePrefix) {
  Bytes file = MakeFile(kTwoTensors, 24);
  ByteSpan partial = ByteSpan(file).first(20);
  ExpectInvalid(ParseHeader(partial, file.size()), "fewer than 8 + N");
}

// ---- serializer --------------------------------------------------------------------------

TEST(SafetensorsHeaderTest, JsonQuoteMatchesSerdeJson) {
  EXPECT_EQ(JsonQuote(""), R"("")");
  EXPECT_EQ(JsonQuote("plain"), R"("plain")");
  EXPECT_EQ(JsonQuote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(JsonQuote("\b\t\n\f\r"), R"("\b\t\n\f\r")");
  EXPECT_EQ(JsonQuote(std::string("\x00\x01\x0b\x1f", 4)), R"("\u0000\u0001\u000b\u001f")");
  EXPECT_EQ(JsonQuote("a/b\x7f"), "\"a/b\x7f\"");
  EXPECT_EQ(JsonQuote("h\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80"),
            "\"h\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"");
  EXPECT_EQ(JsonQuote(" ~"), "\" ~\"");
}

TEST(SafetensorsHeaderTest, SerializeHeaderJsonIsCompactMetadataFirst) {
  SafetensorsHeader h;
  h.has_metadata = true;
  h.metadata = {{"format", "pt"}, {"k\n", "v\""}};
  h.tensors = {{"w", Dtype::kBF16, {2, 3}, 0, 12}, {"s", Dtype::kU8, {}, 12, 13}};
  EXPECT_EQ(SerializeHeaderJson(h), R"({"__metadata__":{"format":"pt","k\n":"v\""},)"
                                    R"("w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},)"
                                    R"("s":{"dtype":"U8","shape":[],"data_offsets":[12,13]}})");
  h.has_metadata = false;
  h.tensors.clear();
  EXPECT_EQ(SerializeHeaderJson(h), "{}");
  h.has_metadata = true;
  h.metadata.clear();
  EXPECT_EQ(SerializeHeaderJson(h), R"({"__metadata__":{}})");
}

TEST(SafetensorsHeaderTest, BuildHeaderPrefixPadsWithSpaces) {
  Bytes p = BuildHeaderPrefix("{}");
  Bytes expected = U64Le(8);
  for (char c : std::string_view("{}      ")) expected.push_back(static_cast<uint8_t>(c));
  EXPECT_EQ(p, expected);
  EXPECT_EQ(BuildHeaderPrefix("12345678").size(), 16u);  // already aligned: no padding
  EXPECT_EQ(BuildHeaderPrefix("123456789", 16).size(), 8u + 16u);
  EXPECT_EQ(BuildHeaderPrefix("abc", 1).size(), 8u + 3u);
}

TEST(SafetensorsHeaderTest, RoundTripParseOfSerialize) {
  SafetensorsHeader h;
  h.has_metadata = true;
  h.metadata = {{"format", "pt"}, {"\x01 ctl/\x7f", "\xc3\xa9\t"}};
  h.tensors = {{"b", Dtype::kF4, {4}, 6, 8},
               {"a\"\\", Dtype::kF32, {1}, 0, 4},
               {"empty", Dtype::kC64, {0, 3}, 4, 4},
               {"c", Dtype::kI16, {}, 4, 6}};
  Bytes prefix = BuildHeaderPrefix(SerializeHeaderJson(h));
  h.header_len = prefix.size() - 8;
  h.data_len = 8;
  Bytes file = prefix;
  file.resize(file.size() + h.data_len, 0xAB);
  Result<SafetensorsHeader> parsed = ParseFile(file);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->header_len, h.header_len);
  EXPECT_EQ(parsed->has_metadata, h.has_metadata);
  EXPECT_EQ(parsed->data_len, h.data_len);
  ASSERT_EQ(parsed->metadata.size(), h.metadata.size());
  for (size_t i = 0; i < h.metadata.size(); ++i) {
    EXPECT_EQ(parsed->metadata[i].key, h.metadata[i].key);
    EXPECT_EQ(parsed->metadata[i].value, h.metadata[i].value);
  }
  ASSERT_EQ(parsed->tensors.size(), h.tensors.size());
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(parsed->tensors[i].name, h.tensors[i].name);
    EXPECT_EQ(parsed->tensors[i].dtype, h.tensors[i].dtype);
    EXPECT_EQ(parsed->tensors[i].shape, h.tensors[i].shape);
    EXPECT_EQ(parsed->tensors[i].begin, h.tensors[i].begin);
    EXPECT_EQ(parsed->tensors[i].end, h.tensors[i].end);
  }
  // And serializing the parsed header gives the same bytes again.
  EXPECT_EQ(BuildHeaderPrefix(SerializeHeaderJson(*parsed)), prefix);
}

// ---- files written by the Python safetensors package -------------------------------------

Bytes ReadFixture(const std::string& name) {
  std::ifstream in(std::string(CTFS_TESTDATA_DIR) + "/safetensors/valid/" + name, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(SafetensorsHeaderTest, ReferenceFilesReserializeByteForByte) {
  for (const char* name : {"mixed_dtypes.safetensors", "no_metadata.safetensors",
                           "escaped_names.safetensors", "no_tensors.safetensors"}) {
    SCOPED_TRACE(name);
    Bytes file = ReadFixture(name);
    ASSERT_GE(file.size(), 8u) << "fixture missing";
    Result<SafetensorsHeader> h = ParseFile(file);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    Bytes prefix = BuildHeaderPrefix(SerializeHeaderJson(*h));
    ASSERT_LE(prefix.size(), file.size());
    EXPECT_EQ(prefix, Bytes(file.begin(), file.begin() + static_cast<ptrdiff_t>(prefix.size())));
    EXPECT_EQ(prefix.size(), h->data_start());
  }
}

TEST(SafetensorsHeaderTest, ReferenceMixedDtypesContent) {
  Bytes file = ReadFixture("mixed_dtypes.safetensors");
  Result<SafetensorsHeader> h = ParseFile(file);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_NE(h->FindMetadata("format"), nullptr);
  EXPECT_EQ(*h->FindMetadata("format"), "pt");
  ASSERT_EQ(h->tensors.size(), 8u);
  // The reference writes data in dtype-descending order, then by name.
  EXPECT_EQ(h->tensors[0].name, "step");
  EXPECT_EQ(h->tensors[0].dtype, Dtype::kI64);
  EXPECT_TRUE(h->tensors[0].shape.empty());
  const TensorInfo* w = h->FindTensor("model.embed.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, Dtype::kF32);
  EXPECT_EQ(w->shape, (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(w->byte_len(), 48u);
  const TensorInfo* empty = h->FindTensor("empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->byte_len(), 0u);
  EXPECT_EQ(h->FindTensor("mask")->dtype, Dtype::kBool);
  EXPECT_EQ(h->data_len, 86u);
}

TEST(SafetensorsHeaderTest, ReferenceEscapedNames) {
  Result<SafetensorsHeader> h = ParseFile(ReadFixture("escaped_names.safetensors"));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_NE(h->FindTensor("quote\"back\\slash"), nullptr);
  EXPECT_NE(h->FindTensor("tab\tnl\ncr\rbs\bff\f"), nullptr);
  EXPECT_NE(h->FindTensor("ctl\x01\x1f\x7f"
                          "del"),
            nullptr);
  EXPECT_NE(h->FindTensor("path/to/w\xc3\xa9ight\xe4\xb8\xad\xf0\x9f\x98\x80"), nullptr);
}

}  // namespace
}  // namespace ctfs::format
