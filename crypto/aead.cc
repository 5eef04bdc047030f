// SPDX-License-Identifier: Apache-2.0
// AEAD seal/open over OpenSSL EVP for AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305, with the
// CryptoTensors parameters: 12-byte nonce, 16-byte detached tag, empty AAD.
//
// Invariants (see crypto/README.md): every EVP return value is checked; each EVP_CIPHER is
// fetched once per process; AeadOpen wipes its output on every failure after decryption has
// started, so unauthenticated plaintext never survives a failed call; the tag comparison is
// OpenSSL's own (constant time, CRYPTO_memcmp). Inputs larger than an int are fed to EVP in
// pieces of at most internal::kAeadMaxPieceLen bytes.
#include "crypto/aead.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "base/check.h"
#include "base/result.h"
#include "base/secret_bytes.h"
#include "crypto/aead_internal.h"
#include "crypto/openssl_error.h"
#include "crypto/openssl_ptr.h"

namespace ctfs::crypto {
namespace {

enum class Direction { kSeal, kOpen };

// FetchCipher returns the process-wide EVP_CIPHER for `alg`, fetched on first use. The
// pointers are never freed (trivially destructible statics; magic statics make the first
// fetch thread-safe, and fetched ciphers are immutable and safe to share across threads).
Result<const EVP_CIPHER*> FetchCipher(AeadAlg alg) {
  const EVP_CIPHER* cipher = nullptr;
  switch (alg) {
    case AeadAlg::kAes128Gcm: {
      static const EVP_CIPHER* const kAes128Gcm = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
      cipher = kAes128Gcm;
      break;
    }
    case AeadAlg::kAes256Gcm: {
      static const EVP_CIPHER* const kAes256Gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
      cipher = kAes256Gcm;
      break;
    }
    case AeadAlg::kChaCha20Poly1305: {
      static const EVP_CIPHER* const kChaCha20Poly1305 =
          EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
      cipher = kChaCha20Poly1305;
      break;
    }
    default:
      return InvalidArgumentError("aead: unknown algorithm");
  }
  if (cipher == nullptr) {
    return OpenSslError("aead: EVP_CIPHER_fetch(" + std::string(AeadAlgName(alg)) + ")");
  }
  return cipher;
}

// PartiallyOverlaps is true if `a` and `b` share bytes without starting at the same address.
// Exact aliasing (in-place operation) is allowed; any other overlap is not.
bool PartiallyOverlaps(ByteSpan a, ByteSpan b) {
  if (a.empty() || b.empty()) return false;
  const auto a_begin = reinterpret_cast<uintptr_t>(a.data());
  const auto b_begin = reinterpret_cast<uintptr_t>(b.data());
  if (a_begin == b_begin) return false;
  return a_begin < b_begin + b.size() && b_begin < a_begin + a.size();
}

// CheckArgs validates every length the API fixes, and the aliasing rule.
Status CheckArgs(AeadAlg alg, ByteSpan key, ByteSpan nonce, size_t tag_len, ByteSpan in,
                 ByteSpan out) {
  const std::string name(AeadAlgName(alg));
  if (key.size() != AeadKeyLen(alg)) {
    return InvalidArgumentError("aead " + name + ": key must be " +
                                std::to_string(AeadKeyLen(alg)) + " bytes, got " +
                                std::to_string(key.size()));
  }
  if (nonce.size() != kAeadNonceLen) {
    return InvalidArgumentError("aead " + name + ": nonce must be 12 bytes, got " +
                                std::to_string(nonce.size()));
  }
  if (tag_len != kAeadTagLen) {
    return InvalidArgumentError("aead " + name + ": tag must be 16 bytes, got " +
                                std::to_string(tag_len));
  }
  if (out.size() != in.size()) {
    return InvalidArgumentError("aead " + name + ": output is " + std::to_string(out.size()) +
                                " bytes, input is " + std::to_string(in.size()));
  }
  if (PartiallyOverlaps(in, out)) {
    return InvalidArgumentError("aead " + name +
                                ": input and output overlap without being the same buffer");
  }
  return Status::Ok();
}

// NewKeyedCtx returns a context initialized for `dir` with `key` and the 12-byte `nonce`.
// REQUIRES: CheckArgs passed.
Result<UniqueEvpCipherCtx> NewKeyedCtx(AeadAlg alg, ByteSpan key, ByteSpan nonce, Direction dir) {
  CTFS_ASSIGN_OR_RETURN(const EVP_CIPHER* cipher, FetchCipher(alg));
  UniqueEvpCipherCtx ctx(EVP_CIPHER_CTX_new());
  if (ctx == nullptr) return OpenSslError("aead: EVP_CIPHER_CTX_new");
  const int enc = dir == Direction::kSeal ? 1 : 0;
  if (EVP_CipherInit_ex2(ctx.get(), cipher, nullptr, nullptr, enc, nullptr) != 1) {
    return OpenSslError("aead: EVP_CipherInit_ex2 (cipher)");
  }
  // 12 is the default for all three, but the format depends on it: set it explicitly.
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(kAeadNonceLen),
                          nullptr) != 1) {
    return OpenSslError("aead: EVP_CTRL_AEAD_SET_IVLEN");
  }
  if (EVP_CIPHER_CTX_get_key_length(ctx.get()) != static_cast<int>(key.size())) {
    return InternalError("aead: OpenSSL key length disagrees with AeadKeyLen");
  }
  if (EVP_CipherInit_ex2(ctx.get(), nullptr, key.data(), nonce.data(), enc, nullptr) != 1) {
    return OpenSslError("aead: EVP_CipherInit_ex2 (key, nonce)");
  }
  return ctx;
}

// UpdateInPieces runs EVP_CipherUpdate over `in` into `out`, at most `piece_len` bytes per
// call. GCM and ChaCha20-Poly1305 are stream modes: each call outputs exactly its input.
// REQUIRES: out.size() == in.size(); 0 < piece_len <= INT_MAX.
Status UpdateInPieces(EVP_CIPHER_CTX* ctx, ByteSpan in, MutableByteSpan out, size_t piece_len) {
  for (size_t done = 0; done < in.size();) {
    const size_t n = std::min(piece_len, in.size() - done);
    int out_len = 0;
    if (EVP_CipherUpdate(ctx, out.data() + done, &out_len, in.data() + done, static_cast<int>(n)) !=
        1) {
      return OpenSslError("aead: EVP_CipherUpdate");
    }
    if (out_len < 0 || static_cast<size_t>(out_len) != n) {
      return InternalError("aead: EVP_CipherUpdate returned " + std::to_string(out_len) +
                           " bytes for " + std::to_string(n));
    }
    done += n;
  }
  return Status::Ok();
}

// OutputWiper zeroes a buffer on destruction unless Release()d: AeadOpen's guarantee that no
// unauthenticated plaintext outlives a failed call, on every return path.
class OutputWiper {
 public:
  explicit OutputWiper(MutableByteSpan buf) : buf_(buf) {}
  OutputWiper(const OutputWiper&) = delete;
  OutputWiper& operator=(const OutputWiper&) = delete;
  ~OutputWiper() {
    if (armed_) WipeMemory(buf_.data(), buf_.size());
  }
  void Release() { armed_ = false; }

 private:
  MutableByteSpan buf_;
  bool armed_ = true;
};

}  // namespace

namespace internal {

Status AeadSealInPieces(AeadAlg alg, ByteSpan key, ByteSpan nonce, ByteSpan plaintext,
                        MutableByteSpan ciphertext_out, MutableByteSpan tag_out, size_t piece_len) {
  CTFS_CHECK(piece_len > 0 && piece_len <= kAeadMaxPieceLen);
  CTFS_RETURN_IF_ERROR(CheckArgs(alg, key, nonce, tag_out.size(), plaintext, ciphertext_out));
  CTFS_ASSIGN_OR_RETURN(UniqueEvpCipherCtx ctx, NewKeyedCtx(alg, key, nonce, Direction::kSeal));
  CTFS_RETURN_IF_ERROR(UpdateInPieces(ctx.get(), plaintext, ciphertext_out, piece_len));
  // Stream modes output nothing at Final; a scratch block keeps `out` non-null even when the
  // message is empty.
  std::array<uint8_t, EVP_MAX_BLOCK_LENGTH> final_block{};
  int final_len = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), final_block.data(), &final_len) != 1) {
    return OpenSslError("aead: EVP_EncryptFinal_ex");
  }
  if (final_len != 0) return InternalError("aead: EVP_EncryptFinal_ex produced output");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kAeadTagLen),
                          tag_out.data()) != 1) {
    return OpenSslError("aead: EVP_CTRL_AEAD_GET_TAG");
  }
  return Status::Ok();
}

Status AeadOpenInPieces(AeadAlg alg, ByteSpan key, ByteSpan nonce, ByteSpan ciphertext,
                        ByteSpan tag, MutableByteSpan plaintext_out, size_t piece_len) {
  CTFS_CHECK(piece_len > 0 && piece_len <= kAeadMaxPieceLen);
  CTFS_RETURN_IF_ERROR(CheckArgs(alg, key, nonce, tag.size(), ciphertext, plaintext_out));
  CTFS_ASSIGN_OR_RETURN(UniqueEvpCipherCtx ctx, NewKeyedCtx(alg, key, nonce, Direction::kOpen));
  // The tag ctrl takes a non-const pointer; hand it a copy.
  std::array<uint8_t, kAeadTagLen> expected_tag;
  std::copy(tag.begin(), tag.end(), expected_tag.begin());
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kAeadTagLen),
                          expected_tag.data()) != 1) {
    return OpenSslError("aead: EVP_CTRL_AEAD_SET_TAG");
  }

  // From here on `plaintext_out` holds unauthenticated bytes until Final verifies the tag.
  OutputWiper wiper(plaintext_out);
  CTFS_RETURN_IF_ERROR(UpdateInPieces(ctx.get(), ciphertext, plaintext_out, piece_len));
  std::array<uint8_t, EVP_MAX_BLOCK_LENGTH> final_block{};
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), final_block.data(), &final_len) != 1) {
    // A wrong tag is expected input, not an OpenSSL fault: drop whatever it queued.
    ClearOpenSslErrors();
    return DataLossError("authentication failed");
  }
  if (final_len != 0) return InternalError("aead: EVP_DecryptFinal_ex produced output");
  wiper.Release();
  return Status::Ok();
}

}  // namespace internal

Status AeadSeal(AeadAlg alg, ByteSpan key, ByteSpan nonce, ByteSpan plaintext,
                MutableByteSpan ciphertext_out, MutableByteSpan tag_out) {
  return internal::AeadSealInPieces(alg, key, nonce, plaintext, ciphertext_out, tag_out,
                                    internal::kAeadMaxPieceLen);
}

Status AeadOpen(AeadAlg alg, ByteSpan key, ByteSpan nonce, ByteSpan ciphertext, ByteSpan tag,
                MutableByteSpan plaintext_out) {
  return internal::AeadOpenInPieces(alg, key, nonce, ciphertext, tag, plaintext_out,
                                    internal::kAeadMaxPieceLen);
}

}  // namespace ctfs::crypto
