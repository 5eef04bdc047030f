// SPDX-License-Identifier: Apache-2.0
// Re-signing a (changed) CryptoTensors header with a fixture's Ed25519 signing key, so that a
// test or fuzzer reaches the checks behind the signature: key unwrap, policy, chunk tags.
// Shared by tests/unit/fs (resign_util.h) and tests/fuzz; no GoogleTest dependency.
#ifndef CTFS_TESTS_TESTING_RESIGN_H_
#define CTFS_TESTS_TESTING_RESIGN_H_

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "crypto/signature.h"
#include "format/base64.h"
#include "format/crypt_metadata.h"
#include "format/jwk.h"
#include "format/safetensors_header.h"
#include "format/signing_message.h"

namespace ctfs::testing {

// FindSigner returns the first Ed25519 key with a private part in `keys`, or nullptr.
inline const format::Jwk* FindSigner(const std::vector<format::Jwk>& keys) {
  for (const auto& k : keys) {
    if (k.kty == "okp" && !k.d.empty()) return &k;
  }
  return nullptr;
}

// ResignedFile returns the bytes of a file made of `header` (its __signature__ replaced by one
// made with `signer` over the canonical message) followed by `data`.
inline Result<std::string> ResignedFile(format::SafetensorsHeader header, const format::Jwk& signer,
                                        std::string_view data) {
  std::erase_if(header.metadata, [](const auto& m) { return m.key == format::kSignatureKey; });
  header.has_metadata = true;  // the signature is a metadata entry
  auto sig = crypto::Ed25519Sign(signer.d, AsBytes(format::BuildSigningMessage(header)));
  if (!sig.ok()) return sig.status();
  header.metadata.push_back({format::kSignatureKey, format::Base64Encode(*sig)});
  Bytes prefix = format::BuildHeaderPrefix(format::SerializeHeaderJson(header));
  std::string bytes(prefix.begin(), prefix.end());
  bytes += data;
  return bytes;
}

}  // namespace ctfs::testing

#endif  // CTFS_TESTS_TESTING_RESIGN_H_
