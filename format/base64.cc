// SPDX-License-Identifier: Apache-2.0
// Strict standard base64 (RFC 4648 §4, '=' padding required). Decoding accepts exactly one
// spelling per byte string: the length must be a multiple of 4, only the standard alphabet,
// padding only as the last one or two characters of the last quantum, and the unused low bits
// of the last data character must be zero. Error messages never echo the input (it may be key
// material).
#include "format/base64.h"

#include <array>
#include <cstdint>
#include <string>

#include "format/internal/base64_internal.h"

namespace ctfs::format {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr uint8_t kInvalid = 0xff;

constexpr std::array<uint8_t, 256> MakeDecodeTable() {
  std::array<uint8_t, 256> table{};
  for (auto& v : table) v = kInvalid;
  for (uint8_t i = 0; i < 64; ++i) table[static_cast<uint8_t>(kAlphabet[i])] = i;
  return table;
}
constexpr std::array<uint8_t, 256> kDecodeTable = MakeDecodeTable();

Status Invalid(const char* why) {
  return InvalidArgumentError(std::string("invalid base64: ") + why);
}

// DecodedLen validates the shape of `text` (length, padding placement) and returns the number
// of decoded bytes.
Result<size_t> DecodedLen(std::string_view text) {
  if (text.size() % 4 != 0) return Invalid("length is not a multiple of 4");
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') {
    pad = 1;
    if (text[text.size() - 2] == '=') pad = 2;
  }
  return text.size() / 4 * 3 - pad;
}

// DecodeInto decodes `text` (already shaped by DecodedLen) into `out`, which holds exactly
// `out_len` bytes. Every character is checked here, so whitespace, '-', '_' and misplaced '='
// are rejected, as are non-zero unused bits.
Status DecodeInto(std::string_view text, uint8_t* out, size_t out_len) {
  size_t o = 0;
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    uint32_t v[4];
    size_t data_chars = 4;
    for (size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && last && j >= 2) {
        // Padding: only in the last quantum, positions 2-3, and nothing but '=' after it.
        if (j == 2 && text[i + 3] != '=') return Invalid("misplaced padding");
        data_chars = j;
        break;
      }
      v[j] = kDecodeTable[static_cast<uint8_t>(c)];
      if (v[j] == kInvalid) return Invalid("character outside the standard alphabet");
    }
    if (data_chars == 4) {
      const uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
      out[o++] = static_cast<uint8_t>(n >> 16);
      out[o++] = static_cast<uint8_t>(n >> 8);
      out[o++] = static_cast<uint8_t>(n);
    } else if (data_chars == 3) {
      if ((v[2] & 0x03) != 0) return Invalid("non-zero unused bits");
      const uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6);
      out[o++] = static_cast<uint8_t>(n >> 16);
      out[o++] = static_cast<uint8_t>(n >> 8);
    } else {  // data_chars == 2
      if ((v[1] & 0x0f) != 0) return Invalid("non-zero unused bits");
      const uint32_t n = (v[0] << 18) | (v[1] << 12);
      out[o++] = static_cast<uint8_t>(n >> 16);
    }
  }
  // DecodedLen and the loop agree on the padding, so this is an invariant, not input.
  CTFS_CHECK(o == out_len);
  return Status::Ok();
}

}  // namespace

namespace internal {

size_t Base64EncodedLen(size_t n) { return (n + 2) / 3 * 4; }

void Base64EncodeTo(ByteSpan data, char* out) {
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t n = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    *out++ = kAlphabet[(n >> 18) & 63];
    *out++ = kAlphabet[(n >> 12) & 63];
    *out++ = kAlphabet[(n >> 6) & 63];
    *out++ = kAlphabet[n & 63];
  }
  const size_t rest = data.size() - i;
  if (rest == 1) {
    const uint32_t n = uint32_t{data[i]} << 16;
    *out++ = kAlphabet[(n >> 18) & 63];
    *out++ = kAlphabet[(n >> 12) & 63];
    *out++ = '=';
    *out++ = '=';
  } else if (rest == 2) {
    const uint32_t n = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    *out++ = kAlphabet[(n >> 18) & 63];
    *out++ = kAlphabet[(n >> 12) & 63];
    *out++ = kAlphabet[(n >> 6) & 63];
    *out++ = '=';
  }
}

void Base64EncodeAppend(ByteSpan data, std::string* out) {
  const size_t old_len = out->size();
  out->resize(old_len + Base64EncodedLen(data.size()));
  Base64EncodeTo(data, out->data() + old_len);
}

}  // namespace internal

std::string Base64Encode(ByteSpan data) {
  std::string out;
  out.reserve(internal::Base64EncodedLen(data.size()));
  internal::Base64EncodeAppend(data, &out);
  return out;
}

Result<Bytes> Base64Decode(std::string_view text) {
  CTFS_ASSIGN_OR_RETURN(const size_t len, DecodedLen(text));
  Bytes out(len);
  CTFS_RETURN_IF_ERROR(DecodeInto(text, out.data(), out.size()));
  return out;
}

Result<SecretBytes> Base64DecodeSecret(std::string_view text) {
  CTFS_ASSIGN_OR_RETURN(const size_t len, DecodedLen(text));
  // Decode straight into the secret buffer; on error it is wiped by its destructor.
  SecretBytes out(len);
  CTFS_RETURN_IF_ERROR(DecodeInto(text, out.data(), out.size()));
  return out;
}

}  // namespace ctfs::format
