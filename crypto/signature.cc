// SPDX-License-Identifier: Apache-2.0
// Ed25519 (RFC 8032 pure: no prehash, no context) over OpenSSL EVP_PKEY_ED25519, used with
// EVP_DigestSign/EVP_DigestVerify and a NULL digest as Ed25519 requires.
//
// Keys are imported per call from raw bytes; OpenSSL copies the seed into the EVP_PKEY and
// cleanses it when the key is freed. A verification failure is DataLoss; only API misuse or
// a library fault is Internal.
#include "crypto/signature.h"

#include <openssl/evp.h>

#include <cstdint>
#include <string>

#include "crypto/openssl_error.h"
#include "crypto/openssl_ptr.h"

namespace ctfs::crypto {
namespace {

// EVP wants a non-null pointer even for an empty message; an empty span may have none.
const uint8_t* MessageData(ByteSpan message) {
  static const uint8_t kEmpty = 0;
  return message.empty() ? &kEmpty : message.data();
}

Status CheckSeed(const SecretBytes& seed) {
  if (seed.size() != kEd25519SeedLen) {
    return InvalidArgumentError("ed25519: private seed must be 32 bytes, got " +
                                std::to_string(seed.size()));
  }
  return Status::Ok();
}

Result<UniqueEvpPkey> ImportSeed(const SecretBytes& seed) {
  CTFS_RETURN_IF_ERROR(CheckSeed(seed));
  UniqueEvpPkey pkey(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (pkey == nullptr) return OpenSslError("ed25519: EVP_PKEY_new_raw_private_key");
  return pkey;
}

}  // namespace

Status Ed25519Verify(ByteSpan public_key, ByteSpan message, ByteSpan signature) {
  if (public_key.size() != kEd25519PublicKeyLen) {
    return InvalidArgumentError("ed25519: public key must be 32 bytes, got " +
                                std::to_string(public_key.size()));
  }
  if (signature.size() != kEd25519SignatureLen) {
    return InvalidArgumentError("ed25519: signature must be 64 bytes, got " +
                                std::to_string(signature.size()));
  }
  UniqueEvpPkey pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  if (pkey == nullptr) return OpenSslError("ed25519: EVP_PKEY_new_raw_public_key");
  UniqueEvpMdCtx ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return OpenSslError("ed25519: EVP_MD_CTX_new");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    return OpenSslError("ed25519: EVP_DigestVerifyInit");
  }
  const int rc = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                                  MessageData(message), message.size());
  if (rc == 1) return Status::Ok();
  if (rc == 0) {
    // An invalid signature is expected input, not an OpenSSL fault.
    ClearOpenSslErrors();
    return DataLossError("signature verification failed");
  }
  return OpenSslError("ed25519: EVP_DigestVerify");
}

Result<Ed25519Signature> Ed25519Sign(const SecretBytes& seed, ByteSpan message) {
  CTFS_ASSIGN_OR_RETURN(UniqueEvpPkey pkey, ImportSeed(seed));
  UniqueEvpMdCtx ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return OpenSslError("ed25519: EVP_MD_CTX_new");
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    return OpenSslError("ed25519: EVP_DigestSignInit");
  }
  Ed25519Signature signature{};
  size_t signature_len = signature.size();
  if (EVP_DigestSign(ctx.get(), signature.data(), &signature_len, MessageData(message),
                     message.size()) != 1) {
    return OpenSslError("ed25519: EVP_DigestSign");
  }
  if (signature_len != kEd25519SignatureLen) {
    return InternalError("ed25519: EVP_DigestSign returned " + std::to_string(signature_len) +
                         " bytes");
  }
  return signature;
}

Result<Ed25519PublicKey> Ed25519PublicKeyFromSeed(const SecretBytes& seed) {
  CTFS_ASSIGN_OR_RETURN(UniqueEvpPkey pkey, ImportSeed(seed));
  Ed25519PublicKey public_key{};
  size_t public_key_len = public_key.size();
  if (EVP_PKEY_get_raw_public_key(pkey.get(), public_key.data(), &public_key_len) != 1) {
    return OpenSslError("ed25519: EVP_PKEY_get_raw_public_key");
  }
  if (public_key_len != kEd25519PublicKeyLen) {
    return InternalError("ed25519: public key has " + std::to_string(public_key_len) + " bytes");
  }
  return public_key;
}

}  // namespace ctfs::crypto
