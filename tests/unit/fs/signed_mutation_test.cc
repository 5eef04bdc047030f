// SPDX-License-Identifier: Apache-2.0
// Hostile headers under a valid signature. Each case takes a frozen reference fixture, makes
// one to three random structural changes (to the JSON inside __crypto_keys__, __encryption__
// or __policy__, to the tensor table, or to the data region), signs the header again with the
// fixture's own signing key and opens and reads the result. A signature only says who wrote a
// header, not that it is sane, so everything behind it must hold up too:
//   * nothing crashes (CI runs this under ASan/UBSan), and every refusal is an error naming
//     the file;
//   * a read that succeeds returns, for each tensor the header calls encrypted, exactly the
//     fixture's plaintext, and for each tensor stored in plain, exactly the stored bytes (the
//     format does not protect those); a changed tensor table is the signer's word, so there
//     only "no crash" and the served view's own consistency are checked;
//   * the served view (PlainFile) agrees with EncryptedFile::ReadData and its header parses.
// The number of cases per fixture is CTFS_MUTATION_CASES (default 600). The cases depend only on
// the fixture's name, so a failure (which names its case) repeats on every machine.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "format/base64.h"
#include "format/crypt_metadata.h"
#include "format/jwk.h"
#include "fs/chunk_cache.h"
#include "fs/encrypted_file.h"
#include "fs/plain_file.h"
#include "tests/testing/header_mutator.h"
#include "tests/testing/temp_dir.h"
#include "tests/unit/fs/resign_util.h"

namespace ctfs::fs {
namespace {

using ctfs::testing::JsonMutator;
using ctfs::testing::MutateCryptoJson;
using ctfs::testing::MutateTensorTable;
using ctfs::testing::ReadFile;
using ctfs::testing::TempDir;
using ctfs::testing::WriteFile;

const std::string kFixtures = std::string(CTFS_TESTDATA_DIR) + "/encrypted/";

// A seed that depends on the fixture's name only (FNV-1a), the same on every machine.
uint64_t SeedFor(const std::string& name) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

size_t CasesPerFixture() {
  const char* env = std::getenv("CTFS_MUTATION_CASES");
  return env ? static_cast<size_t>(std::strtoull(env, nullptr, 10)) : 600;
}

class SignedMutationTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    raw_ = ReadFile(kFixtures + GetParam() + ".safetensors");
    const std::string plain_file = ReadFile(kFixtures + GetParam() + ".plain.safetensors");
    auto plain = ReadHeader(kFixtures + GetParam() + ".plain.safetensors");
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    plain_data_ = plain_file.substr(plain->header.data_start());
    auto hf = ReadHeader(kFixtures + GetParam() + ".safetensors");
    ASSERT_TRUE(hf.ok()) << hf.status().ToString();
    header_ = hf->header;

    ASSERT_NO_FATAL_FAILURE(LoadFixtureKeys(kFixtures, dir_, &keys_));
    signer_ = FindSigner(keys_.jwks);
    ASSERT_NE(signer_, nullptr);
  }

  // What a case changed, for the checks that follow.
  enum class Target { kCryptoJson, kTensorTable, kData };

  // MakeCase applies 1-3 changes to a copy of the fixture; returns the file bytes.
  std::string MakeCase(std::mt19937_64& rng, Target* target) {
    format::SafetensorsHeader h = header_;
    std::string data = raw_.substr(header_.data_start());
    JsonMutator mutator(rng);
    const uint64_t roll = rng() % 10;
    *target = roll < 7 ? Target::kCryptoJson : roll < 9 ? Target::kTensorTable : Target::kData;
    const int changes = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < changes; ++i) {
      if (*target == Target::kCryptoJson) {
        MutateCryptoJson(h, rng, mutator);
      } else if (*target == Target::kTensorTable) {
        MutateTensorTable(h, rng);
      } else if (!data.empty()) {
        data[rng() % data.size()] ^= static_cast<char>(1u << (rng() % 8));
      }
    }
    auto bytes = ResignedFile(h, *signer_, data);
    EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
    return bytes.ok() ? *bytes : std::string();
  }

  // Outcome counts over all cases of a fixture.
  struct Outcomes {
    size_t open_failed = 0;
    size_t read_failed = 0;
    size_t read_ok = 0;
  };

  // CheckCase opens and reads one case and checks the properties in the file comment.
  void CheckCase(const std::string& bytes, Target target, Outcomes& outcomes) {
    const std::string path = dir_.File("case.safetensors");
    WriteFile(path, bytes);
    auto f = EncryptedFile::Open(path, *keys_.resolver);
    if (!f.ok()) {
      ++outcomes.open_failed;
      EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status().ToString();
      return;
    }
    const EncryptedFile& ef = **f;
    Bytes data(ef.header().data_len);
    Status st = ef.ReadData(0, data);
    if (st.ok()) {
      ++outcomes.read_ok;
      if (target != Target::kTensorTable) ExpectTensorBytes(ef, bytes, data);
    } else {
      ++outcomes.read_failed;
      EXPECT_FALSE(st.message().empty());
    }

    // The served view: its header parses and describes the same tensors, and its data is what
    // ReadData gave (or the read fails too).
    ChunkCache cache(1u << 20);
    auto pf = PlainFile::FromEncrypted(std::move(*f), 1, &cache, nullptr);
    Bytes served(pf->size());
    auto n = pf->Read(0, served);
    if (!st.ok()) {
      EXPECT_FALSE(n.ok()) << "ReadData failed (" << st.ToString() << ") but the served view read";
      return;
    }
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    ASSERT_EQ(*n, served.size());
    auto plain = format::ParseHeader(served, served.size());
    ASSERT_TRUE(plain.ok()) << "served header: " << plain.status().ToString();
    EXPECT_EQ(plain->tensors.size(), pf->encrypted_file()->header().tensors.size());
    EXPECT_TRUE(std::equal(data.begin(), data.end(), served.begin() + plain->data_start()));
  }

  // ExpectTensorBytes: encrypted tensors read as the fixture's plaintext, tensors stored in
  // plain as the stored bytes (data offsets are those of the fixture: the table is unchanged).
  void ExpectTensorBytes(const EncryptedFile& ef, const std::string& bytes, const Bytes& data) {
    const std::string stored = bytes.substr(ef.header().data_start());
    for (size_t i = 0; i < ef.header().tensors.size(); ++i) {
      const format::TensorInfo& t = ef.header().tensors[i];
      const std::string got(data.begin() + static_cast<long>(t.begin),
                            data.begin() + static_cast<long>(t.end));
      const std::string& want_from = ef.IsTensorEncrypted(i) ? plain_data_ : stored;
      EXPECT_EQ(got, want_from.substr(t.begin, t.byte_len()))
          << "tensor " << t.name << (ef.IsTensorEncrypted(i) ? " (encrypted)" : " (plain)");
    }
  }

  TempDir dir_;
  std::string raw_;
  std::string plain_data_;
  format::SafetensorsHeader header_;
  FixtureKeys keys_;
  const format::Jwk* signer_ = nullptr;
};

TEST_P(SignedMutationTest, HostileSignedHeadersFailCleanlyOrServeTheRightBytes) {
  const uint64_t seed = SeedFor(GetParam());
  std::mt19937_64 rng(seed);
  Outcomes outcomes;
  const size_t cases = CasesPerFixture();
  for (size_t c = 0; c < cases; ++c) {
    SCOPED_TRACE("seed " + std::to_string(seed) + ", case " + std::to_string(c));
    Target target;
    const std::string bytes = MakeCase(rng, &target);
    CheckCase(bytes, target, outcomes);
    if (HasFailure()) break;
  }
  // The cases must reach every stage: refused at open, refused at read, and served.
  if (cases >= 200 && !HasFailure()) {
    EXPECT_GT(outcomes.open_failed, cases / 20);
    EXPECT_GT(outcomes.read_failed, 0u);
    EXPECT_GT(outcomes.read_ok, cases / 100);
  }
  std::printf("%s: %zu cases, open refused %zu, read refused %zu, served %zu\n", GetParam().c_str(),
              cases, outcomes.open_failed, outcomes.read_failed, outcomes.read_ok);
}

INSTANTIATE_TEST_SUITE_P(Frozen, SignedMutationTest,
                         ::testing::Values("ref_v2_aes256", "ref_v1_aes256",
                                           "ref_v2_chacha_partial", "ref_v2_escapes",
                                           "ref_v2_zero_ties"));

}  // namespace
}  // namespace ctfs::fs
