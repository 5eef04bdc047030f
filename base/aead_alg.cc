// SPDX-License-Identifier: Apache-2.0
#include "base/aead_alg.h"

#include <string>

namespace ctfs {

size_t AeadKeyLen(AeadAlg alg) { return alg == AeadAlg::kAes128Gcm ? 16 : 32; }

std::string_view AeadAlgName(AeadAlg alg) {
  switch (alg) {
    case AeadAlg::kAes128Gcm:
      return "aes128gcm";
    case AeadAlg::kAes256Gcm:
      return "aes256gcm";
    case AeadAlg::kChaCha20Poly1305:
      return "chacha20poly1305";
  }
  return "?";
}

Result<AeadAlg> ParseAeadAlg(std::string_view name) {
  std::string norm;
  for (char c : name) {
    if (c == '-') continue;
    norm += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (norm == "aes128gcm") return AeadAlg::kAes128Gcm;
  if (norm == "aes256gcm") return AeadAlg::kAes256Gcm;
  if (norm == "chacha20poly1305") return AeadAlg::kChaCha20Poly1305;
  return InvalidArgumentError("unsupported encryption algorithm '" + std::string(name) +
                              "' (supported: aes128gcm, aes256gcm, chacha20poly1305)");
}

bool IsEd25519AlgName(std::string_view name) {
  std::string up;
  for (char c : name) up += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  return up == "ED25519";
}

}  // namespace ctfs
