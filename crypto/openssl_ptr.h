// SPDX-License-Identifier: Apache-2.0
// Owning smart pointers for the OpenSSL objects crypto/ uses, with their deleters declared
// once (style rule 11; after BoringSSL's bssl::UniquePtr). Private to crypto/: no other layer
// includes OpenSSL headers.
#ifndef CTFS_CRYPTO_OPENSSL_PTR_H_
#define CTFS_CRYPTO_OPENSSL_PTR_H_

#include <openssl/evp.h>

#include <memory>

namespace ctfs::crypto {

// Deleters. EVP_CIPHER_CTX_free and EVP_PKEY_free cleanse the key material they own.
struct EvpCipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct EvpMdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};

using UniqueEvpCipherCtx = std::unique_ptr<EVP_CIPHER_CTX, EvpCipherCtxDeleter>;
using UniqueEvpPkey = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using UniqueEvpMdCtx = std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter>;

}  // namespace ctfs::crypto

#endif  // CTFS_CRYPTO_OPENSSL_PTR_H_
