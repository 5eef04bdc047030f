// SPDX-License-Identifier: Apache-2.0
// Fuzzes format/crypt_metadata (the four reserved keys of an encrypted header, cross-checked
// against its tensor table). Two input forms:
//   * a whole safetensors file (the encrypted fixtures are the seeds): its header is parsed;
//   * otherwise, byte 0 picks a frozen fixture (byte0 / 4 % 5) and one of its reserved
//     values (byte0 % 4: __crypto_keys__, __encryption__, __policy__, __signature__), which
//     the rest of the input replaces, so that the JSON texts are fuzzed directly
//     (tests/fuzz/make_seeds.py writes these seeds from the fixtures).
// Oracles, for accepted metadata:
//   * the documented field sizes and cross-checks hold for every entry;
//   * written back with the writer's serializers (SerializeCryptoKeys, SerializeEncryption,
//     SerializePolicy, Base64Encode), it parses to the same metadata.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "format/base64.h"
#include "format/crypt_metadata.h"
#include "format/safetensors_header.h"
#include "format/signing_message.h"
#include "tests/fuzz/fuzz_util.h"

namespace ctfs::fuzz {
namespace {

constexpr std::array<const char*, 5> kFixtures = {
    "ref_v2_aes256", "ref_v1_aes256", "ref_v2_chacha_partial", "ref_v2_escapes",
    "ref_v2_zero_ties"};
constexpr std::array<const char*, 4> kSlots = {format::kCryptoKeysKey, format::kEncryptionKey,
                                               format::kPolicyKey, format::kSignatureKey};

const std::vector<format::SafetensorsHeader>& FixtureHeaders() {
  static const auto* headers = [] {
    auto* out = new std::vector<format::SafetensorsHeader>;
    for (const char* name : kFixtures) {
      const std::string bytes =
          ReadFileOrDie(TestdataPath(std::string("encrypted/") + name + ".safetensors"));
      auto h = format::ParseHeader(AsBytes(bytes), bytes.size());
      FUZZ_CHECK(h.ok(), std::string("fixture ") + name + ": " + h.status().ToString());
      out->push_back(std::move(*h));
    }
    return out;
  }();
  return *headers;
}

bool SameDescriptor(const format::KeyDescriptor& a, const format::KeyDescriptor& b) {
  return a.kty == b.kty && a.alg == b.alg && a.kid == b.kid && a.jku == b.jku;
}

bool SameEntry(const format::TensorCrypto& a, const format::TensorCrypto& b) {
  return a.tensor_name == b.tensor_name && a.wrapped_key == b.wrapped_key &&
         a.key_iv == b.key_iv && a.key_tag == b.key_tag && a.iv == b.iv && a.tag == b.tag &&
         a.base_iv == b.base_iv && a.tags == b.tags;
}

bool SameMetadata(const format::CryptMetadata& a, const format::CryptMetadata& b) {
  if (a.keys.version != b.keys.version || a.keys.chunk_size != b.keys.chunk_size ||
      !SameDescriptor(a.keys.enc, b.keys.enc) || !SameDescriptor(a.keys.sign, b.keys.sign) ||
      a.enc_alg != b.enc_alg || a.policy.local != b.policy.local ||
      a.policy.remote != b.policy.remote || a.signature != b.signature ||
      a.entries.size() != b.entries.size()) {
    return false;
  }
  for (size_t i = 0; i < a.entries.size(); ++i) {
    if (!SameEntry(a.entries[i], b.entries[i])) return false;
  }
  return true;
}

// CheckAccepted: the contract of ParseCryptMetadata for an accepted header.
void CheckAccepted(const format::SafetensorsHeader& h, const format::CryptMetadata& m) {
  FUZZ_CHECK(m.keys.version == "1" || m.keys.version == "2", "version " + m.keys.version);
  FUZZ_CHECK(!m.keys.chunk_size || *m.keys.chunk_size > 0, "chunk_size 0");
  FUZZ_CHECK(m.keys.enc.kty == "oct" && m.keys.sign.kty == "okp", "kty");
  FUZZ_CHECK(IsEd25519AlgName(m.keys.sign.alg), "sign alg " + m.keys.sign.alg);
  auto alg = ParseAeadAlg(m.keys.enc.alg);
  FUZZ_CHECK(alg.ok() && *alg == m.enc_alg, "enc alg " + m.keys.enc.alg);
  FUZZ_CHECK(m.signature.size() == 64, "signature length");
  for (size_t i = 0; i < m.entries.size(); ++i) {
    const format::TensorCrypto& e = m.entries[i];
    FUZZ_CHECK(i == 0 || m.entries[i - 1].tensor_name < e.tensor_name, "entries not sorted");
    FUZZ_CHECK(m.FindEntry(e.tensor_name) == &e, "FindEntry");
    const format::TensorInfo* t = h.FindTensor(e.tensor_name);
    FUZZ_CHECK(t != nullptr, "entry for unknown tensor " + e.tensor_name);
    FUZZ_CHECK(e.wrapped_key.size() == AeadKeyLen(m.enc_alg), "wrapped key length");
    FUZZ_CHECK(e.key_iv.size() == kAeadNonceLen && e.key_tag.size() == kAeadTagLen,
               "key_iv / key_tag length");
    if (m.keys.chunked()) {
      const uint64_t chunks = format::NumChunks(t->byte_len(), m.keys.EffectiveChunkSize());
      FUZZ_CHECK(e.base_iv.size() == kAeadNonceLen, "base_iv length");
      FUZZ_CHECK(e.tags.size() % kAeadTagLen == 0 && e.tags.size() / kAeadTagLen >= chunks,
                 "tag count");
      FUZZ_CHECK(format::ChunkNonce(e.base_iv, chunks - 1).ok(), "last chunk has no nonce");
      FUZZ_CHECK(e.iv.empty() && e.tag.empty(), "whole-tensor fields in chunked mode");
    } else {
      const bool empty_pair = e.iv.empty() && e.tag.empty() && t->byte_len() == 0;
      FUZZ_CHECK(empty_pair || (e.iv.size() == kAeadNonceLen && e.tag.size() == kAeadTagLen),
                 "iv / tag length");
      FUZZ_CHECK(e.base_iv.empty() && e.tags.empty(), "chunked fields in whole-tensor mode");
    }
  }

  // Written back the writer's way, it parses to the same metadata.
  format::SafetensorsHeader again = h;
  for (format::MetadataEntry& entry : again.metadata) {
    if (entry.key == format::kCryptoKeysKey) {
      entry.value = format::SerializeCryptoKeys(m.keys);
    } else if (entry.key == format::kEncryptionKey) {
      entry.value = format::SerializeEncryption(m.entries, m.keys.chunked());
    } else if (entry.key == format::kPolicyKey) {
      entry.value = format::SerializePolicy(m.policy);
    } else if (entry.key == format::kSignatureKey) {
      entry.value = format::Base64Encode(m.signature);
    }
  }
  auto reparsed = format::ParseCryptMetadata(again);
  FUZZ_CHECK(reparsed.ok(), "serialized metadata rejected: " + reparsed.status().ToString());
  FUZZ_CHECK(SameMetadata(*reparsed, m), "serialized metadata parses differently");
}

void FuzzCryptMetadata(ByteSpan input) {
  format::SafetensorsHeader h;
  if (auto file = format::ParseHeader(input, input.size()); file.ok()) {
    h = std::move(*file);
  } else if (!input.empty()) {
    const uint8_t selector = input[0];
    h = FixtureHeaders()[selector / 4 % kFixtures.size()];
    const std::string_view slot = kSlots[selector % 4];
    const std::string value(AsStringView(input.subspan(1)));
    for (format::MetadataEntry& e : h.metadata) {
      if (e.key == slot) e.value = value;
    }
  } else {
    return;
  }
  (void)format::BuildSigningMessage(h);
  if (!format::IsEncrypted(h)) return;
  auto m = format::ParseCryptMetadata(h);
  if (!m.ok()) {
    FUZZ_CHECK(!m.status().message().empty(), "empty error message");
    return;
  }
  CheckAccepted(h, *m);
}

}  // namespace
}  // namespace ctfs::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)ctfs::fuzz::FixtureHeaders();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctfs::fuzz::FuzzCryptMetadata(ctfs::ByteSpan(data, size));
  return 0;
}
