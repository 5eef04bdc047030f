// SPDX-License-Identifier: Apache-2.0
// EncryptFile's data path: tensors spanning several read/seal/write blocks (chunk sizes that do
// and do not divide the block, larger than it, v1, unselected tensors copied) decrypt byte for
// byte; a read failing midway returns the error and leaves no output and no temporary.
#include "fs/encryptor.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "format/crypt_metadata.h"
#include "fs/encrypted_file.h"
#include "fs/whole_file_ops.h"
#include "tests/testing/temp_dir.h"
#include "tests/unit/fs/encrypt_test_util.h"

namespace ctfs::fs {
namespace {

using ctfs::testing::ReadFile;
using ctfs::testing::TempDir;

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Case {
  std::string version;
  uint64_t chunk_size;
  std::vector<std::string> globs;
};

class EncryptorBlocksTest : public ::testing::TestWithParam<Case> {};

TEST_P(EncryptorBlocksTest, MultiBlockTensorsRoundTripByteExact) {
  const Case& c = GetParam();
  TempDir dir;
  std::mt19937_64 rng(3);
  testutil::Keys keys = testutil::MakeKeys(dir);
  const testutil::TensorSizes sizes = {
      {"big", (5 << 20) + 3}, {"empty", 0}, {"two", 2 << 20}, {"one", 1}, {"mid", (2 << 20) + 1}};
  std::string data = testutil::MakePlain(dir.File("p.safetensors"), sizes, rng);
  EncryptOptions opt;
  opt.version = c.version;
  opt.chunk_size = c.chunk_size;
  opt.tensor_globs = c.globs;
  uint64_t progress = 0;
  Status s = EncryptFile(dir.File("p.safetensors"), dir.File("e.safetensors"), keys.enc, keys.sign,
                         opt, [&](uint64_t n) { progress += n; });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(progress, data.size());

  auto resolver = *keys::KeyResolver::Create({{keys.key_file}, false, false});
  auto f = EncryptedFile::Open(dir.File("e.safetensors"), resolver);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto report = VerifyAllChunks(**f, nullptr);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  uint64_t units = 0, encrypted = 0;
  for (const auto& [name, len] : sizes) {
    bool selected = c.globs.empty() || name == "big" || name == "empty";
    if (!selected) continue;
    ++encrypted;
    units += c.version == "2" ? format::NumChunks(len, c.chunk_size) : 1;
  }
  EXPECT_EQ(report->tensors_encrypted, encrypted);
  EXPECT_EQ(report->units_verified, units);
  ASSERT_TRUE(DecryptToFile(**f, dir.File("d.safetensors"), nullptr).ok());
  EXPECT_EQ(ReadFile(dir.File("d.safetensors")), ReadFile(dir.File("p.safetensors")));
}

INSTANTIATE_TEST_SUITE_P(
    ChunkSizes, EncryptorBlocksTest,
    ::testing::Values(Case{"2", 2 << 20, {}},               // default: one chunk per block
                      Case{"2", 100000, {}},                // 20 chunks per block, partial last
                      Case{"2", 4096, {}},                  // 512 chunks per block
                      Case{"2", 3 << 20, {}},               // chunk larger than the block target
                      Case{"2", 100000, {"big", "empty"}},  // others copied in plain
                      Case{"1", 2 << 20, {}},               // whole-tensor AEAD
                      Case{"1", 2 << 20, {"big", "empty"}}),
    [](const ::testing::TestParamInfo<Case>& param_info) {
      const Case& c = param_info.param;
      return "v" + c.version + "_chunk" + std::to_string(c.chunk_size) +
             (c.globs.empty() ? "_all" : "_some");
    });

TEST(Encryptor, ReadFailingMidwayLeavesNoOutput) {
  TempDir dir;
  std::mt19937_64 rng(5);
  testutil::Keys keys = testutil::MakeKeys(dir);
  const std::string src = dir.File("p.safetensors");
  testutil::MakePlain(src, {{"a", 3 << 20}, {"b", 3 << 20}}, rng);
  const auto before = DirEntries(dir.path());
  // After the first block the source shrinks: the next read hits EOF (a read error midway).
  int calls = 0;
  Status s = EncryptFile(src, dir.File("e.safetensors"), keys.enc, keys.sign, {}, [&](uint64_t) {
    if (++calls == 1) std::filesystem::resize_file(src, 4096);
  });
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(DirEntries(dir.path()), before) << "no output and no temporary file may remain";
}

}  // namespace
}  // namespace ctfs::fs
