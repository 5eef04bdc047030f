// SPDX-License-Identifier: Apache-2.0
// Corruption of every region of the frozen encrypted fixtures (written by the reference
// `cryptotensors` 0.2.3, tests/testdata/encrypted): flip every byte and truncate at every
// region boundary. Each case must produce an error of the region's kind; it must never yield
// bytes that differ from the plaintext (except for tensors stored unencrypted, which the format
// does not protect and which are then served as stored).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "crypto/signature.h"
#include "format/base64.h"
#include "format/crypt_metadata.h"
#include "format/signing_message.h"
#include "fs/encrypted_file.h"
#include "fs/whole_file_ops.h"
#include "tests/testing/temp_dir.h"
#include "tests/unit/fs/resign_util.h"

namespace ctfs::fs {
namespace {

using ctfs::testing::ReadFile;
using ctfs::testing::TempDir;
using ctfs::testing::WriteFile;

const std::string kFixtures = std::string(CTFS_TESTDATA_DIR) + "/encrypted/";

struct Fixture {
  std::string raw;         // encrypted file bytes
  std::string plain_data;  // data region of the .plain.safetensors twin
  std::string plain_file;  // the whole .plain.safetensors twin
};

Fixture Load(const std::string& name) {
  Fixture f;
  f.raw = ReadFile(kFixtures + name + ".safetensors");
  f.plain_file = ReadFile(kFixtures + name + ".plain.safetensors");
  EXPECT_GT(f.raw.size(), 100u) << "missing fixture " << name;
  EXPECT_GT(f.plain_file.size(), 8u) << "missing fixture " << name;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(f.plain_file[i]);
  f.plain_data = f.plain_file.substr(8 + n);
  return f;
}

class CorruptionTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fx_ = Load(GetParam());
    ASSERT_NO_FATAL_FAILURE(LoadFixtureKeys(kFixtures, dir_, &keys_));
  }

  // Opens `bytes` as a file and reads the whole data region.
  Status OpenAndReadAll(const std::string& bytes, std::string* data_out) {
    const std::string path = dir_.File("case.safetensors");
    WriteFile(path, bytes);
    auto f = EncryptedFile::Open(path, *keys_.resolver);
    if (!f.ok()) return f.status();
    Bytes all((*f)->header().data_len);
    CTFS_RETURN_IF_ERROR((*f)->ReadData(0, all));
    data_out->assign(all.begin(), all.end());
    return Status::Ok();
  }

  TempDir dir_;
  Fixture fx_;
  FixtureKeys keys_;
};

TEST_P(CorruptionTest, PristineFixtureDecryptsToItsPlainTwin) {
  std::string data;
  ASSERT_TRUE(OpenAndReadAll(fx_.raw, &data).ok());
  EXPECT_EQ(data, fx_.plain_data);
  auto f = EncryptedFile::Open(dir_.File("case.safetensors"), *keys_.resolver);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(VerifyAllChunks(**f, nullptr).ok());
  ASSERT_TRUE(DecryptToFile(**f, dir_.File("out.safetensors"), nullptr).ok());
  const std::string out = ReadFile(dir_.File("out.safetensors"));
  if (out == fx_.plain_file) return;
  // Both the reference and stock safetensors write several metadata keys in random (HashMap)
  // order, so only single-key fixtures are byte-identical. Otherwise require the same header
  // content and identical data.
  auto a = format::ParseHeader(AsBytes(out), out.size());
  auto b = format::ParseHeader(AsBytes(fx_.plain_file), fx_.plain_file.size());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_GT(b->metadata.size(), 1u) << "single-key metadata must round-trip byte for byte";
  auto sorted = [](std::vector<format::MetadataEntry> m) {
    std::sort(m.begin(), m.end(), [](const auto& x, const auto& y) { return x.key < y.key; });
    std::vector<std::pair<std::string, std::string>> pairs;
    for (auto& e : m) pairs.emplace_back(e.key, e.value);
    return pairs;
  };
  EXPECT_EQ(sorted(a->metadata), sorted(b->metadata));
  ASSERT_EQ(a->tensors.size(), b->tensors.size());
  for (size_t i = 0; i < a->tensors.size(); ++i) {
    const auto* t = b->FindTensor(a->tensors[i].name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->begin, a->tensors[i].begin);
    EXPECT_EQ(t->shape, a->tensors[i].shape);
  }
  EXPECT_EQ(out.substr(a->data_start()), fx_.plain_data);
}

TEST_P(CorruptionTest, EveryFlippedByteIsDetectedOrUnprotected) {
  auto hf = ReadHeader(kFixtures + GetParam() + ".safetensors");
  ASSERT_TRUE(hf.ok());
  const uint64_t data_start = hf->header.data_start();
  auto cm = format::ParseCryptMetadata(hf->header);
  ASSERT_TRUE(cm.ok());
  size_t detected = 0;
  for (size_t pos = 0; pos < fx_.raw.size(); ++pos) {
    std::string bad = fx_.raw;
    bad[pos] ^= 0x01;
    std::string data;
    Status st = OpenAndReadAll(bad, &data);
    if (pos < 8) {
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << "length byte " << pos;
    } else if (pos < data_start) {
      EXPECT_FALSE(st.ok()) << "header byte " << pos << " '" << fx_.raw[pos] << "'";
    } else {
      // Which tensor and chunk does this byte belong to?
      uint64_t off = pos - data_start;
      const format::TensorInfo* t = nullptr;
      for (const auto& x : hf->header.tensors) {
        if (off >= x.begin && off < x.end) t = &x;
      }
      ASSERT_NE(t, nullptr);
      if (cm->FindEntry(t->name) == nullptr) {
        // Stored unencrypted: served as stored, exactly that byte differs.
        ASSERT_TRUE(st.ok()) << st.ToString();
        std::string expect = fx_.plain_data;
        expect[off] ^= 0x01;
        EXPECT_EQ(data, expect);
        continue;
      }
      EXPECT_EQ(st.code(), StatusCode::kDataLoss) << "data byte " << pos;
      std::string where = "tensor \"" + t->name + "\"";
      if (cm->keys.chunked()) {
        where += " chunk " + std::to_string((off - t->begin) / cm->keys.EffectiveChunkSize());
      }
      EXPECT_NE(st.message().find(where), std::string::npos) << st.message() << " vs " << where;
    }
    detected += st.ok() ? 0 : 1;
  }
  EXPECT_GT(detected, fx_.raw.size() / 2);
}

TEST_P(CorruptionTest, TruncationAtEveryRegionIsRejected) {
  auto hf = ReadHeader(kFixtures + GetParam() + ".safetensors");
  ASSERT_TRUE(hf.ok());
  std::vector<uint64_t> cuts = {
      0, 1, 7, 8, 9, hf->header.data_start() - 1, hf->header.data_start(), fx_.raw.size() - 1};
  for (const auto& t : hf->header.tensors) cuts.push_back(hf->header.data_start() + t.begin + 1);
  for (uint64_t cut : cuts) {
    if (cut >= fx_.raw.size()) continue;
    std::string data;
    Status st = OpenAndReadAll(fx_.raw.substr(0, cut), &data);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << "cut at " << cut << ": " << st.ToString();
  }
  std::string data;
  EXPECT_EQ(OpenAndReadAll(fx_.raw + "x", &data).code(), StatusCode::kInvalidArgument)
      << "trailing byte (S15)";
}

// Flip one byte of one chunk tag and RE-SIGN the header with the fixture's signing key: the
// signature is then valid, so only the chunk's own tag check can catch it.
TEST_P(CorruptionTest, FlippedTagUnderValidSignatureFailsThatChunkOnly) {
  auto hf = ReadHeader(kFixtures + GetParam() + ".safetensors");
  ASSERT_TRUE(hf.ok());
  format::SafetensorsHeader h = hf->header;
  auto cm = format::ParseCryptMetadata(h);
  ASSERT_TRUE(cm.ok());
  // The last encrypted, non-empty tensor in data order; its last chunk.
  const format::TensorInfo* target = nullptr;
  for (const auto& t : h.tensors) {
    if (cm->FindEntry(t.name) && t.byte_len() > 0 && (!target || t.begin > target->begin)) {
      target = &t;
    }
  }
  ASSERT_NE(target, nullptr);
  std::vector<format::TensorCrypto> entries = cm->entries;
  uint64_t chunk = 0;
  for (auto& e : entries) {
    if (e.tensor_name != target->name) continue;
    if (cm->keys.chunked()) {
      chunk = format::NumChunks(target->byte_len(), cm->keys.EffectiveChunkSize()) - 1;
      e.tags[chunk * 16 + 5] ^= 0x80;
    } else {
      e.tag[5] ^= 0x80;
    }
  }
  for (auto& m : h.metadata) {
    if (m.key == format::kEncryptionKey)
      m.value = format::SerializeEncryption(entries, cm->keys.chunked());
  }
  const format::Jwk* signer = FindSigner(keys_.jwks);
  ASSERT_NE(signer, nullptr);
  auto bytes = ResignedFile(h, *signer, std::string_view(fx_.raw).substr(hf->header.data_start()));
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();

  const std::string path = dir_.File("retagged.safetensors");
  WriteFile(path, *bytes);
  auto f = EncryptedFile::Open(path, *keys_.resolver);
  ASSERT_TRUE(f.ok()) << "re-signed header must open: " << f.status().ToString();
  Bytes all((*f)->header().data_len);
  Status st = (*f)->ReadData(0, all);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_NE(st.message().find("tensor \"" + target->name + "\""), std::string::npos)
      << st.message();
  // Everything before the bad unit still reads and matches.
  uint64_t good_len =
      target->begin + (cm->keys.chunked() ? chunk * cm->keys.EffectiveChunkSize() : 0);
  Bytes head(good_len);
  ASSERT_TRUE((*f)->ReadData(0, head).ok());
  EXPECT_EQ(std::string(head.begin(), head.end()), fx_.plain_data.substr(0, good_len));
}

INSTANTIATE_TEST_SUITE_P(Frozen, CorruptionTest,
                         ::testing::Values("ref_v2_aes256", "ref_v1_aes256",
                                           "ref_v2_chacha_partial", "ref_v2_escapes"));

}  // namespace
}  // namespace ctfs::fs
