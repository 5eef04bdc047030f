// SPDX-License-Identifier: Apache-2.0
// Structure-aware mutation of CryptoTensors files for the open_file fuzzer: parse the input as
// a safetensors file, make one random structural change and sign the header again with the
// frozen fixtures' signing key, so that the mutant gets past the signature check and reaches
// key unwrap, policy, decryption and the plain view. Inputs that do not parse are left to
// libFuzzer's byte-level mutations (LLVMFuzzerMutate).
//
// Changes (one per call, picked by the seed libFuzzer passes):
//   * JSON edits inside __crypto_keys__ / __encryption__ / __policy__ (tests/testing/
//     header_mutator.h, shared with tests/unit/fs/signed_mutation_test.cc), or byte-level
//     edits of a metadata value (LLVMFuzzerMutate, kept ASCII so the header stays UTF-8);
//   * tensor table edits: the shared random ones, and valid ones (reshape, same-size dtype,
//     member order, rename with its __encryption__ entry);
//   * re-encryption with another geometry: chunk size, version 1/2, nonce counters near 2^32,
//     tensors switched between encrypted and plain (valid files the fixtures do not have);
//   * user metadata and __ctfs_plain_header__ edits;
//   * data byte edits, truncation and extension; header length (the u64 N) edits.
#ifndef CTFS_TESTS_FUZZ_SIGNED_FILE_MUTATOR_H_
#define CTFS_TESTS_FUZZ_SIGNED_FILE_MUTATOR_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "base/secret_bytes.h"
#include "crypto/aead.h"
#include "format/base64.h"
#include "format/crypt_metadata.h"
#include "format/jwk.h"
#include "format/plain_view.h"
#include "format/safetensors_header.h"
#include "keys/key_resolver.h"
#include "tests/fuzz/reference_decrypt.h"
#include "tests/testing/header_mutator.h"
#include "tests/testing/resign.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace ctfs::fuzz {

class SignedFileMutator {
 public:
  // `signer` signs the mutants; `keys` gives the master keys for re-encryption. Both must
  // outlive the mutator.
  // `fixtures` (whole files) are where a mutant that no longer parses may start over.
  SignedFileMutator(const format::Jwk& signer, const keys::KeyResolver& keys,
                    std::vector<std::string> fixtures)
      : signer_(signer), keys_(keys), fixtures_(std::move(fixtures)) {}

  // Mutate: the LLVMFuzzerCustomMutator contract (mutates data[0, size) in place, returns the
  // new size <= max_size).
  size_t Mutate(uint8_t* data, size_t size, size_t max_size, unsigned seed) const {
    std::mt19937_64 rng(seed);
    if (rng() % 16 == 0) return LLVMFuzzerMutate(data, size, max_size);
    auto parsed = format::ParseHeader(ByteSpan(data, size), size);
    if (!parsed.ok()) {
      // Mostly byte-level mutations; sometimes a fresh start from a fixture, so that most of
      // the time goes to files that get past the header.
      const std::string& fixture = fixtures_[Pick(rng, fixtures_.size())];
      if (rng() % 4 != 0 || fixture.size() > max_size) {
        return LLVMFuzzerMutate(data, size, max_size);
      }
      std::memcpy(data, fixture.data(), fixture.size());
      size = fixture.size();
      parsed = format::ParseHeader(ByteSpan(data, size), size);
      if (!parsed.ok()) return size;
    }
    format::SafetensorsHeader h = std::move(*parsed);
    std::string payload(reinterpret_cast<const char*>(data) + h.data_start(),
                        size - h.data_start());

    bool resign = true;
    int length_edit = 0;
    switch (rng() % 16) {
      case 0:
      case 1:
      case 2: {
        testing::JsonMutator json(rng);
        const int changes = 1 + static_cast<int>(rng() % 3);
        for (int i = 0; i < changes; ++i) testing::MutateCryptoJson(h, rng, json);
        break;
      }
      case 3:
      case 4:
        MutateMetadataBytes(h, rng);
        break;
      case 5:
        testing::MutateTensorTable(h, rng);
        break;
      case 6:
      case 7:
        ValidTableEdit(h, rng);
        break;
      case 8:
      case 9:
      case 10:
        if (!Reencrypt(h, payload, rng)) return LLVMFuzzerMutate(data, size, max_size);
        break;
      case 11:
        MutateUserMetadata(h, rng);
        break;
      case 12:
        MutatePlainHeaderKey(h, rng);
        break;
      case 13:
        MutateData(payload, rng);
        break;
      case 14:
        length_edit = 1 + static_cast<int>(rng() % 6);
        break;
      default:  // the data changed under the old signature
        resign = false;
        MutateData(payload, rng);
    }

    std::string out;
    if (resign) {
      auto bytes = testing::ResignedFile(std::move(h), signer_, payload);
      if (!bytes.ok()) return LLVMFuzzerMutate(data, size, max_size);
      out = std::move(*bytes);
    } else {
      out.assign(reinterpret_cast<const char*>(data), h.data_start());
      out += payload;
    }
    if (length_edit != 0) EditLength(out, length_edit, rng);
    if (out.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
    std::memcpy(data, out.data(), out.size());
    return out.size();
  }

 private:
  static size_t Pick(std::mt19937_64& rng, size_t n) { return n == 0 ? 0 : rng() % n; }

  // MutateMetadataBytes: libFuzzer's byte-level mutation of one metadata value (reserved ones
  // mostly), bytes >= 0x80 folded to ASCII so the header stays valid UTF-8.
  static void MutateMetadataBytes(format::SafetensorsHeader& h, std::mt19937_64& rng) {
    if (h.metadata.empty()) return;
    std::vector<format::MetadataEntry*> reserved;
    for (auto& e : h.metadata) {
      if (format::IsReservedKey(e.key) && e.key != format::kSignatureKey) reserved.push_back(&e);
    }
    format::MetadataEntry& e = !reserved.empty() && rng() % 4 != 0
                                   ? *reserved[Pick(rng, reserved.size())]
                                   : h.metadata[Pick(rng, h.metadata.size())];
    std::string v = e.value;
    const size_t len = v.size();
    v.resize(len * 2 + 64);
    v.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(v.data()), len, v.size()));
    for (char& c : v) c = static_cast<char>(c & 0x7f);
    e.value = std::move(v);
  }

  // ValidTableEdit: a change that keeps the table valid (and the data readable).
  static void ValidTableEdit(format::SafetensorsHeader& h, std::mt19937_64& rng) {
    if (h.tensors.empty()) return;
    format::TensorInfo& t = h.tensors[Pick(rng, h.tensors.size())];
    switch (rng() % 4) {
      case 0:  // reshape to 1-D bytes, or to a scalar of one byte
        t.dtype = format::Dtype::kU8;
        t.shape = {t.byte_len()};
        if (t.byte_len() == 1 && rng() % 2) t.shape.clear();
        break;
      case 1:  // another dtype of the same total size, when the size allows
        if (t.byte_len() % 4 == 0) {
          t.dtype = rng() % 2 ? format::Dtype::kF32 : format::Dtype::kI32;
          t.shape = {t.byte_len() / 4};
        } else if (t.byte_len() % 2 == 0) {
          t.dtype = format::Dtype::kBF16;
          t.shape = {1, t.byte_len() / 2};
        }
        break;
      case 2:  // JSON member order (the signature does not depend on it)
        std::shuffle(h.tensors.begin(), h.tensors.end(), rng);
        break;
      default: {  // rename, together with its __encryption__ entry
        static const char* kNames[] = {"a", "\"q\\", "x/y.z", "\xc3\xa9t\xc3\xa9", "\x7f\x01",
                                       "__ctfs_plain_header__", "t t", ""};
        const std::string old_name = t.name;
        std::string name = kNames[Pick(rng, std::size(kNames))];
        name += std::to_string(rng() % 3);
        if (h.FindTensor(name) != nullptr) return;
        t.name = name;
        for (auto& e : h.metadata) {
          if (e.key != format::kEncryptionKey) continue;
          auto j = testing::OrderedJson::parse(e.value, nullptr, false);
          if (j.is_discarded() || !j.is_object() || !j.contains(old_name)) return;
          j[name] = j[old_name];
          j.erase(old_name);
          e.value = j.dump();
        }
      }
    }
  }

  // Reencrypt decrypts every encrypted tensor (fails if one does not authenticate) and writes
  // the file again with another geometry; the data keys and the policy are kept.
  bool Reencrypt(format::SafetensorsHeader& h, std::string& payload, std::mt19937_64& rng) const {
    auto m = format::ParseCryptMetadata(h);
    if (!m.ok()) return false;
    auto master = keys_.FindKey("oct", m->keys.enc.kid, m->keys.enc.jku);
    if (!master.ok()) return false;
    auto alg = ParseAeadAlg(master->alg);
    if (!alg.ok()) return false;
    CipherParams old_p{*alg, m->keys.chunked(),
                       m->keys.chunked() ? m->keys.EffectiveChunkSize() : 0};

    // New parameters.
    format::CryptoKeys keys = m->keys;
    CipherParams p = old_p;
    p.chunked = rng() % 4 != 0;
    keys.version = p.chunked ? "2" : "1";
    keys.chunk_size.reset();
    if (p.chunked) {
      static const uint64_t kSizes[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 64, 100, 4096,
                                        uint64_t{1} << 40, ~uint64_t{0}};
      p.chunk_size = kSizes[Pick(rng, std::size(kSizes))];
      if (rng() % 8 == 0) {
        p.chunk_size = format::kDefaultChunkSize;  // v2 without chunk_size
      } else {
        keys.chunk_size = p.chunk_size;
        if (rng() % 4 == 0) keys.version = "1";  // chunk_size alone makes v1 chunked too
      }
    }

    std::vector<format::TensorCrypto> entries;
    for (const format::TensorInfo& t : h.tensors) {
      const format::TensorCrypto* e = m->FindEntry(t.name);
      const uint64_t len = t.byte_len();
      MutableByteSpan stored(reinterpret_cast<uint8_t*>(payload.data()) + t.begin, len);
      Bytes plain(len);
      std::optional<SecretBytes> dek;
      if (e != nullptr) {
        dek = UnwrapKey(old_p, master->k, *e);
        if (!dek) return false;
        std::vector<bool> ok;
        DecryptTensor(old_p, *dek, *e, stored, plain, ok);
        if (std::find(ok.begin(), ok.end(), false) != ok.end()) return false;
      } else {
        std::copy(stored.begin(), stored.end(), plain.begin());
      }
      const uint64_t roll = rng() % 8;
      const bool encrypt = e != nullptr ? roll != 0 : roll == 0;
      if (!encrypt) {  // stored in plain from now on
        std::copy(plain.begin(), plain.end(), stored.begin());
        continue;
      }
      format::TensorCrypto tc;
      tc.tensor_name = t.name;
      if (dek && e->wrapped_key.size() == AeadKeyLen(p.alg)) {
        tc.wrapped_key = e->wrapped_key;
        tc.key_iv = e->key_iv;
        tc.key_tag = e->key_tag;
      } else {  // a new data key, wrapped under the master key
        dek.emplace(AeadKeyLen(p.alg));
        for (uint8_t& b : dek->mutable_span()) b = static_cast<uint8_t>(rng());
        tc.key_iv.resize(kAeadNonceLen);
        for (uint8_t& b : tc.key_iv) b = static_cast<uint8_t>(rng());
        tc.wrapped_key.resize(dek->size());
        tc.key_tag.resize(kAeadTagLen);
        if (!crypto::AeadSeal(p.alg, master->k.span(), tc.key_iv, dek->span(), tc.wrapped_key,
                              tc.key_tag)
                 .ok()) {
          return false;
        }
      }
      Bytes nonce(kAeadNonceLen);
      for (uint8_t& b : nonce) b = static_cast<uint8_t>(rng());
      if (rng() % 4 == 0) {  // a counter close to 2^32: the last chunks' nonces near overflow
        const uint32_t room = static_cast<uint32_t>(rng() % 4);
        const uint32_t counter = 0xffffffffu - room -
                                 static_cast<uint32_t>(std::min<uint64_t>(
                                     UnitCount(p, len) - 1, 0xffffffffu - room));
        for (int i = 0; i < 4; ++i) nonce[8 + i] = static_cast<uint8_t>(counter >> (24 - 8 * i));
      }
      if (p.chunked) {
        tc.base_iv = nonce;
      } else if (len > 0 || rng() % 2) {
        tc.iv = nonce;  // (an empty v1 tensor is written with no iv/tag by the reference)
      }
      if (!EncryptTensor(p, *dek, tc, plain, stored)) return false;
      entries.push_back(std::move(tc));
    }
    for (auto& e : h.metadata) {
      if (e.key == format::kCryptoKeysKey) e.value = format::SerializeCryptoKeys(keys);
      if (e.key == format::kEncryptionKey) {
        e.value = format::SerializeEncryption(entries, p.chunked);
      }
    }
    return true;
  }

  static void MutateUserMetadata(format::SafetensorsHeader& h, std::mt19937_64& rng) {
    switch (rng() % 4) {
      case 0:
        h.metadata.insert(h.metadata.begin() + static_cast<long>(Pick(rng, h.metadata.size() + 1)),
                          {"k" + std::to_string(rng() % 4), "v\"\\\n\x01\xc3\xa9"});
        break;
      case 1:  // a user entry gone
        for (size_t i = 0; i < h.metadata.size(); ++i) {
          if (!format::IsReservedKey(h.metadata[i].key)) {
            h.metadata.erase(h.metadata.begin() + static_cast<long>(i));
            break;
          }
        }
        break;
      case 2:
        std::shuffle(h.metadata.begin(), h.metadata.end(), rng);
        break;
      default:  // every entry duplicated under a new key
        if (!h.metadata.empty()) {
          const auto& e = h.metadata[Pick(rng, h.metadata.size())];
          h.metadata.push_back({e.key + "_", e.value});
        }
    }
  }

  // MutatePlainHeaderKey: a __ctfs_plain_header__ that is right (the plain view's own header in
  // another spelling), slightly wrong, or gone.
  static void MutatePlainHeaderKey(format::SafetensorsHeader& h, std::mt19937_64& rng) {
    std::erase_if(h.metadata, [](const auto& e) { return e.key == format::kPlainHeaderKey; });
    if (rng() % 4 == 0) return;
    format::SafetensorsHeader plain = format::PlainHeaderOf(h);
    if (rng() % 2) std::reverse(plain.tensors.begin(), plain.tensors.end());
    if (rng() % 3 == 0) plain.has_metadata = !plain.has_metadata;
    std::string json = format::SerializeHeaderJson(plain);
    json.insert(0, std::string(rng() % 3, ' '));
    json.append(rng() % 9, rng() % 2 ? ' ' : '\n');
    if (rng() % 3 == 0) {
      const size_t len = json.size();
      json.resize(len * 2 + 16);
      json.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(json.data()), len, json.size()));
    }
    const size_t at = Pick(rng, h.metadata.size() + 1);
    h.metadata.insert(h.metadata.begin() + static_cast<long>(at),
                      {format::kPlainHeaderKey, format::Base64Encode(AsBytes(json))});
  }

  static void MutateData(std::string& payload, std::mt19937_64& rng) {
    switch (rng() % 4) {
      case 0:
        if (!payload.empty()) {
          payload[Pick(rng, payload.size())] ^= static_cast<char>(1u << (rng() % 8));
        }
        break;
      case 1:
        if (!payload.empty()) payload.resize(Pick(rng, payload.size()));
        break;
      case 2:
        payload.append(1 + Pick(rng, 16), static_cast<char>(rng()));
        break;
      default: {
        const size_t len = payload.size();
        payload.resize(len + 16);
        payload.resize(
            LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(payload.data()), len, payload.size()));
      }
    }
  }

  // EditLength changes the u64 N at the start of the file.
  static void EditLength(std::string& file, int how, std::mt19937_64& rng) {
    if (file.size() < 8) return;
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file[static_cast<size_t>(i)]);
    switch (how) {
      case 1: n += 1; break;
      case 2: n -= 1; break;
      case 3: n += 8; break;
      case 4: n = file.size() - 8 + rng() % 3; break;
      case 5: n = 100'000'001; break;
      default: n = rng(); break;
    }
    for (int i = 0; i < 8; ++i) file[static_cast<size_t>(i)] = static_cast<char>(n >> (8 * i));
  }

  const format::Jwk& signer_;
  const keys::KeyResolver& keys_;
  const std::vector<std::string> fixtures_;
};

}  // namespace ctfs::fuzz

#endif  // CTFS_TESTS_FUZZ_SIGNED_FILE_MUTATOR_H_
