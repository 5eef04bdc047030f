// SPDX-License-Identifier: Apache-2.0
// An independent decryption of the tensors of a CryptoTensors file for the open_file fuzzer:
// straight from the stored bytes and the parsed __encryption__ entries, with crypto/ calls
// only, and its own chunk arithmetic (nonce counter, chunk count), so that its answer does not
// share fs/'s range mapping, cache or unit bookkeeping. Also the inverse (EncryptTensor), for
// the fuzzer's mutator, which writes valid files with other chunk geometries.
#ifndef CTFS_TESTS_FUZZ_REFERENCE_DECRYPT_H_
#define CTFS_TESTS_FUZZ_REFERENCE_DECRYPT_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "base/secret_bytes.h"
#include "crypto/aead.h"
#include "format/crypt_metadata.h"

namespace ctfs::fuzz {

// The file-wide parameters of its encrypted tensors.
struct CipherParams {
  AeadAlg alg = AeadAlg::kAes256Gcm;  // the master key's alg (it overrides the header's)
  bool chunked = true;
  uint64_t chunk_size = 0;  // chunked only
};

// NonceAt: base[0..8] || BE32(BE32(base[8..12]) + index), nullopt when the counter overflows.
inline std::optional<std::array<uint8_t, 12>> NonceAt(ByteSpan base, uint64_t index) {
  if (base.size() != 12) return std::nullopt;
  const uint64_t counter = (uint64_t{base[8]} << 24) | (uint64_t{base[9]} << 16) |
                           (uint64_t{base[10]} << 8) | base[11];
  if (index > 0xffffffffu || counter + index > 0xffffffffu) return std::nullopt;
  const uint64_t v = counter + index;
  std::array<uint8_t, 12> nonce{};
  std::copy(base.begin(), base.begin() + 8, nonce.begin());
  for (int i = 0; i < 4; ++i) nonce[8 + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
  return nonce;
}

// UnitCount: authentication units of an encrypted tensor of `len` bytes (a chunked empty
// tensor still has one: a tag over the empty message).
inline uint64_t UnitCount(const CipherParams& p, uint64_t len) {
  if (!p.chunked) return 1;
  return std::max<uint64_t>(1, len / p.chunk_size + (len % p.chunk_size != 0));
}

// UnwrapKey: the tensor's data key, or nullopt if its wrapping does not authenticate.
inline std::optional<SecretBytes> UnwrapKey(const CipherParams& p, const SecretBytes& master,
                                            const format::TensorCrypto& e) {
  if (e.wrapped_key.size() != AeadKeyLen(p.alg)) return std::nullopt;
  SecretBytes dek(e.wrapped_key.size());
  if (!crypto::AeadOpen(p.alg, master.span(), e.key_iv, e.wrapped_key, e.key_tag,
                        dek.mutable_span())
           .ok()) {
    return std::nullopt;
  }
  return dek;
}

// DecryptTensor decrypts `cipher` (the tensor's stored bytes) into `plain` (same size) unit by
// unit; unit_ok[u] tells which units authenticated (the others' bytes are zero).
inline void DecryptTensor(const CipherParams& p, const SecretBytes& dek,
                          const format::TensorCrypto& e, ByteSpan cipher, MutableByteSpan plain,
                          std::vector<bool>& unit_ok) {
  const uint64_t len = cipher.size();
  const uint64_t units = UnitCount(p, len);
  unit_ok.assign(units, false);
  for (uint64_t u = 0; u < units; ++u) {
    const uint64_t off = p.chunked ? u * p.chunk_size : 0;
    const uint64_t n = p.chunked ? std::min(p.chunk_size, len - off) : len;
    MutableByteSpan out = plain.subspan(off, n);
    if (!p.chunked && e.iv.empty()) {  // v1 empty tensor: nothing to authenticate
      unit_ok[u] = n == 0;
      continue;
    }
    std::optional<std::array<uint8_t, 12>> nonce;
    ByteSpan tag;
    if (p.chunked) {
      nonce = NonceAt(e.base_iv, u);
      if ((u + 1) * kAeadTagLen <= e.tags.size()) tag = ByteSpan(e.tags).subspan(u * 16, 16);
    } else if (e.iv.size() == 12) {
      nonce.emplace();
      std::copy(e.iv.begin(), e.iv.end(), nonce->begin());
      tag = e.tag;
    }
    unit_ok[u] = nonce && tag.size() == kAeadTagLen &&
                 crypto::AeadOpen(p.alg, dek.span(), *nonce, cipher.subspan(off, n), tag, out).ok();
    if (!unit_ok[u]) std::fill(out.begin(), out.end(), 0);
  }
}

// EncryptTensor is the inverse: seals `plain` into `cipher` with `dek`, filling e.tags (chunked,
// from e.base_iv) or e.tag (whole, with e.iv; e.iv empty = the reference's empty v1 tensor).
// False if a nonce does not exist (counter overflow).
inline bool EncryptTensor(const CipherParams& p, const SecretBytes& dek, format::TensorCrypto& e,
                          ByteSpan plain, MutableByteSpan cipher) {
  const uint64_t len = plain.size();
  if (!p.chunked) {
    if (e.iv.empty()) return len == 0;
    e.tag.assign(kAeadTagLen, 0);
    return crypto::AeadSeal(p.alg, dek.span(), e.iv, plain, cipher, e.tag).ok();
  }
  const uint64_t units = UnitCount(p, len);
  e.tags.assign(units * kAeadTagLen, 0);
  for (uint64_t u = 0; u < units; ++u) {
    const uint64_t off = u * p.chunk_size;
    const uint64_t n = std::min(p.chunk_size, len - off);
    auto nonce = NonceAt(e.base_iv, u);
    if (!nonce) return false;
    if (!crypto::AeadSeal(p.alg, dek.span(), *nonce, plain.subspan(off, n), cipher.subspan(off, n),
                          MutableByteSpan(e.tags).subspan(u * kAeadTagLen, kAeadTagLen))
             .ok()) {
      return false;
    }
  }
  return true;
}

}  // namespace ctfs::fuzz

#endif  // CTFS_TESTS_FUZZ_REFERENCE_DECRYPT_H_
