// SPDX-License-Identifier: Apache-2.0
// The CryptoTensors JWK dialect (cryptotensors-format.md §4.1): a single JWK or a JWK Set,
// kty exactly "oct" or "okp", alg required and valid for the kty, key material in standard
// padded base64 with exact lengths. The document is parsed into a SecretJson (every copy the
// parser makes lives in the SecretArena and is wiped when freed), secret members (k, d) are
// decoded from the tree straight into SecretBytes, and error messages name a key by kid or
// index, never by its bytes.
#include "format/jwk.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "base/aead_alg.h"
#include "base/check.h"
#include "format/base64.h"
#include "format/internal/base64_internal.h"
#include "format/internal/strict_json.h"
#include "format/safetensors_header.h"

namespace ctfs::format {
namespace {

// Key documents hold secrets in their text, so the whole tree is a SecretJson.
using Json = internal::SecretJson;

constexpr size_t kOkpKeyLen = 32;

const Json* FindMember(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

Result<std::optional<std::string>> OptionalString(const Json& obj, const char* key,
                                                  const std::string& where) {
  const Json* v = FindMember(obj, key);
  if (v == nullptr) return std::optional<std::string>();
  CTFS_ASSIGN_OR_RETURN(std::string s, internal::GetString(*v, where + "." + key));
  return std::optional<std::string>(std::move(s));
}

// DecodeKeyMember decodes member `key` (nullopt if absent) and checks its length.
template <typename T, typename Decoder>
Result<std::optional<T>> DecodeKeyMember(const Json& obj, const char* key, size_t expected_len,
                                         const std::string& where, Decoder decode) {
  const Json* v = FindMember(obj, key);
  if (v == nullptr) return std::optional<T>();
  const std::string field = where + "." + key;
  if (!v->is_string()) return InvalidArgumentError(field + ": expected a base64 string");
  // Decoded from the tree in place: no copy of the text outside the arena.
  const internal::SecretString& text = v->get_ref<const internal::SecretString&>();
  Result<T> decoded = decode(std::string_view(text.data(), text.size()));
  if (!decoded.ok()) return decoded.status().WithContext(field);
  if (decoded->size() != expected_len) {
    return InvalidArgumentError(field + ": expected " + std::to_string(expected_len) +
                                " bytes, got " + std::to_string(decoded->size()));
  }
  return std::optional<T>(std::move(decoded).value());
}

Result<Jwk> ParseJwk(const Json& obj, size_t index) {
  std::string where = "JWK #" + std::to_string(index);
  if (!obj.is_object()) return InvalidArgumentError(where + ": expected a JSON object");
  Jwk jwk;
  CTFS_ASSIGN_OR_RETURN(jwk.kid, OptionalString(obj, "kid", where));
  if (jwk.kid.has_value()) where = "JWK " + JsonQuote(*jwk.kid);
  CTFS_ASSIGN_OR_RETURN(jwk.jku, OptionalString(obj, "jku", where));

  const Json* kty = FindMember(obj, "kty");
  if (kty == nullptr) return InvalidArgumentError(where + ": missing kty");
  CTFS_ASSIGN_OR_RETURN(jwk.kty, internal::GetString(*kty, where + ".kty"));
  if (jwk.kty != "oct" && jwk.kty != "okp") {
    return InvalidArgumentError(where + ".kty: expected \"oct\" or \"okp\", got " +
                                JsonQuote(jwk.kty));
  }
  const Json* alg = FindMember(obj, "alg");
  if (alg == nullptr) return InvalidArgumentError(where + ": missing alg (required)");
  CTFS_ASSIGN_OR_RETURN(jwk.alg, internal::GetString(*alg, where + ".alg"));

  if (jwk.kty == "oct") {
    auto aead = ParseAeadAlg(jwk.alg);
    if (!aead.ok()) return aead.status().WithContext(where + ".alg");
    CTFS_ASSIGN_OR_RETURN(
        std::optional<SecretBytes> k,
        DecodeKeyMember<SecretBytes>(obj, "k", AeadKeyLen(*aead), where, Base64DecodeSecret));
    if (!k.has_value()) return InvalidArgumentError(where + ": oct key without k");
    jwk.k = std::move(*k);
  } else {
    if (!IsEd25519AlgName(jwk.alg)) {
      return InvalidArgumentError(where + ".alg: unsupported signature algorithm " +
                                  JsonQuote(jwk.alg) + " (supported: ed25519)");
    }
    CTFS_ASSIGN_OR_RETURN(std::optional<Bytes> x,
                          DecodeKeyMember<Bytes>(obj, "x", kOkpKeyLen, where, Base64Decode));
    CTFS_ASSIGN_OR_RETURN(
        std::optional<SecretBytes> d,
        DecodeKeyMember<SecretBytes>(obj, "d", kOkpKeyLen, where, Base64DecodeSecret));
    if (!x.has_value() && !d.has_value()) {
      return InvalidArgumentError(where + ": okp key without x or d");
    }
    if (x.has_value()) jwk.x = std::move(*x);
    if (d.has_value()) jwk.d = std::move(*d);
  }
  return jwk;
}

// JsonSink measures (out == nullptr) or writes the serialized set into a buffer of the
// measured size, so that the output is allocated once, at its final size (never reallocated
// while it holds secrets), and may live in a SecretBytes.
struct JsonSink {
  char* out = nullptr;
  size_t len = 0;

  void Add(std::string_view s) {
    if (out != nullptr) std::copy(s.begin(), s.end(), out + len);
    len += s.size();
  }
  void AddBase64(ByteSpan bytes) {
    if (out != nullptr) internal::Base64EncodeTo(bytes, out + len);
    len += internal::Base64EncodedLen(bytes.size());
  }
  void AddMember(std::string_view key, const std::string& value) {
    Add(",\"");
    Add(key);
    Add("\":");
    Add(JsonQuote(value));
  }
  void AddBase64Member(std::string_view key, ByteSpan bytes) {
    Add(",\"");
    Add(key);
    Add("\":\"");
    AddBase64(bytes);
    Add("\"");
  }
};

void WriteSet(const std::vector<const Jwk*>& keys, bool include_private, JsonSink* sink) {
  sink->Add("{\"keys\":[");
  for (size_t i = 0; i < keys.size(); ++i) {
    const Jwk& jwk = *keys[i];
    CTFS_CHECK(jwk.token == nullptr);  // a token key has no bytes to write
    if (i > 0) sink->Add(",");
    sink->Add("{\"kty\":");
    sink->Add(JsonQuote(jwk.kty));
    sink->AddMember("alg", jwk.alg);
    if (jwk.kid.has_value()) sink->AddMember("kid", *jwk.kid);
    if (jwk.jku.has_value()) sink->AddMember("jku", *jwk.jku);
    if (jwk.kty == "oct") {
      sink->AddBase64Member("k", jwk.k.span());
    } else {
      if (!jwk.x.empty()) sink->AddBase64Member("x", jwk.x);
      if (include_private && !jwk.d.empty()) sink->AddBase64Member("d", jwk.d.span());
    }
    sink->Add("}");
  }
  sink->Add("]}");
}

}  // namespace

Jwk Jwk::Clone() const {
  Jwk copy;
  copy.kty = kty;
  copy.alg = alg;
  copy.kid = kid;
  copy.jku = jku;
  copy.k = k.Clone();
  copy.token = token;
  copy.d = d.Clone();
  copy.x = x;
  return copy;
}

Result<std::vector<Jwk>> ParseJwkDocument(std::string_view json) {
  CTFS_ASSIGN_OR_RETURN(JwkDocument doc, ParseJwkDocumentWithExp(json));
  return std::move(doc.keys);
}

Result<JwkDocument> ParseJwkDocumentWithExp(std::string_view json) {
  CTFS_ASSIGN_OR_RETURN(Json doc, internal::ParseStrictSecretJson(json, "JWK document"));
  if (!doc.is_object()) return InvalidArgumentError("JWK document: expected a JSON object");
  JwkDocument out;
  if (const Json* exp = FindMember(doc, "exp")) {
    if (!exp->is_number_unsigned() || exp->get<uint64_t>() > uint64_t{INT64_MAX}) {
      return InvalidArgumentError(
          "JWK document: exp must be a Unix time (a whole number of "
          "seconds)");
    }
    out.exp_unix = static_cast<int64_t>(exp->get<uint64_t>());
  }
  std::vector<Jwk>& keys = out.keys;
  if (doc.contains("kty")) {
    // A single JWK (the reference tells the two forms apart by kty).
    CTFS_ASSIGN_OR_RETURN(Jwk jwk, ParseJwk(doc, 0));
    keys.push_back(std::move(jwk));
    return out;
  }
  const Json* set = FindMember(doc, "keys");
  if (set == nullptr) {
    return InvalidArgumentError("JWK document: neither a JWK (kty) nor a JWK Set (keys)");
  }
  if (!set->is_array()) return InvalidArgumentError("JWK Set: keys must be an array");
  keys.reserve(set->size());
  for (size_t i = 0; i < set->size(); ++i) {
    CTFS_ASSIGN_OR_RETURN(Jwk jwk, ParseJwk((*set)[i], i));
    keys.push_back(std::move(jwk));
  }
  return out;
}

std::string SerializeJwkSet(const std::vector<const Jwk*>& keys, bool include_private) {
  JsonSink measure;
  WriteSet(keys, include_private, &measure);
  std::string out(measure.len, '\0');
  JsonSink writer{out.data()};
  WriteSet(keys, include_private, &writer);
  return out;
}

SecretBytes SerializeJwkSetSecret(const std::vector<const Jwk*>& keys, bool include_private) {
  JsonSink measure;
  WriteSet(keys, include_private, &measure);
  SecretBytes out(measure.len);
  JsonSink writer{reinterpret_cast<char*>(out.data())};
  WriteSet(keys, include_private, &writer);
  return out;
}

}  // namespace ctfs::format
