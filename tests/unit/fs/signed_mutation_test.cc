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
#include <nlohmann/json.hpp>
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
#include "tests/testing/temp_dir.h"
#include "tests/unit/fs/resign_util.h"

namespace ctfs::fs {
namespace {

using ctfs::testing::ReadFile;
using ctfs::testing::TempDir;
using ctfs::testing::WriteFile;
using Json = nlohmann::ordered_json;

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

// JsonMutator makes one random structural change to a JSON value.
class JsonMutator {
 public:
  explicit JsonMutator(std::mt19937_64& rng) : rng_(rng) {}

  void Mutate(Json& root) {
    std::vector<Node> nodes;
    Collect(root, nullptr, "", 0, nodes);
    Node n = nodes[Pick(nodes.size())];
    switch (Pick(6)) {
      case 0:
        *n.value = Interesting();
        break;
      case 1:  // delete (the root is replaced instead)
        if (n.parent && n.parent->is_object()) {
          n.parent->erase(n.key);
        } else if (n.parent && n.parent->is_array()) {
          n.parent->erase(n.index);
        } else {
          *n.value = Interesting();
        }
        break;
      case 2: {  // copy another node here, or into this container
        Json copy = *nodes[Pick(nodes.size())].value;
        if (n.value->is_object() && Pick(2) == 0) {
          (*n.value)[Pick(2) == 0 ? std::string("extra") : RandomKeyOf(*n.value)] = copy;
        } else if (n.value->is_array()) {
          n.value->insert(n.value->begin() + static_cast<long>(Pick(n.value->size() + 1)), copy);
        } else {
          *n.value = copy;
        }
        break;
      }
      case 3:
        if (n.value->is_string())
          *n.value = TweakString(n.value->get<std::string>());
        else
          *n.value = Interesting();
        break;
      case 4:
        if (n.value->is_number_integer())
          *n.value = TweakNumber(*n.value);
        else
          *n.value = Interesting();
        break;
      default:
        if (n.value->is_array() && n.value->size() >= 2) {
          std::swap((*n.value)[Pick(n.value->size())], (*n.value)[Pick(n.value->size())]);
        } else if (n.value->is_array() || n.value->is_object()) {
          n.value->clear();
        } else {
          *n.value = Interesting();
        }
    }
  }

  // TweakString: truncated, a character changed or added, or (for base64) decoded, changed by
  // a bit or a byte and encoded again, so that it still decodes.
  std::string TweakString(std::string s) {
    auto decoded = format::Base64Decode(s);
    if (decoded.ok() && !s.empty() && Pick(2) == 0) {
      Bytes b = *decoded;
      switch (Pick(3)) {
        case 0:
          if (!b.empty()) b[Pick(b.size())] ^= static_cast<uint8_t>(1u << Pick(8));
          break;
        case 1:
          if (!b.empty()) b.pop_back();
          break;
        default:
          b.push_back(static_cast<uint8_t>(Pick(256)));
      }
      return format::Base64Encode(b);
    }
    switch (Pick(4)) {
      case 0:
        return s.substr(0, Pick(s.size() + 1));
      case 1:
        if (!s.empty()) s[Pick(s.size())] = static_cast<char>(Pick(256));
        return s;
      case 2:
        s.insert(Pick(s.size() + 1), 1, "x\n=.{}\"\\\0 "[Pick(11)]);
        return s;
      default:
        return s + s;
    }
  }

 private:
  struct Node {
    Json* value;
    Json* parent;
    std::string key;
    size_t index;
  };

  void Collect(Json& v, Json* parent, const std::string& key, size_t index,
               std::vector<Node>& out) {
    out.push_back({&v, parent, key, index});
    if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it) Collect(it.value(), &v, it.key(), 0, out);
    } else if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i) Collect(v[i], &v, "", i, out);
    }
  }

  Json Interesting() {
    switch (Pick(16)) {
      case 0:
        return nullptr;
      case 1:
        return true;
      case 2:
        return 0;
      case 3:
        return -1;
      case 4:
        return 1;
      case 5:
        return uint64_t{1} << 32;
      case 6:
        return (uint64_t{1} << 53) + 1;
      case 7:
        return ~uint64_t{0};
      case 8:
        return 1.5;
      case 9:
        return 1e308;
      case 10:
        return "";
      case 11:
        return "AAAA";
      case 12:
        return std::string(5000, 'A');
      case 13:
        return Json::array();
      case 14:
        return Json::object();
      default:
        return "2";
    }
  }

  Json TweakNumber(const Json& v) {
    if (v.is_number_unsigned()) {
      uint64_t x = v.get<uint64_t>();
      const uint64_t options[] = {x + 1, x - 1, x * 2, x / 2, 0, x << 20};
      return options[Pick(6)];
    }
    int64_t x = v.get<int64_t>();
    const int64_t options[] = {x + 1, x - 1, -x, 0};
    return options[Pick(4)];
  }

  std::string RandomKeyOf(const Json& obj) {
    if (obj.empty()) return "k";
    auto it = obj.begin();
    std::advance(it, static_cast<long>(Pick(obj.size())));
    return it.key();
  }

  size_t Pick(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }

  std::mt19937_64& rng_;
};

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

  static void MutateCryptoJson(format::SafetensorsHeader& h, std::mt19937_64& rng,
                               JsonMutator& mutator) {
    std::vector<format::MetadataEntry*> targets;
    for (auto& m : h.metadata) {
      if (m.key == format::kCryptoKeysKey || m.key == format::kEncryptionKey ||
          m.key == format::kPolicyKey) {
        targets.push_back(&m);
      }
    }
    if (targets.empty()) return;
    format::MetadataEntry& m = *targets[rng() % targets.size()];
    const uint64_t roll = rng() % 20;
    if (roll == 0) {  // the entry gone
      std::erase_if(h.metadata, [&](const auto& e) { return &e == &m; });
      return;
    }
    Json j = Json::parse(m.value, nullptr, /*allow_exceptions=*/false);
    if (roll == 1 || j.is_discarded()) {  // text-level change: often no longer JSON
      m.value = mutator.TweakString(m.value);
      return;
    }
    mutator.Mutate(j);
    m.value = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  }

  static void MutateTensorTable(format::SafetensorsHeader& h, std::mt19937_64& rng) {
    if (h.tensors.empty()) return;
    format::TensorInfo& t = h.tensors[rng() % h.tensors.size()];
    switch (rng() % 6) {
      case 0:
        t.dtype = static_cast<format::Dtype>(rng() % (static_cast<int>(format::Dtype::kF16) + 1));
        break;
      case 1:
        if (!t.shape.empty()) t.shape[rng() % t.shape.size()] += rng() % 3 ? 1 : ~uint64_t{0};
        break;
      case 2:
        t.end += rng() % 2 ? 1 : ~uint64_t{0};
        break;
      case 3:
        t.name += "x";
        break;
      case 4:
        std::swap(t.begin, t.end);
        break;
      default:
        h.tensors.erase(h.tensors.begin() + static_cast<long>(rng() % h.tensors.size()));
    }
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
