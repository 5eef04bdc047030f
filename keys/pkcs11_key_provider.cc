// SPDX-License-Identifier: Apache-2.0
// The `pkcs11:` key provider: one master key in a PKCS#11 token (keys/pkcs11_token.h), given
// to the resolver as an oct JWK without bytes (Jwk::token), its kid the key's CKA_LABEL.
#include <string>
#include <utility>

#include "keys/key_provider.h"
#include "keys/pkcs11_token.h"
#include "keys/pkcs11_uri.h"

namespace ctfs::keys {
namespace {

class Pkcs11KeyProvider final : public KeyProvider {
 public:
  explicit Pkcs11KeyProvider(std::string uri) : uri_(std::move(uri)) {}

  std::string Describe() const override {
    Result<Pkcs11Uri> parsed = ParsePkcs11Uri(uri_);
    return parsed.ok() ? parsed->Describe() : "PKCS#11 URI \"" + uri_.substr(0, 200) + "\"";
  }

  Result<ProvidedKeys> Load() const override {
    CTFS_ASSIGN_OR_RETURN(Pkcs11Uri uri, ParsePkcs11Uri(uri_));
    Result<Pkcs11Key> opened = OpenPkcs11Key(uri);
    if (!opened.ok()) return opened.status();  // names the key and the token already
    format::Jwk jwk;
    jwk.kty = "oct";
    jwk.alg = std::string(AeadAlgName(opened->key->alg()));
    jwk.kid = opened->label;
    jwk.token = std::move(opened->key);
    ProvidedKeys out;
    out.keys.push_back(std::move(jwk));
    return out;
  }

 private:
  std::string uri_;
};

}  // namespace

std::unique_ptr<KeyProvider> MakePkcs11KeyProvider(std::string uri) {
  return std::make_unique<Pkcs11KeyProvider>(std::move(uri));
}

}  // namespace ctfs::keys
