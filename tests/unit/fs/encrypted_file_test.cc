// SPDX-License-Identifier: Apache-2.0
// EncryptedFile + EncryptFile + whole-file ops: round trips through the library (no CLI),
// random plaintext ranges across chunk and tensor boundaries, partial encryption, v1, and
// isolation of a corrupted chunk (other ranges still read).
#include "fs/encrypted_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <random>

#include "crypto/random.h"
#include "crypto/signature.h"
#include "format/base64.h"
#include "format/jwk.h"
#include "fs/encryptor.h"
#include "fs/whole_file_ops.h"
#include "tests/testing/temp_dir.h"
#include "tests/unit/fs/encrypt_test_util.h"

namespace ctfs::fs {
namespace {

using ctfs::testing::ReadFile;
using ctfs::testing::TempDir;
using ctfs::testing::WriteFile;
using testutil::Keys;
using testutil::MakeKeys;

// Tensors of awkward sizes (an empty one, ones around chunk sizes of 100).
std::string MakePlain(const std::string& path, std::mt19937_64& rng) {
  return testutil::MakePlain(
      path, {{"a", 1}, {"b", 999}, {"c", 1000}, {"d", 0}, {"e", 4097}, {"f", 77}, {"g", 12345}},
      rng);
}

class EncryptedFileTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(EncryptedFileTest, RandomRangesMatchPlaintextAndDecryptIsByteExact) {
  const auto& [version, alg] = GetParam();
  TempDir dir;
  std::mt19937_64 rng(42);
  Keys keys = MakeKeys(dir, alg);
  const std::string plain = dir.File("p.safetensors"), enc = dir.File("e.safetensors");
  std::string data = MakePlain(plain, rng);
  EncryptOptions opt;
  opt.version = version;
  opt.chunk_size = 100;
  uint64_t progress = 0;
  ASSERT_TRUE(
      EncryptFile(plain, enc, keys.enc, keys.sign, opt, [&](uint64_t n) { progress += n; }).ok());
  EXPECT_EQ(progress, data.size());

  auto resolver = keys::KeyResolver::Create({{keys.key_file}, false, false});
  ASSERT_TRUE(resolver.ok()) << resolver.status().ToString();
  auto f = EncryptedFile::Open(enc, *resolver);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ((*f)->header().data_len, data.size());

  // Boundaries +-1 of every chunk and tensor, then random ranges.
  std::vector<uint64_t> marks = {0, data.size()};
  for (const auto& t : (*f)->header().tensors) {
    for (uint64_t o = t.begin; o <= t.end; o += (version == "2" ? 100 : t.end - t.begin + 1)) {
      marks.push_back(o);
    }
    marks.push_back(t.end);
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (uint64_t m : marks) {
    for (int64_t d1 : {-1, 0, 1}) {
      for (uint64_t len : {1, 2, 101, 5000}) {
        int64_t s = static_cast<int64_t>(m) + d1;
        if (s < 0 || static_cast<uint64_t>(s) + len > data.size()) continue;
        ranges.push_back({static_cast<uint64_t>(s), len});
      }
    }
  }
  for (int i = 0; i < 500; ++i) {
    uint64_t s = rng() % data.size();
    ranges.push_back({s, rng() % (data.size() - s) + 1});
  }
  // Normal reads first, then with direct reads on (runs read ciphertext with O_DIRECT, at
  // unaligned offsets and lengths; single units stay buffered).
  for (bool direct : {false, true}) {
    if (direct) {
      Status st = (*f)->EnableDirectReads();
      if (st.code() == StatusCode::kFailedPrecondition) break;  // no O_DIRECT on this fs
      ASSERT_TRUE(st.ok()) << st.ToString();
      ASSERT_TRUE((*f)->direct_reads());
    }
    for (const auto& [off, len] : ranges) {
      Bytes out(len);
      ASSERT_TRUE((*f)->ReadData(off, out).ok()) << off << "+" << len << " direct " << direct;
      ASSERT_EQ(std::string(out.begin(), out.end()), data.substr(off, len))
          << off << "+" << len << " direct " << direct;
    }
    // Every tensor as runs of all its units, and of every other unit (gaps in a run).
    for (size_t i = 0; i < (*f)->header().tensors.size(); ++i) {
      const auto& t = (*f)->header().tensors[i];
      for (uint64_t step : {1, 2}) {
        std::vector<Bytes> bufs;
        std::vector<EncryptedFile::RunUnit> units;
        for (uint64_t u = 0; u < (*f)->NumAuthUnits(i); u += step) {
          bufs.emplace_back((*f)->AuthUnitLen(i, u));
        }
        for (uint64_t u = 0, k = 0; u < (*f)->NumAuthUnits(i); u += step, ++k) {
          units.push_back({u, bufs[k], InternalError("unset")});
        }
        std::vector<size_t> done;
        (*f)->DecryptRun(i, units, [&](size_t k) { done.push_back(k); });
        ASSERT_EQ(done.size(), units.size());
        const uint64_t unit_len = version == "2" ? 100 : t.byte_len();
        for (size_t k = 0; k < units.size(); ++k) {
          EXPECT_EQ(done[k], k);
          ASSERT_TRUE(units[k].status.ok()) << t.name << " unit " << units[k].unit;
          EXPECT_EQ(std::string(bufs[k].begin(), bufs[k].end()),
                    data.substr(t.begin + units[k].unit * unit_len, bufs[k].size()))
              << t.name << " unit " << units[k].unit << " direct " << direct;
        }
      }
    }
  }
  Bytes past(2);
  EXPECT_EQ((*f)->ReadData(data.size() - 1, past).code(), StatusCode::kInvalidArgument);

  ASSERT_TRUE(DecryptToFile(**f, dir.File("d.safetensors"), nullptr).ok());
  EXPECT_EQ(ReadFile(dir.File("d.safetensors")), ReadFile(plain));
  auto report = VerifyAllChunks(**f, nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->tensors_encrypted, 7u);
  EXPECT_EQ(report->bytes_verified, data.size());
}

INSTANTIATE_TEST_SUITE_P(Formats, EncryptedFileTest,
                         ::testing::Values(std::tuple("2", "aes256gcm"),
                                           std::tuple("2", "aes128gcm"),
                                           std::tuple("2", "chacha20poly1305"),
                                           std::tuple("1", "aes256gcm"),
                                           std::tuple("1", "chacha20poly1305")));

TEST(EncryptedFile, PartialEncryptionServesPlainTensorsAsStored) {
  TempDir dir;
  std::mt19937_64 rng(7);
  Keys keys = MakeKeys(dir);
  std::string data = MakePlain(dir.File("p.safetensors"), rng);
  EncryptOptions opt;
  opt.tensor_globs = {"[bg]"};
  ASSERT_TRUE(EncryptFile(dir.File("p.safetensors"), dir.File("e.safetensors"), keys.enc, keys.sign,
                          opt, nullptr)
                  .ok());
  auto resolver = *keys::KeyResolver::Create({{keys.key_file}, false, false});
  auto f = EncryptedFile::Open(dir.File("e.safetensors"), resolver);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  int encrypted = 0;
  for (size_t i = 0; i < (*f)->header().tensors.size(); ++i)
    encrypted += (*f)->IsTensorEncrypted(i);
  EXPECT_EQ(encrypted, 2);
  Bytes all(data.size());
  ASSERT_TRUE((*f)->ReadData(0, all).ok());
  EXPECT_EQ(std::string(all.begin(), all.end()), data);
  // Plain tensors really are stored in plain, encrypted ones are not.
  std::string raw = ReadFile(dir.File("e.safetensors"));
  const auto* c = (*f)->header().FindTensor("c");
  const auto* g = (*f)->header().FindTensor("g");
  uint64_t ds = (*f)->header().data_start();
  EXPECT_EQ(raw.substr(ds + c->begin, c->byte_len()), data.substr(c->begin, c->byte_len()));
  EXPECT_NE(raw.substr(ds + g->begin, g->byte_len()), data.substr(g->begin, g->byte_len()));
}

TEST(EncryptedFile, CorruptChunkFailsOnlyItsOwnRanges) {
  TempDir dir;
  std::mt19937_64 rng(9);
  Keys keys = MakeKeys(dir);
  std::string data = MakePlain(dir.File("p.safetensors"), rng);
  EncryptOptions opt;
  opt.chunk_size = 100;
  ASSERT_TRUE(EncryptFile(dir.File("p.safetensors"), dir.File("e.safetensors"), keys.enc, keys.sign,
                          opt, nullptr)
                  .ok());
  std::string raw = ReadFile(dir.File("e.safetensors"));
  auto resolver = *keys::KeyResolver::Create({{keys.key_file}, false, false});
  uint64_t ds, g_begin;
  {
    auto f = *EncryptedFile::Open(dir.File("e.safetensors"), resolver);
    ds = f->header().data_start();
    g_begin = f->header().FindTensor("g")->begin;
  }
  raw[ds + g_begin + 350] ^= 0x40;  // tensor g, chunk 3
  WriteFile(dir.File("e.safetensors"), raw);
  auto f = *EncryptedFile::Open(dir.File("e.safetensors"), resolver);
  Bytes out(10);
  Status bad = f->ReadData(g_begin + 345, out);
  EXPECT_EQ(bad.code(), StatusCode::kDataLoss);
  EXPECT_NE(bad.message().find("tensor \"g\" chunk 3"), std::string::npos) << bad.message();
  EXPECT_EQ(out, Bytes(10, 0)) << "no unauthenticated byte may be released";
  // Neighbouring chunks and other tensors still read fine.
  ASSERT_TRUE(f->ReadData(g_begin + 290, MutableByteSpan(out.data(), 10)).ok());
  EXPECT_EQ(std::string(out.begin(), out.end()), data.substr(g_begin + 290, 10));
  ASSERT_TRUE(f->ReadData(g_begin + 400, MutableByteSpan(out.data(), 10)).ok());
  EXPECT_EQ(std::string(out.begin(), out.end()), data.substr(g_begin + 400, 10));
  // A run over the corrupt chunk fails that chunk alone (wiped), read normally and direct.
  const size_t g = static_cast<size_t>(f->header().FindTensor("g") - &f->header().tensors[0]);
  for (bool direct : {false, true}) {
    if (direct && !f->EnableDirectReads().ok()) break;
    std::vector<Bytes> bufs(6, Bytes(100, 0xEE));
    std::vector<EncryptedFile::RunUnit> units;
    for (uint64_t u = 0; u < 6; ++u) units.push_back({u, bufs[u], InternalError("unset")});
    f->DecryptRun(g, units);
    for (uint64_t u = 0; u < 6; ++u) {
      if (u == 3) {
        EXPECT_EQ(units[u].status.code(), StatusCode::kDataLoss) << "direct " << direct;
        EXPECT_EQ(bufs[u], Bytes(100, 0)) << "the failed chunk is wiped";
        continue;
      }
      ASSERT_TRUE(units[u].status.ok()) << "unit " << u << ": " << units[u].status.ToString();
      EXPECT_EQ(std::string(bufs[u].begin(), bufs[u].end()), data.substr(g_begin + u * 100, 100));
    }
  }
  auto report = VerifyAllChunks(*f, nullptr);
  EXPECT_EQ(report.status().code(), StatusCode::kDataLoss);
  EXPECT_FALSE(DecryptToFile(*f, dir.File("d.safetensors"), nullptr).ok());
  struct stat st;
  EXPECT_NE(::stat(dir.File("d.safetensors").c_str(), &st), 0) << "no partial output";
}

TEST(EncryptedFile, WrongKeysAndPlainFiles) {
  TempDir dir;
  std::mt19937_64 rng(11);
  Keys keys = MakeKeys(dir);
  MakePlain(dir.File("p.safetensors"), rng);
  ASSERT_TRUE(EncryptFile(dir.File("p.safetensors"), dir.File("e.safetensors"), keys.enc, keys.sign,
                          {}, nullptr)
                  .ok());
  // Same kids, other bytes: unwrap fails (DataLoss), and the signature check fails first if
  // the signing key differs.
  Keys other = MakeKeys(dir, "aes256gcm");
  other.sign.d = *crypto::RandomSecret(32);
  auto x = *crypto::Ed25519PublicKeyFromSeed(other.sign.d);
  other.sign.x.assign(x.begin(), x.end());
  WriteFile(other.key_file, format::SerializeJwkSet({&other.enc, &keys.sign}, true));
  auto wrong_enc = *keys::KeyResolver::Create({{other.key_file}, false, false});
  auto f = EncryptedFile::Open(dir.File("e.safetensors"), wrong_enc);
  EXPECT_EQ(f.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(f.status().message().find("unwrap"), std::string::npos);
  WriteFile(other.key_file, format::SerializeJwkSet({&keys.enc, &other.sign}, true));
  auto wrong_sign = *keys::KeyResolver::Create({{other.key_file}, false, false});
  f = EncryptedFile::Open(dir.File("e.safetensors"), wrong_sign);
  EXPECT_EQ(f.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(f.status().message().find("signature"), std::string::npos);
  auto right = *keys::KeyResolver::Create({{keys.key_file}, false, false});
  EXPECT_EQ(EncryptedFile::Open(dir.File("p.safetensors"), right).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(EncryptFile(dir.File("e.safetensors"), dir.File("e2.safetensors"), keys.enc, keys.sign,
                        {}, nullptr)
                .code(),
            StatusCode::kInvalidArgument)
      << "encrypting an encrypted file is refused";
}

}  // namespace
}  // namespace ctfs::fs
