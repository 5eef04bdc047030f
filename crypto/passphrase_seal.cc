// SPDX-License-Identifier: Apache-2.0
// scrypt via EVP_PBE_scrypt with an explicit maxmem (so a hostile n/r cannot make OpenSSL
// allocate more than kScryptMaxMemBytes), and AES-256-GCM with AAD over EVP. Messages here are
// key files (at most a few KiB), so one EVP_CipherUpdate call covers them.
#include "crypto/passphrase_seal.h"

#include <openssl/evp.h>

#include <array>
#include <climits>
#include <string>

#include "crypto/openssl_error.h"
#include "crypto/openssl_ptr.h"

namespace ctfs::crypto {
namespace {

constexpr size_t kMaxSealLen = size_t{16} << 20;  // far above any key file

Result<UniqueEvpCipherCtx> NewGcmCtx(const SecretBytes& key, ByteSpan nonce, ByteSpan aad,
                                     int enc) {
  if (key.size() != kPassphraseKeyLen)
    return InvalidArgumentError("passphrase seal: bad key length");
  if (nonce.size() != kPassphraseNonceLen) {
    return InvalidArgumentError("passphrase seal: nonce must be 12 bytes, got " +
                                std::to_string(nonce.size()));
  }
  if (aad.size() > kMaxSealLen) return InvalidArgumentError("passphrase seal: AAD too long");
  UniqueEvpCipherCtx ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return OpenSslError("passphrase seal: EVP_CIPHER_CTX_new");
  if (EVP_CipherInit_ex2(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, enc, nullptr) != 1) {
    return OpenSslError("passphrase seal: EVP_CipherInit_ex2 (cipher)");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(kPassphraseNonceLen),
                          nullptr) != 1) {
    return OpenSslError("passphrase seal: EVP_CTRL_AEAD_SET_IVLEN");
  }
  if (EVP_CipherInit_ex2(ctx.get(), nullptr, key.data(), nonce.data(), enc, nullptr) != 1) {
    return OpenSslError("passphrase seal: EVP_CipherInit_ex2 (key, nonce)");
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_CipherUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return OpenSslError("passphrase seal: EVP_CipherUpdate (AAD)");
  }
  return ctx;
}

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

Status CheckScryptParams(const ScryptParams& params) {
  if (!IsPowerOfTwo(params.n) || params.n < (uint64_t{1} << 10) || params.n > (uint64_t{1} << 20)) {
    return InvalidArgumentError("scrypt: n must be a power of two from 1024 to 1048576, got " +
                                std::to_string(params.n));
  }
  if (params.r < 1 || params.r > 32) {
    return InvalidArgumentError("scrypt: r must be 1 to 32, got " + std::to_string(params.r));
  }
  if (params.p < 1 || params.p > 16) {
    return InvalidArgumentError("scrypt: p must be 1 to 16, got " + std::to_string(params.p));
  }
  if (uint64_t{128} * params.r * params.n > kScryptMaxMemBytes) {
    return InvalidArgumentError("scrypt: n=" + std::to_string(params.n) +
                                " r=" + std::to_string(params.r) + " needs more than " +
                                std::to_string(kScryptMaxMemBytes >> 20) + " MiB");
  }
  return Status::Ok();
}

Result<SecretBytes> ScryptDerive(ByteSpan passphrase, ByteSpan salt, const ScryptParams& params) {
  CTFS_RETURN_IF_ERROR(CheckScryptParams(params));
  if (salt.size() < 16 || salt.size() > 64) {
    return InvalidArgumentError("scrypt: salt must be 16 to 64 bytes, got " +
                                std::to_string(salt.size()));
  }
  SecretBytes key(kPassphraseKeyLen);
  // maxmem: the V array (128 r n) plus the B array (128 r p) plus slack for OpenSSL's own use.
  const uint64_t maxmem =
      uint64_t{128} * params.r * (params.n + params.p + 2) + (uint64_t{1} << 20);
  // OpenSSL reads the passphrase through a const char* (it may be empty: a pointer still).
  static const char kEmpty[1] = {0};
  const char* pass = passphrase.empty() ? kEmpty : reinterpret_cast<const char*>(passphrase.data());
  if (EVP_PBE_scrypt(pass, passphrase.size(), salt.data(), salt.size(), params.n, params.r,
                     params.p, maxmem, key.data(), key.size()) != 1) {
    return OpenSslError("scrypt: EVP_PBE_scrypt");
  }
  return key;
}

Result<Bytes> PassphraseSeal(const SecretBytes& key, ByteSpan nonce, ByteSpan aad,
                             ByteSpan plaintext) {
  if (plaintext.size() > kMaxSealLen) return InvalidArgumentError("passphrase seal: too long");
  CTFS_ASSIGN_OR_RETURN(UniqueEvpCipherCtx ctx, NewGcmCtx(key, nonce, aad, 1));
  Bytes out(plaintext.size() + kPassphraseTagLen);
  int len = 0;
  if (!plaintext.empty() && EVP_CipherUpdate(ctx.get(), out.data(), &len, plaintext.data(),
                                             static_cast<int>(plaintext.size())) != 1) {
    return OpenSslError("passphrase seal: EVP_CipherUpdate");
  }
  if (static_cast<size_t>(len) != plaintext.size()) {
    return InternalError("passphrase seal: short EVP_CipherUpdate");
  }
  std::array<uint8_t, EVP_MAX_BLOCK_LENGTH> final_block{};
  if (EVP_EncryptFinal_ex(ctx.get(), final_block.data(), &len) != 1 || len != 0) {
    return OpenSslError("passphrase seal: EVP_EncryptFinal_ex");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kPassphraseTagLen),
                          out.data() + plaintext.size()) != 1) {
    return OpenSslError("passphrase seal: EVP_CTRL_AEAD_GET_TAG");
  }
  return out;
}

Result<SecretBytes> PassphraseOpen(const SecretBytes& key, ByteSpan nonce, ByteSpan aad,
                                   ByteSpan sealed) {
  if (sealed.size() < kPassphraseTagLen || sealed.size() > kMaxSealLen + kPassphraseTagLen) {
    return DataLossError("authentication failed (ciphertext of " + std::to_string(sealed.size()) +
                         " bytes)");
  }
  CTFS_ASSIGN_OR_RETURN(UniqueEvpCipherCtx ctx, NewGcmCtx(key, nonce, aad, 0));
  const size_t text_len = sealed.size() - kPassphraseTagLen;
  std::array<uint8_t, kPassphraseTagLen> tag;
  for (size_t i = 0; i < kPassphraseTagLen; ++i) tag[i] = sealed[text_len + i];
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kPassphraseTagLen),
                          tag.data()) != 1) {
    return OpenSslError("passphrase seal: EVP_CTRL_AEAD_SET_TAG");
  }
  // SecretBytes wipes on destruction: unauthenticated plaintext never outlives a failure.
  SecretBytes out(text_len);
  int len = 0;
  if (text_len > 0 && EVP_CipherUpdate(ctx.get(), out.data(), &len, sealed.data(),
                                       static_cast<int>(text_len)) != 1) {
    return OpenSslError("passphrase seal: EVP_CipherUpdate");
  }
  std::array<uint8_t, EVP_MAX_BLOCK_LENGTH> final_block{};
  if (EVP_DecryptFinal_ex(ctx.get(), final_block.data(), &len) != 1) {
    ClearOpenSslErrors();
    return DataLossError("authentication failed");
  }
  return out;
}

}  // namespace ctfs::crypto
