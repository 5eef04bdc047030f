// SPDX-License-Identifier: Apache-2.0
// Shared helpers of the EncryptFile tests: a fresh writer key set (master + signing key, also
// written as a JWK Set file) and plain safetensors files of given tensor sizes.
#ifndef CTFS_TESTS_UNIT_FS_ENCRYPT_TEST_UTIL_H_
#define CTFS_TESTS_UNIT_FS_ENCRYPT_TEST_UTIL_H_

#include <sys/stat.h>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "crypto/random.h"
#include "crypto/signature.h"
#include "format/jwk.h"
#include "format/safetensors_header.h"
#include "tests/testing/temp_dir.h"

namespace ctfs::fs::testutil {

struct Keys {
  format::Jwk enc, sign;
  std::string key_file;
};

inline Keys MakeKeys(const ctfs::testing::TempDir& dir, const std::string& alg = "aes256gcm") {
  Keys k;
  k.enc.kty = "oct";
  k.enc.alg = alg;
  k.enc.kid = "enc-" + alg;
  k.enc.k = *crypto::RandomSecret(AeadKeyLen(*ParseAeadAlg(alg)));
  k.sign.kty = "okp";
  k.sign.alg = "ed25519";
  k.sign.kid = "sign-1";
  k.sign.d = *crypto::RandomSecret(32);
  auto x = *crypto::Ed25519PublicKeyFromSeed(k.sign.d);
  k.sign.x.assign(x.begin(), x.end());
  k.key_file = dir.File("keys-" + alg + ".jwk");
  ctfs::testing::WriteFile(k.key_file, format::SerializeJwkSet({&k.enc, &k.sign}, true));
  chmod(k.key_file.c_str(), 0600);
  return k;
}

// (tensor name, byte length), laid out in this order.
using TensorSizes = std::vector<std::pair<std::string, uint64_t>>;

// MakePlain writes a plain safetensors file of U8 tensors with random bytes; returns its data
// region.
inline std::string MakePlain(const std::string& path, const TensorSizes& sizes,
                             std::mt19937_64& rng) {
  format::SafetensorsHeader h;
  h.has_metadata = true;
  h.metadata.push_back({"format", "pt"});
  uint64_t off = 0;
  for (const auto& [name, n] : sizes) {
    format::TensorInfo t;
    t.name = name;
    t.dtype = format::Dtype::kU8;
    t.shape = {n};
    t.begin = off;
    t.end = off + n;
    off += n;
    h.tensors.push_back(t);
  }
  h.data_len = off;
  std::string data(off, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  Bytes prefix = format::BuildHeaderPrefix(format::SerializeHeaderJson(h));
  ctfs::testing::WriteFile(path, std::string(prefix.begin(), prefix.end()) + data);
  return data;
}

}  // namespace ctfs::fs::testutil

#endif  // CTFS_TESTS_UNIT_FS_ENCRYPT_TEST_UTIL_H_
