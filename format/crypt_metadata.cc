// SPDX-License-Identifier: Apache-2.0
// The reserved CryptoTensors metadata keys (cryptotensors-format.md §1.2-1.6, style.md §1.6):
// strict parsing of __crypto_keys__, __encryption__, __policy__ and __signature__, cross-checked
// against the tensor table; the chunk nonce of §2.4; and the writer's byte-exact JSON text.
// Every JSON value is type-checked before it is read, so no nlohmann exception can escape.
#include "format/crypt_metadata.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/checked_math.h"
#include "format/base64.h"
#include "format/internal/strict_json.h"
#include "format/limits.h"

namespace ctfs::format {
namespace {

using internal::Json;

constexpr std::string_view kWrappedKey = "wrapped_key";
constexpr std::string_view kKeyIv = "key_iv";
constexpr std::string_view kKeyTag = "key_tag";
constexpr std::string_view kIv = "iv";
constexpr std::string_view kTag = "tag";
constexpr std::string_view kBaseIv = "base_iv";
constexpr std::string_view kTags = "tags";

Status Invalid(std::string_view where, std::string_view what) {
  return InvalidArgumentError(std::string(where) + ": " + std::string(what));
}

bool IsOneOf(std::string_view key, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), key) != names.end();
}

// RequireObject checks that `v` is a JSON object whose members are all in `allowed`.
Status RequireObject(const Json& v, std::string_view where,
                     std::initializer_list<std::string_view> allowed) {
  if (!v.is_object()) return Invalid(where, "expected a JSON object");
  for (const auto& member : v.items()) {
    if (!IsOneOf(member.key(), allowed)) {
      return Invalid(where, "unknown member " + JsonQuote(member.key()));
    }
  }
  return Status::Ok();
}

const Json* FindMember(const Json& obj, std::string_view key) {
  auto it = obj.find(std::string(key));
  return it == obj.end() ? nullptr : &*it;
}

Result<std::optional<std::string>> OptionalString(const Json& obj, std::string_view key,
                                                  const std::string& where) {
  const Json* v = FindMember(obj, key);
  if (v == nullptr) return std::optional<std::string>();
  CTFS_ASSIGN_OR_RETURN(std::string s, internal::GetString(*v, where + "." + std::string(key)));
  return std::optional<std::string>(std::move(s));
}

Result<std::string> RequiredString(const Json& obj, std::string_view key,
                                   const std::string& where) {
  const Json* v = FindMember(obj, key);
  if (v == nullptr) return Invalid(where, "missing member \"" + std::string(key) + "\"");
  return internal::GetString(*v, where + "." + std::string(key));
}

// ParseKeyDescriptor parses __crypto_keys__.enc or .sign (KeyMaterial without key bytes).
Result<KeyDescriptor> ParseKeyDescriptor(const Json& obj, std::string_view slot,
                                         std::string_view expected_kty) {
  const std::string where = std::string(kCryptoKeysKey) + "." + std::string(slot);
  CTFS_RETURN_IF_ERROR(RequireObject(obj, where, {"kty", "alg", "kid", "jku"}));
  KeyDescriptor d;
  CTFS_ASSIGN_OR_RETURN(d.kty, RequiredString(obj, "kty", where));
  if (d.kty != expected_kty) {
    return Invalid(where + ".kty",
                   "expected \"" + std::string(expected_kty) + "\", got " + JsonQuote(d.kty));
  }
  CTFS_ASSIGN_OR_RETURN(d.alg, RequiredString(obj, "alg", where));
  CTFS_ASSIGN_OR_RETURN(d.kid, OptionalString(obj, "kid", where));
  CTFS_ASSIGN_OR_RETURN(d.jku, OptionalString(obj, "jku", where));
  return d;
}

Result<CryptoKeys> ParseCryptoKeys(const std::string& text) {
  const std::string where = kCryptoKeysKey;
  CTFS_ASSIGN_OR_RETURN(Json j, internal::ParseStrictJson(text, where));
  CTFS_RETURN_IF_ERROR(RequireObject(j, where, {"version", "chunk_size", "enc", "sign"}));
  CryptoKeys keys;
  const Json* version = FindMember(j, "version");
  if (version == nullptr) return Invalid(where, "missing version");
  CTFS_ASSIGN_OR_RETURN(keys.version, internal::GetString(*version, where + ".version"));
  if (keys.version != "1" && keys.version != "2") {
    return Invalid(where,
                   "unsupported version " + JsonQuote(keys.version) + " (supported: \"1\", \"2\")");
  }
  if (const Json* cs = FindMember(j, "chunk_size"); cs != nullptr) {
    // The reference reads chunk_size as any u64 > 0, so the 2^48 cap of GetU64 is not applied.
    if (!cs->is_number_unsigned()) {
      return Invalid(where + ".chunk_size", "expected a positive integer");
    }
    const uint64_t chunk_size = cs->get<uint64_t>();
    if (chunk_size == 0) return Invalid(where + ".chunk_size", "must be > 0");
    keys.chunk_size = chunk_size;
  }
  const Json* enc = FindMember(j, "enc");
  if (enc == nullptr) return Invalid(where, "missing enc");
  CTFS_ASSIGN_OR_RETURN(keys.enc, ParseKeyDescriptor(*enc, "enc", "oct"));
  const Json* sign = FindMember(j, "sign");
  if (sign == nullptr) return Invalid(where, "missing sign");
  CTFS_ASSIGN_OR_RETURN(keys.sign, ParseKeyDescriptor(*sign, "sign", "okp"));
  if (!IsEd25519AlgName(keys.sign.alg)) {
    return Invalid(where + ".sign.alg", "unsupported signature algorithm " +
                                            JsonQuote(keys.sign.alg) + " (supported: ed25519)");
  }
  return keys;
}

// DecodeField decodes the base64 string member `key` of an __encryption__ entry. A missing
// member decodes as nullopt.
Result<std::optional<Bytes>> DecodeField(const Json& entry, std::string_view key,
                                         const std::string& where) {
  const Json* v = FindMember(entry, key);
  if (v == nullptr) return std::optional<Bytes>();
  const std::string field = where + "." + std::string(key);
  if (!v->is_string()) return Invalid(field, "expected a base64 string");
  auto decoded = Base64Decode(v->get_ref<const std::string&>());
  if (!decoded.ok()) return decoded.status().WithContext(field);
  return std::optional<Bytes>(std::move(decoded).value());
}

constexpr size_t kAnyLen = SIZE_MAX;

// RequiredField decodes member `key`, which must exist and (unless kAnyLen) have
// `expected_len` bytes.
Result<Bytes> RequiredField(const Json& entry, std::string_view key, const std::string& where,
                            size_t expected_len) {
  CTFS_ASSIGN_OR_RETURN(std::optional<Bytes> b, DecodeField(entry, key, where));
  if (!b.has_value()) return Invalid(where, "missing field \"" + std::string(key) + "\"");
  if (expected_len != kAnyLen && b->size() != expected_len) {
    return Invalid(where + "." + std::string(key), "expected " + std::to_string(expected_len) +
                                                       " bytes, got " + std::to_string(b->size()));
  }
  return std::move(*b);
}

// ParseEntry parses and cross-checks one __encryption__ member against its tensor.
Result<TensorCrypto> ParseEntry(const std::string& name, const Json& entry,
                                const TensorInfo& tensor, const CryptoKeys& keys, AeadAlg alg) {
  const std::string where = std::string(kEncryptionKey) + ": tensor " + JsonQuote(name);
  const bool chunked = keys.chunked();
  if (!entry.is_object()) return Invalid(where, "expected a JSON object");
  for (const auto& member : entry.items()) {
    const std::string& key = member.key();
    if (IsOneOf(key, {kWrappedKey, kKeyIv, kKeyTag})) continue;
    if (chunked && IsOneOf(key, {kBaseIv, kTags})) continue;
    if (!chunked && IsOneOf(key, {kIv, kTag})) continue;
    if (IsOneOf(key, {kIv, kTag, kBaseIv, kTags})) {
      return Invalid(where, "field " + JsonQuote(key) + " is not allowed in " +
                                (chunked ? "chunked (v2)" : "whole-tensor (v1)") + " mode");
    }
    return Invalid(where, "unknown field " + JsonQuote(key));
  }
  TensorCrypto tc;
  tc.tensor_name = name;
  CTFS_ASSIGN_OR_RETURN(tc.wrapped_key, RequiredField(entry, kWrappedKey, where, AeadKeyLen(alg)));
  CTFS_ASSIGN_OR_RETURN(tc.key_iv, RequiredField(entry, kKeyIv, where, kAeadNonceLen));
  CTFS_ASSIGN_OR_RETURN(tc.key_tag, RequiredField(entry, kKeyTag, where, kAeadTagLen));
  const uint64_t tensor_len = tensor.byte_len();
  if (chunked) {
    CTFS_ASSIGN_OR_RETURN(tc.base_iv, RequiredField(entry, kBaseIv, where, kAeadNonceLen));
    CTFS_ASSIGN_OR_RETURN(tc.tags, RequiredField(entry, kTags, where, kAnyLen));
    const uint64_t num_chunks = NumChunks(tensor_len, keys.EffectiveChunkSize());
    if (num_chunks > kMaxChunksPerTensor) {
      return Invalid(where, std::to_string(num_chunks) + " chunks exceed the limit of " +
                                std::to_string(kMaxChunksPerTensor));
    }
    if (tc.tags.size() % kAeadTagLen != 0) {
      return Invalid(where + ".tags",
                     "length " + std::to_string(tc.tags.size()) + " is not a multiple of 16");
    }
    if (tc.tags.size() / kAeadTagLen < num_chunks) {
      return Invalid(where + ".tags", "holds " + std::to_string(tc.tags.size() / kAeadTagLen) +
                                          " tags, tensor needs " + std::to_string(num_chunks));
    }
    // The last chunk's nonce must exist (checked u32 counter); the reference writer refuses
    // such a tensor, so a file that has one is corrupt.
    if (!ChunkNonce(tc.base_iv, num_chunks - 1).ok()) {
      return Invalid(where + ".base_iv",
                     "nonce counter overflows within " + std::to_string(num_chunks) + " chunks");
    }
  } else {
    CTFS_ASSIGN_OR_RETURN(tc.iv, RequiredField(entry, kIv, where, kAnyLen));
    CTFS_ASSIGN_OR_RETURN(tc.tag, RequiredField(entry, kTag, where, kAnyLen));
    const bool empty_pair = tc.iv.empty() && tc.tag.empty();
    if (!(empty_pair && tensor_len == 0)) {
      if (tc.iv.size() != kAeadNonceLen) {
        return Invalid(where + ".iv", "expected 12 bytes, got " + std::to_string(tc.iv.size()) +
                                          (tensor_len != 0 ? "" : " (empty tensor: both empty)"));
      }
      if (tc.tag.size() != kAeadTagLen) {
        return Invalid(where + ".tag", "expected 16 bytes, got " + std::to_string(tc.tag.size()));
      }
    }
  }
  return tc;
}

Result<std::vector<TensorCrypto>> ParseEncryption(const std::string& text,
                                                  const SafetensorsHeader& header,
                                                  const CryptoKeys& keys, AeadAlg alg) {
  CTFS_ASSIGN_OR_RETURN(Json j, internal::ParseStrictJson(text, kEncryptionKey));
  if (!j.is_object()) return Invalid(kEncryptionKey, "expected a JSON object");
  // Index the tensor table once: SafetensorsHeader::FindTensor is a linear scan, and a file
  // may encrypt tens of thousands of tensors.
  std::unordered_map<std::string_view, const TensorInfo*> tensors;
  tensors.reserve(header.tensors.size());
  for (const TensorInfo& t : header.tensors) tensors.emplace(t.name, &t);
  std::vector<TensorCrypto> entries;
  entries.reserve(j.size());
  for (const auto& member : j.items()) {
    const std::string& name = member.key();
    auto found = tensors.find(name);
    const TensorInfo* tensor = found == tensors.end() ? nullptr : found->second;
    if (tensor == nullptr) {
      return Invalid(kEncryptionKey, "entry for unknown tensor " + JsonQuote(name));
    }
    CTFS_ASSIGN_OR_RETURN(TensorCrypto tc, ParseEntry(name, member.value(), *tensor, keys, alg));
    entries.push_back(std::move(tc));
  }
  std::sort(entries.begin(), entries.end(), [](const TensorCrypto& a, const TensorCrypto& b) {
    return a.tensor_name < b.tensor_name;
  });
  return entries;
}

Result<Policy> ParsePolicy(const std::string& text) {
  const std::string where = kPolicyKey;
  CTFS_ASSIGN_OR_RETURN(Json j, internal::ParseStrictJson(text, where));
  CTFS_RETURN_IF_ERROR(RequireObject(j, where, {"local", "remote"}));
  Policy policy;
  CTFS_ASSIGN_OR_RETURN(std::optional<std::string> local, OptionalString(j, "local", where));
  CTFS_ASSIGN_OR_RETURN(std::optional<std::string> remote, OptionalString(j, "remote", where));
  if (local.has_value()) policy.local = std::move(*local);
  if (remote.has_value()) policy.remote = std::move(*remote);
  return policy;
}

Result<Bytes> ParseSignature(const std::string& text) {
  auto sig = Base64Decode(text);
  if (!sig.ok()) return sig.status().WithContext(kSignatureKey);
  if (sig->size() != 64) {
    return Invalid(kSignatureKey, "expected 64 bytes, got " + std::to_string(sig->size()));
  }
  return std::move(sig).value();
}

}  // namespace

const TensorCrypto* CryptMetadata::FindEntry(std::string_view tensor_name) const {
  auto it = std::lower_bound(
      entries.begin(), entries.end(), tensor_name,
      [](const TensorCrypto& e, std::string_view name) { return e.tensor_name < name; });
  if (it == entries.end() || it->tensor_name != tensor_name) return nullptr;
  return &*it;
}

bool IsEncrypted(const SafetensorsHeader& header) {
  return header.FindMetadata(kEncryptionKey) != nullptr;
}

bool IsReservedKey(std::string_view key) {
  return key == kCryptoKeysKey || key == kEncryptionKey || key == kPolicyKey ||
         key == kSignatureKey;
}

uint64_t NumChunks(uint64_t tensor_len, uint64_t chunk_size) {
  CTFS_CHECK(chunk_size > 0);
  return std::max<uint64_t>(1, CeilDiv(tensor_len, chunk_size));
}

Result<CryptMetadata> ParseCryptMetadata(const SafetensorsHeader& header) {
  const std::string* enc_text = header.FindMetadata(kEncryptionKey);
  if (enc_text == nullptr) return InvalidArgumentError("missing __encryption__ (not encrypted)");
  // Same order as the reference: keys, signature, policy.
  for (const char* key : {kCryptoKeysKey, kSignatureKey, kPolicyKey}) {
    if (header.FindMetadata(key) == nullptr) {
      return InvalidArgumentError(std::string("encrypted header lacks ") + key);
    }
  }
  CryptMetadata m;
  CTFS_ASSIGN_OR_RETURN(m.keys, ParseCryptoKeys(*header.FindMetadata(kCryptoKeysKey)));
  auto alg = ParseAeadAlg(m.keys.enc.alg);
  if (!alg.ok()) return alg.status().WithContext(std::string(kCryptoKeysKey) + ".enc.alg");
  m.enc_alg = *alg;
  CTFS_ASSIGN_OR_RETURN(m.entries, ParseEncryption(*enc_text, header, m.keys, m.enc_alg));
  CTFS_ASSIGN_OR_RETURN(m.policy, ParsePolicy(*header.FindMetadata(kPolicyKey)));
  CTFS_ASSIGN_OR_RETURN(m.signature, ParseSignature(*header.FindMetadata(kSignatureKey)));
  return m;
}

Result<std::array<uint8_t, 12>> ChunkNonce(ByteSpan base_iv, uint64_t index) {
  if (base_iv.size() != kAeadNonceLen) {
    return InvalidArgumentError("base nonce must be 12 bytes, got " +
                                std::to_string(base_iv.size()));
  }
  const uint64_t counter = (uint64_t{base_iv[8]} << 24) | (uint64_t{base_iv[9]} << 16) |
                           (uint64_t{base_iv[10]} << 8) | uint64_t{base_iv[11]};
  // counter < 2^32, so counter + index cannot wrap a u64 once index < 2^32.
  if (index > UINT32_MAX || counter + index > UINT32_MAX) {
    return DataLossError("chunk nonce counter overflow at chunk " + std::to_string(index));
  }
  const uint64_t value = counter + index;
  std::array<uint8_t, 12> nonce;
  std::copy(base_iv.begin(), base_iv.begin() + 8, nonce.begin());
  nonce[8] = static_cast<uint8_t>(value >> 24);
  nonce[9] = static_cast<uint8_t>(value >> 16);
  nonce[10] = static_cast<uint8_t>(value >> 8);
  nonce[11] = static_cast<uint8_t>(value);
  return nonce;
}

namespace {

void AppendDescriptor(const KeyDescriptor& d, std::string* out) {
  // serde_json without preserve_order: members sorted (alg < jku < kid < kty).
  *out += "{\"alg\":" + JsonQuote(d.alg);
  if (d.jku.has_value()) *out += ",\"jku\":" + JsonQuote(*d.jku);
  if (d.kid.has_value()) *out += ",\"kid\":" + JsonQuote(*d.kid);
  *out += ",\"kty\":" + JsonQuote(d.kty) + "}";
}

void AppendB64Member(std::string_view key, const Bytes& value, std::string* out) {
  *out += "\"";
  *out += key;
  *out += "\":\"" + Base64Encode(value) + "\"";
}

}  // namespace

std::string SerializeCryptoKeys(const CryptoKeys& keys) {
  std::string out = "{";
  if (keys.chunk_size.has_value()) {
    out += "\"chunk_size\":" + std::to_string(*keys.chunk_size) + ",";
  }
  out += "\"enc\":";
  AppendDescriptor(keys.enc, &out);
  out += ",\"sign\":";
  AppendDescriptor(keys.sign, &out);
  out += ",\"version\":" + JsonQuote(keys.version) + "}";
  return out;
}

std::string SerializeEncryption(const std::vector<TensorCrypto>& entries, bool chunked) {
  // The reference keeps the cryptors in a BTreeMap: entries sorted by name bytes.
  std::vector<const TensorCrypto*> sorted;
  sorted.reserve(entries.size());
  for (const TensorCrypto& e : entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const TensorCrypto* a, const TensorCrypto* b) {
    return a->tensor_name < b->tensor_name;
  });
  std::string out = "{";
  for (size_t i = 0; i < sorted.size(); ++i) {
    const TensorCrypto& e = *sorted[i];
    if (i > 0) out += ",";
    out += JsonQuote(e.tensor_name) + ":{";
    AppendB64Member(kWrappedKey, e.wrapped_key, &out);
    out += ",";
    AppendB64Member(kKeyIv, e.key_iv, &out);
    out += ",";
    AppendB64Member(kKeyTag, e.key_tag, &out);
    out += ",";
    if (chunked) {
      AppendB64Member(kBaseIv, e.base_iv, &out);
      out += ",";
      AppendB64Member(kTags, e.tags, &out);
    } else {
      AppendB64Member(kIv, e.iv, &out);
      out += ",";
      AppendB64Member(kTag, e.tag, &out);
    }
    out += "}";
  }
  out += "}";
  return out;
}

std::string SerializePolicy(const Policy& policy) {
  return "{\"local\":" + JsonQuote(policy.local) + ",\"remote\":" + JsonQuote(policy.remote) + "}";
}

}  // namespace ctfs::format
