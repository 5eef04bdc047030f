// SPDX-License-Identifier: Apache-2.0
// Parser and validator of the safetensors container header (rules S1-S15 of style.md §1.2,
// plus our stricter choices of §1.3 and §1.6), and a serializer that writes the header bytes
// the reference writer (Rust safetensors, used by the Python package) writes.
//
// Validation follows safetensors `read_metadata` + `Metadata::validate`: the tensors are
// checked in data-offset order (a stable sort on (begin, end) of a copy), so a header whose
// JSON member order differs from its offset order is accepted, and the result keeps the file
// order. Every error is InvalidArgument; its message names the rule and the tensor.
//
// Whitespace (decision): like the reference reader (serde_json::from_str), we accept JSON
// whitespace (space, tab, CR, LF) both before the root object and after it. The README's
// "MUST begin with {" is not enforced, because files accepted upstream must open here too.
// Anything else before the '{' (notably a UTF-8 byte-order mark, which nlohmann would skip
// silently but serde_json rejects) is an error.
#include "format/safetensors_header.h"

#include <algorithm>
#include <cstddef>
#include <exception>
#include <numeric>
#include <optional>
#include <string>
#include <utility>

#include "base/check.h"
#include "base/checked_math.h"
#include "format/internal/strict_json.h"
#include "format/limits.h"

namespace ctfs::format {
namespace {

using internal::Json;

constexpr std::string_view kMetadataKey = "__metadata__";
constexpr uint64_t kLengthPrefixBytes = 8;

// ---- message helpers ----------------------------------------------------------------------

// Quoted returns `s` as a JSON literal for an error message, cut (on a character boundary) if
// longer than 128 bytes so that a hostile name never makes a huge message.
std::string Quoted(std::string_view s) {
  constexpr size_t kMaxShown = 128;
  if (s.size() <= kMaxShown) return JsonQuote(s);
  size_t cut = kMaxShown;
  while (cut > 0 && (static_cast<uint8_t>(s[cut]) & 0xC0) == 0x80) --cut;
  return JsonQuote(s.substr(0, cut)) + "...";
}

std::string TensorPrefix(std::string_view name) { return "tensor " + Quoted(name) + ": "; }

std::string ShapeString(const std::vector<uint64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

std::string OffsetsString(const TensorInfo& t) {
  return "[" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
}

Status TensorError(std::string_view name, const std::string& what) {
  return InvalidArgumentError(TensorPrefix(name) + what);
}

// ---- S4: UTF-8 ----------------------------------------------------------------------------

// Utf8ErrorOffset returns the offset of the first byte that is not part of a well-formed
// UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or
// npos if all of `s` is valid. Same acceptance as Rust's std::str::from_utf8.
size_t Utf8ErrorOffset(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint8_t lo = 0x80;  // allowed range of the second byte
    uint8_t hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (n - i < len) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

bool IsJsonWhitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// ---- members ------------------------------------------------------------------------------

Status ParseMetadata(const Json& value, const std::vector<std::string>& key_order,
                     SafetensorsHeader& header) {
  // S6. A null __metadata__ (which serde would read as None) is rejected: no writer emits it.
  if (!value.is_object()) {
    return InvalidArgumentError("__metadata__ must be an object of string values");
  }
  header.has_metadata = true;
  if (key_order.size() != value.size()) return InternalError("__metadata__ member order lost");
  for (const std::string& key : key_order) {
    const Json& v = value.at(key);
    if (key.size() > kMaxNameBytes) {
      return InvalidArgumentError("__metadata__ key of " + std::to_string(key.size()) +
                                  " bytes exceeds " + std::to_string(kMaxNameBytes));
    }
    if (!v.is_string()) {
      return InvalidArgumentError("__metadata__ value of " + Quoted(key) +
                                  " must be a string, not " + v.type_name());
    }
    header.metadata.push_back(MetadataEntry{key, v.get<std::string>()});
  }
  return Status::Ok();
}

Result<TensorInfo> ParseTensor(const std::string& name, const Json& value) {
  if (name.size() > kMaxNameBytes) {
    return TensorError(name, "name of " + std::to_string(name.size()) + " bytes exceeds " +
                                 std::to_string(kMaxNameBytes));
  }
  // S7: an object with exactly dtype, shape and data_offsets.
  if (!value.is_object()) {
    return TensorError(name, std::string("entry must be an object, not ") + value.type_name());
  }
  const Json* dtype_json = nullptr;
  const Json* shape_json = nullptr;
  const Json* offsets_json = nullptr;
  for (const auto& [key, v] : value.items()) {
    if (key == "dtype") {
      dtype_json = &v;
    } else if (key == "shape") {
      shape_json = &v;
    } else if (key == "data_offsets") {
      offsets_json = &v;
    } else {
      return TensorError(name, "unknown field " + Quoted(key));
    }
  }
  if (dtype_json == nullptr) return TensorError(name, "missing field \"dtype\"");
  if (shape_json == nullptr) return TensorError(name, "missing field \"shape\"");
  if (offsets_json == nullptr) return TensorError(name, "missing field \"data_offsets\"");

  TensorInfo t;
  t.name = name;

  // S8.
  if (!dtype_json->is_string()) return TensorError(name, "dtype must be a string");
  const auto& dtype_name = dtype_json->get_ref<const std::string&>();
  Result<Dtype> dtype = ParseDtype(dtype_name);
  if (!dtype.ok()) return TensorError(name, "unknown dtype " + Quoted(dtype_name));
  t.dtype = *dtype;

  // S9.
  if (!shape_json->is_array()) {
    return TensorError(name, "shape must be an array of non-negative integers");
  }
  if (shape_json->size() > kMaxRank) {
    return TensorError(name, "shape has rank " + std::to_string(shape_json->size()) +
                                 ", more than " + std::to_string(kMaxRank));
  }
  for (const Json& dim : *shape_json) {
    Result<uint64_t> d = internal::GetU64(dim, "shape dimension");
    if (!d.ok()) return d.status().WithContext(TensorPrefix(name) + "shape");
    t.shape.push_back(*d);
  }

  // S10.
  if (!offsets_json->is_array() || offsets_json->size() != 2) {
    return TensorError(name, "data_offsets must be an array of exactly 2 integers");
  }
  Result<uint64_t> begin = internal::GetU64((*offsets_json)[0], "begin");
  if (!begin.ok()) return begin.status().WithContext(TensorPrefix(name) + "data_offsets");
  Result<uint64_t> end = internal::GetU64((*offsets_json)[1], "end");
  if (!end.ok()) return end.status().WithContext(TensorPrefix(name) + "data_offsets");
  t.begin = *begin;
  t.end = *end;
  if (t.end < t.begin) {
    return TensorError(name, "data_offsets " + OffsetsString(t) + ": end is before begin");
  }
  return t;
}

// CheckSizes applies S12-S14 to one tensor.
Status CheckSizes(const TensorInfo& t) {
  uint64_t num_elements = 1;
  for (uint64_t dim : t.shape) {
    std::optional<uint64_t> product = CheckedMul(num_elements, dim);
    if (!product) {
      return TensorError(t.name, "shape " + ShapeString(t.shape) + " element count overflows");
    }
    num_elements = *product;
  }
  const std::string shape_x_dtype = ShapeString(t.shape) + " x " + std::string(DtypeName(t.dtype));
  std::optional<uint64_t> num_bits = CheckedMul(num_elements, DtypeBits(t.dtype));
  if (!num_bits) return TensorError(t.name, "shape " + shape_x_dtype + " bit count overflows");
  if (*num_bits % 8 != 0) {
    return TensorError(t.name, "shape " + shape_x_dtype + " is " + std::to_string(*num_bits) +
                                   " bits, not a whole number of bytes (misaligned)");
  }
  const uint64_t byte_len = *num_bits / 8;
  if (t.byte_len() != byte_len) {
    return TensorError(t.name, "data_offsets " + OffsetsString(t) + " do not match shape " +
                                   shape_x_dtype + " (" + std::to_string(byte_len) + " bytes)");
  }
  return Status::Ok();
}

// ValidateLayout applies S11-S14 in offset order (stable sort on (begin, end), as upstream)
// and returns the length of the data region.
Result<uint64_t> ValidateLayout(const std::vector<TensorInfo>& tensors) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::pair(tensors[a].begin, tensors[a].end) <
           std::pair(tensors[b].begin, tensors[b].end);
  });
  uint64_t next = 0;
  for (size_t i : order) {
    const TensorInfo& t = tensors[i];
    if (t.begin != next) {
      // S11. Zero-length tensors may share an offset (they alias no bytes), as upstream.
      const char* what = t.begin > next ? " leave a gap: expected begin "
                                        : " overlap another tensor: expected begin ";
      return TensorError(t.name, "data_offsets " + OffsetsString(t) + what + std::to_string(next) +
                                     " (tensors must be contiguous "
                                     "from offset 0)");
    }
    next = t.end;
    CTFS_RETURN_IF_ERROR(CheckSizes(t));
  }
  return next;
}

Result<SafetensorsHeader> ParseHeaderJsonImpl(ByteSpan json_bytes) {
  if (json_bytes.size() > kMaxHeaderBytes) {
    return InvalidArgumentError("header too large: " + std::to_string(json_bytes.size()) +
                                " bytes exceeds " + std::to_string(kMaxHeaderBytes));
  }
  const std::string_view text = AsStringView(json_bytes);
  // S4.
  if (size_t bad = Utf8ErrorOffset(text); bad != std::string_view::npos) {
    return InvalidArgumentError("header is not valid UTF-8 (byte " + std::to_string(bad) +
                                " of the JSON text)");
  }
  // S5. See the whitespace decision at the top of this file.
  size_t first = 0;
  while (first < text.size() && IsJsonWhitespace(text[first])) ++first;
  if (first == text.size() || text[first] != '{') {
    return InvalidArgumentError("header JSON must be an object beginning with '{'");
  }
  internal::MemberOrder order;
  order.nested_key = kMetadataKey;
  CTFS_ASSIGN_OR_RETURN(Json root, internal::ParseStrictJson(text, "header", &order));
  if (!root.is_object()) return InvalidArgumentError("header JSON must be an object");
  if (order.root.size() != root.size()) return InternalError("header member order lost");

  SafetensorsHeader header;
  header.header_len = json_bytes.size();
  for (const std::string& key : order.root) {
    const Json& value = root.at(key);
    if (key == kMetadataKey) {
      CTFS_RETURN_IF_ERROR(ParseMetadata(value, order.nested, header));
      continue;
    }
    CTFS_ASSIGN_OR_RETURN(TensorInfo t, ParseTensor(key, value));
    header.tensors.push_back(std::move(t));
  }
  CTFS_ASSIGN_OR_RETURN(header.data_len, ValidateLayout(header.tensors));
  return header;
}

void AppendU64Le(Bytes& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

const std::string* SafetensorsHeader::FindMetadata(std::string_view key) const {
  for (const MetadataEntry& e : metadata) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

const TensorInfo* SafetensorsHeader::FindTensor(std::string_view name) const {
  for (const TensorInfo& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<uint64_t> ParseHeaderLength(ByteSpan first_bytes, uint64_t file_len) {
  // S1. The messages lead with "not a safetensors file": the usual reason a length is
  // impossible is that the file is something else (text, an image), whose first 8 bytes read
  // as an absurd number.
  if (file_len < kLengthPrefixBytes) {
    return InvalidArgumentError("not a safetensors file (header too small: the file has " +
                                std::to_string(file_len) +
                                " bytes, fewer than the 8-byte header length)");
  }
  if (first_bytes.size() < kLengthPrefixBytes) {
    return InvalidArgumentError("header too small: got " + std::to_string(first_bytes.size()) +
                                " bytes of the 8-byte length prefix");
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | first_bytes[static_cast<size_t>(i)];
  // S2.
  if (n > kMaxHeaderBytes) {
    return InvalidArgumentError(
        "not a safetensors file (header too large: its first 8 bytes give a header length of " +
        std::to_string(n) + " bytes, more than the " + std::to_string(kMaxHeaderBytes) +
        "-byte limit" +
        (n > file_len ? " and than the file's " + std::to_string(file_len) + " bytes" : "") + ")");
  }
  // S3.
  std::optional<uint64_t> json_end = CheckedAdd(kLengthPrefixBytes, n);
  if (!json_end || *json_end > file_len) {
    return InvalidArgumentError(
        "not a safetensors file, or a truncated one (invalid header length: its first 8 bytes "
        "give a header length of N = " +
        std::to_string(n) + " bytes; 8 + N exceeds the file length " + std::to_string(file_len) +
        ")");
  }
  return n;
}

Result<SafetensorsHeader> ParseHeaderJson(ByteSpan json_bytes) {
  try {
    return ParseHeaderJsonImpl(json_bytes);
  } catch (const std::exception& e) {
    // Not expected (types are checked before every access), but nothing may escape format/.
    return InvalidArgumentError(std::string("header: unexpected JSON error (") + e.what() + ")");
  }
}

Result<SafetensorsHeader> ParseHeader(ByteSpan prefix, uint64_t file_len) {
  CTFS_ASSIGN_OR_RETURN(
      uint64_t n, ParseHeaderLength(prefix.first(std::min<size_t>(prefix.size(), 8)), file_len));
  // n <= kMaxHeaderBytes, so 8 + n cannot overflow.
  if (prefix.size() - kLengthPrefixBytes < n) {
    return InvalidArgumentError(
        "header prefix holds " + std::to_string(prefix.size()) +
        " bytes, fewer than 8 + N = " + std::to_string(kLengthPrefixBytes + n));
  }
  CTFS_ASSIGN_OR_RETURN(SafetensorsHeader header,
                        ParseHeaderJson(prefix.subspan(kLengthPrefixBytes, n)));
  // S15: the data region ends exactly at the end of the file.
  std::optional<uint64_t> expected = CheckedAdd(kLengthPrefixBytes + n, header.data_len);
  if (!expected || *expected != file_len) {
    return InvalidArgumentError(
        "file length " + std::to_string(file_len) + " does not match header (expected " +
        (expected ? std::to_string(*expected) : std::string("overflow")) + ")");
  }
  return header;
}

std::string JsonQuote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default: {
        const auto u = static_cast<uint8_t>(c);
        if (u < 0x20) {
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0xF];
        } else {
          out += c;  // '/', DEL and non-ASCII bytes are written raw, as serde_json does
        }
      }
    }
  }
  out += '"';
  return out;
}

std::string SerializeHeaderJson(const SafetensorsHeader& header) {
  std::string out = "{";
  bool first_member = true;
  auto comma = [&] {
    if (!first_member) out += ',';
    first_member = false;
  };
  if (header.has_metadata) {
    comma();
    out += "\"__metadata__\":{";
    for (size_t i = 0; i < header.metadata.size(); ++i) {
      if (i > 0) out += ',';
      out += JsonQuote(header.metadata[i].key);
      out += ':';
      out += JsonQuote(header.metadata[i].value);
    }
    out += '}';
  }
  for (const TensorInfo& t : header.tensors) {
    comma();
    out += JsonQuote(t.name);
    out += ":{\"dtype\":\"";
    out += DtypeName(t.dtype);
    out += "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i > 0) out += ',';
      out += std::to_string(t.shape[i]);
    }
    out += "],\"data_offsets\":[";
    out += std::to_string(t.begin);
    out += ',';
    out += std::to_string(t.end);
    out += "]}";
  }
  out += '}';
  return out;
}

Bytes BuildHeaderPrefix(std::string_view json, uint64_t align) {
  CTFS_CHECK(align > 0);
  const uint64_t n = CeilDiv(json.size(), align) * align;
  Bytes out;
  out.reserve(kLengthPrefixBytes + n);
  AppendU64Le(out, n);
  out.insert(out.end(), json.begin(), json.end());
  out.resize(kLengthPrefixBytes + n, static_cast<uint8_t>(' '));
  return out;
}

}  // namespace ctfs::format
