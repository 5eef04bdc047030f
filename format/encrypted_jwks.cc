// SPDX-License-Identifier: Apache-2.0
// Parsing and writing of the passphrase-protected key file envelope (format/encrypted_jwks.h).
// The envelope itself holds no secret in clear (salt, nonce and ciphertext are public), so it
// is parsed as ordinary JSON; IsEncryptedJwksText, which may be handed a plain key file, parses
// as a secret document.
#include "format/encrypted_jwks.h"

#include <utility>

#include "format/base64.h"
#include "format/internal/strict_json.h"

namespace ctfs::format {
namespace {

constexpr char kWhat[] = "encrypted key file";
constexpr char kVersionMember[] = "ctfs_encrypted_jwks";

Result<Bytes> DecodeMember(const internal::Json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end()) return InvalidArgumentError(std::string(kWhat) + ": missing " + key);
  CTFS_ASSIGN_OR_RETURN(std::string text, internal::GetString(*it, std::string(kWhat) + "." + key));
  Result<Bytes> b = Base64Decode(text);
  if (!b.ok()) return b.status().WithContext(std::string(kWhat) + "." + key);
  return b;
}

Result<uint64_t> U64Member(const internal::Json& doc, const char* key, uint64_t hi) {
  auto it = doc.find(key);
  if (it == doc.end()) return InvalidArgumentError(std::string(kWhat) + ": missing " + key);
  CTFS_ASSIGN_OR_RETURN(uint64_t v, internal::GetU64(*it, std::string(kWhat) + "." + key));
  if (v > hi) {
    return InvalidArgumentError(std::string(kWhat) + "." + key + ": " + std::to_string(v) +
                                " is out of range");
  }
  return v;
}

}  // namespace

bool IsEncryptedJwksText(std::string_view text) {
  Result<internal::SecretJson> doc = internal::ParseStrictSecretJson(text, kWhat);
  return doc.ok() && doc->is_object() && doc->contains(kVersionMember);
}

Result<EncryptedJwks> ParseEncryptedJwks(std::string_view text) {
  CTFS_ASSIGN_OR_RETURN(internal::Json doc, internal::ParseStrictJson(text, kWhat));
  if (!doc.is_object()) return InvalidArgumentError(std::string(kWhat) + ": expected an object");
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& k = it.key();
    if (k != kVersionMember && k != "kdf" && k != "n" && k != "r" && k != "p" && k != "salt" &&
        k != "nonce" && k != "ciphertext") {
      return InvalidArgumentError(std::string(kWhat) + ": unknown member \"" + k.substr(0, 64) +
                                  "\"");
    }
  }
  CTFS_ASSIGN_OR_RETURN(uint64_t version, U64Member(doc, kVersionMember, UINT32_MAX));
  if (version != kEncryptedJwksVersion) {
    return InvalidArgumentError(std::string(kWhat) + ": unsupported version " +
                                std::to_string(version) + " (this ctfs reads version 1)");
  }
  auto kdf = doc.find("kdf");
  if (kdf == doc.end()) return InvalidArgumentError(std::string(kWhat) + ": missing kdf");
  CTFS_ASSIGN_OR_RETURN(std::string kdf_name, internal::GetString(*kdf, "encrypted key file.kdf"));
  if (kdf_name != "scrypt") {
    return InvalidArgumentError(std::string(kWhat) + ": unsupported kdf \"" +
                                kdf_name.substr(0, 64) + "\" (expected \"scrypt\")");
  }
  EncryptedJwks env;
  CTFS_ASSIGN_OR_RETURN(env.scrypt_n, U64Member(doc, "n", uint64_t{1} << 32));
  CTFS_ASSIGN_OR_RETURN(uint64_t r, U64Member(doc, "r", 1024));
  CTFS_ASSIGN_OR_RETURN(uint64_t p, U64Member(doc, "p", 1024));
  env.scrypt_r = static_cast<uint32_t>(r);
  env.scrypt_p = static_cast<uint32_t>(p);
  CTFS_ASSIGN_OR_RETURN(env.salt, DecodeMember(doc, "salt"));
  CTFS_ASSIGN_OR_RETURN(env.nonce, DecodeMember(doc, "nonce"));
  CTFS_ASSIGN_OR_RETURN(env.ciphertext, DecodeMember(doc, "ciphertext"));
  return env;
}

std::string SerializeEncryptedJwks(const EncryptedJwks& env) {
  return std::string("{\"") + kVersionMember + "\":" + std::to_string(kEncryptedJwksVersion) +
         ",\"kdf\":\"scrypt\",\"n\":" + std::to_string(env.scrypt_n) +
         ",\"r\":" + std::to_string(env.scrypt_r) + ",\"p\":" + std::to_string(env.scrypt_p) +
         ",\"salt\":\"" + Base64Encode(env.salt) + "\",\"nonce\":\"" + Base64Encode(env.nonce) +
         "\",\"ciphertext\":\"" + Base64Encode(env.ciphertext) + "\"}";
}

std::string EncryptedJwksAad(const EncryptedJwks& env) {
  return std::string(kVersionMember) + ":" + std::to_string(kEncryptedJwksVersion) +
         ";kdf=scrypt;n=" + std::to_string(env.scrypt_n) + ";r=" + std::to_string(env.scrypt_r) +
         ";p=" + std::to_string(env.scrypt_p) + ";salt=" + Base64Encode(env.salt) +
         ";nonce=" + Base64Encode(env.nonce);
}

}  // namespace ctfs::format
