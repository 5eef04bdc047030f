// SPDX-License-Identifier: Apache-2.0
// The four reserved __metadata__ keys of a CryptoTensors file (cryptotensors-format.md §1.2-1.6):
// parsing, strict validation, cross-validation against the tensor table, and the exact text
// the reference writer produces.
#ifndef CTFS_FORMAT_CRYPT_METADATA_H_
#define CTFS_FORMAT_CRYPT_METADATA_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "base/result.h"
#include "format/safetensors_header.h"

namespace ctfs::format {

inline constexpr char kCryptoKeysKey[] = "__crypto_keys__";
inline constexpr char kEncryptionKey[] = "__encryption__";
inline constexpr char kPolicyKey[] = "__policy__";
inline constexpr char kSignatureKey[] = "__signature__";
inline constexpr uint64_t kDefaultChunkSize = 2097152;  // reference DEFAULT_CHUNK_SIZE
inline constexpr char kDefaultPolicyText[] = "package model\nallow = true";

// One key descriptor of __crypto_keys__ (enc or sign): public information only.
struct KeyDescriptor {
  std::string kty;  // "oct" (enc) or "okp" (sign), exact lowercase
  std::string alg;  // as written; parsed with ParseAeadAlg / IsEd25519AlgName
  std::optional<std::string> kid;
  std::optional<std::string> jku;
};

struct CryptoKeys {
  std::string version;                 // "1" or "2"
  std::optional<uint64_t> chunk_size;  // as written (present => chunked mode)
  KeyDescriptor enc;
  KeyDescriptor sign;

  // Chunked: chunk_size present, or version "2" (cryptotensors-format.md §1.3).
  bool chunked() const { return chunk_size.has_value() || version == "2"; }
  // EffectiveChunkSize: chunk_size, or kDefaultChunkSize for v2 without one. REQUIRES chunked().
  uint64_t EffectiveChunkSize() const { return chunk_size.value_or(kDefaultChunkSize); }
};

// One __encryption__ entry (a SingleCryptor).
struct TensorCrypto {
  std::string tensor_name;
  Bytes wrapped_key;  // == key length of the algorithm
  Bytes key_iv;       // 12
  Bytes key_tag;      // 16
  // Whole-tensor (v1) mode: 12/16 bytes, or both empty for an empty tensor.
  Bytes iv;
  Bytes tag;
  // Chunked mode: base nonce (12) and concatenated chunk tags (16 each, >= needed count).
  Bytes base_iv;
  Bytes tags;
};

struct Policy {
  std::string local = kDefaultPolicyText;
  std::string remote = kDefaultPolicyText;
};

struct CryptMetadata {
  CryptoKeys keys;
  AeadAlg enc_alg = AeadAlg::kAes256Gcm;  // keys.enc.alg parsed
  std::vector<TensorCrypto> entries;      // sorted by tensor name
  Policy policy;
  Bytes signature;  // 64 bytes

  // FindEntry returns the entry for `tensor_name`, or nullptr (= tensor stored in plain).
  const TensorCrypto* FindEntry(std::string_view tensor_name) const;
};

// IsEncrypted: the header has an "__encryption__" metadata key (§1.2: presence alone decides).
bool IsEncrypted(const SafetensorsHeader& header);

// IsReservedKey: one of the four reserved keys above.
bool IsReservedKey(std::string_view key);

// NumChunks returns max(1, ceil(len / chunk_size)). REQUIRES chunk_size > 0.
uint64_t NumChunks(uint64_t tensor_len, uint64_t chunk_size);

// ParseCryptMetadata parses all four reserved keys of an encrypted header and cross-validates
// them against its tensor table: every entry names an existing tensor; field sizes (wrapped key
// = algorithm key length, nonces 12, tags 16); chunked mode needs base_iv and >= NumChunks tags,
// whole mode needs iv/tag (or both empty for an empty tensor); version "1"/"2"; chunk_size > 0;
// kty oct/okp and algorithms we support. Unknown fields are rejected. Errors name the key and
// tensor. REQUIRES: IsEncrypted(header).
Result<CryptMetadata> ParseCryptMetadata(const SafetensorsHeader& header);

// ChunkNonce derives the nonce of chunk `index`: base[0..8] || BE32(BE32(base[8..12]) + index)
// with a checked add; overflow is DataLoss (the reference refuses too). REQUIRES base 12 bytes.
Result<std::array<uint8_t, 12>> ChunkNonce(ByteSpan base_iv, uint64_t index);

// Writer side: the exact compact JSON text the reference writes.
// SerializeCryptoKeys: keys sorted ({"chunk_size":..,"enc":{"alg","kid","kty"},"sign":..,
// "version":..}), kid/jku only if set, chunk_size only if set.
std::string SerializeCryptoKeys(const CryptoKeys& keys);
// SerializeEncryption: object keyed by tensor name (sorted), each entry's fields in the order
// wrapped_key, key_iv, key_tag, then iv, tag (whole mode) or base_iv, tags (chunked mode).
std::string SerializeEncryption(const std::vector<TensorCrypto>& entries, bool chunked);
// SerializePolicy: {"local":..,"remote":..}.
std::string SerializePolicy(const Policy& policy);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_CRYPT_METADATA_H_
