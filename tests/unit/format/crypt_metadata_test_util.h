// SPDX-License-Identifier: Apache-2.0
// Shared helpers of the crypt_metadata tests: build reserved-key JSON texts and headers.
#ifndef CTFS_TESTS_UNIT_FORMAT_CRYPT_METADATA_TEST_UTIL_H_
#define CTFS_TESTS_UNIT_FORMAT_CRYPT_METADATA_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "format/base64.h"
#include "format/crypt_metadata.h"
#include "format/limits.h"

namespace ctfs::format::testutil {

// --- Building headers by hand ------------------------------------------------------------

inline std::string Q(std::string_view s) { return "\"" + std::string(s) + "\""; }
inline std::string B64(size_t n, uint8_t fill = 0xab) { return Base64Encode(Bytes(n, fill)); }

// An object's members as (name, raw JSON value text), in order.
using Fields = std::vector<std::pair<std::string, std::string>>;

inline std::string ObjText(const Fields& fields) {
  std::string out = "{";
  for (const auto& [k, v] : fields) {
    if (out.size() > 1) out += ",";
    out += Q(k) + ":" + v;
  }
  return out + "}";
}

inline Fields With(Fields f, const std::string& key, const std::string& value) {
  for (auto& [k, v] : f) {
    if (k == key) {
      v = value;
      return f;
    }
  }
  f.emplace_back(key, value);
  return f;
}

inline Fields Without(Fields f, const std::string& key) {
  std::erase_if(f, [&](const auto& kv) { return kv.first == key; });
  return f;
}

inline Fields V2Entry(size_t num_tags, uint8_t base_iv_fill = 0x00) {
  return {{"wrapped_key", Q(B64(32, 0x11))},
          {"key_iv", Q(B64(12, 0x22))},
          {"key_tag", Q(B64(16, 0x33))},
          {"base_iv", Q(B64(12, base_iv_fill))},
          {"tags", Q(B64(16 * num_tags, 0x44))}};
}

inline Fields V1Entry(bool empty_tensor) {
  return {{"wrapped_key", Q(B64(32, 0x11))},
          {"key_iv", Q(B64(12, 0x22))},
          {"key_tag", Q(B64(16, 0x33))},
          {"iv", Q(empty_tensor ? "" : B64(12, 0x55))},
          {"tag", Q(empty_tensor ? "" : B64(16, 0x66))}};
}

const Fields kEncV2 = {{"alg", Q("aes256gcm")}, {"kid", Q("enc-key")}, {"kty", Q("oct")}};
const Fields kSignV2 = {{"alg", Q("ed25519")}, {"kid", Q("sign-key")}, {"kty", Q("okp")}};

inline Fields KeysV2() {
  return {{"chunk_size", "8"},
          {"enc", ObjText(kEncV2)},
          {"sign", ObjText(kSignV2)},
          {"version", Q("2")}};
}

inline Fields KeysV1() {
  return {{"enc", ObjText(kEncV2)}, {"sign", ObjText(kSignV2)}, {"version", Q("1")}};
}

constexpr char kPolicyText[] =
    R"({"local":"package model\nallow = true","remote":"package model\nallow = true"})";

inline TensorInfo Tensor(std::string name, Dtype dtype, std::vector<uint64_t> shape, uint64_t begin,
                         uint64_t end) {
  TensorInfo t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.begin = begin;
  t.end = end;
  return t;
}

// The tensor table of every test: b (8 bytes: 1 chunk of 8), w (16 bytes: 2 chunks), z (empty).
struct Builder {
  std::optional<std::string> crypto_keys = ObjText(KeysV2());
  std::vector<std::pair<std::string, Fields>> entries = {
      {"b", V2Entry(1)}, {"w", V2Entry(2)}, {"z", V2Entry(1)}};
  std::optional<std::string> encryption_override;  // replaces the text built from `entries`
  bool with_encryption = true;
  std::optional<std::string> policy = kPolicyText;
  std::optional<std::string> signature = B64(64, 0x77);
  std::vector<TensorInfo> tensors = {Tensor("b", Dtype::kF32, {2}, 0, 8),
                                     Tensor("w", Dtype::kF32, {2, 2}, 8, 24),
                                     Tensor("z", Dtype::kF32, {0}, 24, 24)};

  Builder& Entry(const std::string& name, Fields f) {
    for (auto& [n, e] : entries) {
      if (n == name) {
        e = std::move(f);
        return *this;
      }
    }
    entries.emplace_back(name, std::move(f));
    return *this;
  }

  std::string EncryptionText() const {
    if (encryption_override.has_value()) return *encryption_override;
    std::string out = "{";
    for (const auto& [name, fields] : entries) {
      if (out.size() > 1) out += ",";
      out += Q(name) + ":" + ObjText(fields);
    }
    return out + "}";
  }

  SafetensorsHeader Build() const {
    SafetensorsHeader h;
    h.has_metadata = true;
    h.metadata.push_back({"format", "pt"});
    if (crypto_keys) h.metadata.push_back({kCryptoKeysKey, *crypto_keys});
    if (with_encryption) h.metadata.push_back({kEncryptionKey, EncryptionText()});
    if (policy) h.metadata.push_back({kPolicyKey, *policy});
    if (signature) h.metadata.push_back({kSignatureKey, *signature});
    h.tensors = tensors;
    for (const TensorInfo& t : tensors) h.data_len = std::max(h.data_len, t.end);
    return h;
  }

  Result<CryptMetadata> Parse() const { return ParseCryptMetadata(Build()); }
};

inline Builder V1Builder() {
  Builder b;
  b.crypto_keys = ObjText(KeysV1());
  b.entries = {{"b", V1Entry(false)}, {"w", V1Entry(false)}, {"z", V1Entry(true)}};
  return b;
}

// ExpectInvalid: InvalidArgument whose message contains every needle.
inline void ExpectInvalid(const Result<CryptMetadata>& r,
                          std::initializer_list<std::string_view> needles) {
  ASSERT_FALSE(r.ok()) << "unexpectedly accepted";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  for (std::string_view n : needles) {
    EXPECT_NE(r.status().message().find(n), std::string::npos)
        << "message lacks \"" << n << "\": " << r.status().message();
  }
}

inline Bytes Fill(size_t n, uint8_t v) { return Bytes(n, v); }

// --- Valid sets ------------------------------------------------------------------------------

}  // namespace ctfs::format::testutil

#endif  // CTFS_TESTS_UNIT_FORMAT_CRYPT_METADATA_TEST_UTIL_H_
