// SPDX-License-Identifier: Apache-2.0
// Locked layers: the split plan (which tensors go where, the index), the plain shard writer,
// and the reader's recognition of a locked shard without its key (ProbeLockedShard).
#include "fs/lock_split.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "format/locked_shard.h"
#include "format/model_index.h"
#include "fs/encrypted_file.h"
#include "fs/encryptor.h"
#include "keys/key_resolver.h"
#include "tests/testing/temp_dir.h"
#include "tests/unit/fs/encrypt_test_util.h"

namespace ctfs::fs {
namespace {

using testutil::TensorSizes;

SourceShard Shard(const std::string& name, const TensorSizes& sizes) {
  SourceShard s;
  s.name = name;
  s.header.has_metadata = true;
  s.header.metadata.push_back({"format", "pt"});
  uint64_t off = 0;
  for (const auto& [t, n] : sizes) {
    s.header.tensors.push_back({t, format::Dtype::kU8, {n}, off, off + n});
    off += n;
  }
  s.header.data_len = off;
  s.header.header_len = 64;
  return s;
}

std::vector<std::string> TensorNames(const LockSplitPlan::Output& o) {
  std::vector<std::string> out;
  for (const auto& p : o.pieces) {
    for (const auto& t : p.tensors) out.push_back(t.name);
  }
  return out;
}

const LockSplitPlan::Output* Find(const LockSplitPlan& p, const std::string& name) {
  for (const auto& o : p.outputs) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

TEST(LockSplitTest, SingleFileModelGetsRenamedShardLockedShardAndIndex) {
  auto plan = PlanLockSplit({Shard("model.safetensors", {{"l.0.w", 4}, {"l.1.w", 8}, {"head", 2}})},
                            {}, {"l.0.*"}, {"model.safetensors", "config.json"});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->locked_name, "model-locked.safetensors");
  EXPECT_EQ(plan->index_name, "model.safetensors.index.json");
  EXPECT_EQ(plan->replaced, std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(plan->locked_tensors, 1u);
  ASSERT_EQ(plan->outputs.size(), 2u);
  const auto* rest = Find(*plan, "model-00001-of-00001.safetensors");
  const auto* locked = Find(*plan, "model-locked.safetensors");
  ASSERT_NE(rest, nullptr);
  ASSERT_NE(locked, nullptr);
  EXPECT_FALSE(rest->locked);
  EXPECT_TRUE(locked->locked);
  EXPECT_EQ(TensorNames(*rest), (std::vector<std::string>{"l.1.w", "head"}));
  EXPECT_EQ(TensorNames(*locked), std::vector<std::string>{"l.0.w"});
  bool marker = false;
  for (const auto& e : locked->metadata)
    marker |= e.key == format::kLockedKey && e.value == "l.0.*";
  EXPECT_TRUE(marker);
  auto wm = format::ParseWeightMap(plan->index_text, "index");
  ASSERT_TRUE(wm.ok());
  EXPECT_EQ(wm->at("l.0.w"), "model-locked.safetensors");
  EXPECT_EQ(wm->at("l.1.w"), "model-00001-of-00001.safetensors");
  EXPECT_EQ(wm->at("head"), "model-00001-of-00001.safetensors");
  EXPECT_NE(plan->index_text.find("\"total_size\": 14"), std::string::npos);
}

TEST(LockSplitTest, ShardedModelRewritesOnlyAffectedShardsAndDropsEmptyOnes) {
  std::string index = format::NewModelIndex(12, {{"a.0", "m-1.safetensors"},
                                                 {"a.1", "m-1.safetensors"},
                                                 {"b.0", "m-2.safetensors"},
                                                 {"c", "m-3.safetensors"}});
  auto plan = PlanLockSplit(
      {Shard("m-1.safetensors", {{"a.0", 2}, {"a.1", 2}}), Shard("m-2.safetensors", {{"b.0", 4}}),
       Shard("m-3.safetensors", {{"c", 4}})},
      {{"m.safetensors.index.json", index}}, {"a.1", "b.*"},
      {"m-1.safetensors", "m-2.safetensors", "m-3.safetensors", "m.safetensors.index.json"});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(plan->locked_name, "m-locked.safetensors");
  // m-3 is untouched (copied as is); m-2 is dropped (all locked); m-1 is rewritten.
  EXPECT_EQ(plan->replaced, (std::vector<std::string>{"m.safetensors.index.json", "m-1.safetensors",
                                                      "m-2.safetensors"}));
  ASSERT_EQ(plan->outputs.size(), 2u);
  EXPECT_EQ(TensorNames(*Find(*plan, "m-1.safetensors")), std::vector<std::string>{"a.0"});
  EXPECT_EQ(TensorNames(*Find(*plan, "m-locked.safetensors")),
            (std::vector<std::string>{"a.1", "b.0"}));
  auto wm = format::ParseWeightMap(plan->index_text, "index");
  ASSERT_TRUE(wm.ok());
  EXPECT_EQ(wm->at("a.0"), "m-1.safetensors");
  EXPECT_EQ(wm->at("a.1"), "m-locked.safetensors");
  EXPECT_EQ(wm->at("b.0"), "m-locked.safetensors");
  EXPECT_EQ(wm->at("c"), "m-3.safetensors");
}

TEST(LockSplitTest, Errors) {
  const auto one = std::vector<SourceShard>{Shard("model.safetensors", {{"x", 1}})};
  auto nomatch = PlanLockSplit(one, {}, {"y*"}, {"model.safetensors"});
  ASSERT_FALSE(nomatch.ok());
  EXPECT_NE(nomatch.status().message().find("'y*' matches no tensor"), std::string::npos);
  EXPECT_FALSE(PlanLockSplit(one, {}, {}, {"model.safetensors"}).ok());
  auto bad_glob = PlanLockSplit(one, {}, {"x[", "x"}, {"model.safetensors"});
  ASSERT_FALSE(bad_glob.ok());
  EXPECT_NE(bad_glob.status().message().find("--lock"), std::string::npos);
  // Several shards without an index.
  auto two = PlanLockSplit({Shard("a.safetensors", {{"x", 1}}), Shard("b.safetensors", {{"y", 1}})},
                           {}, {"x"}, {"a.safetensors", "b.safetensors"});
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("index"), std::string::npos);
  // Two indexes.
  std::string idx = format::NewModelIndex(1, {{"x", "model.safetensors"}});
  EXPECT_FALSE(PlanLockSplit(one,
                             {{"a.safetensors.index.json", idx}, {"b.safetensors.index.json", idx}},
                             {"x"}, {})
                   .ok());
  // The index names a missing shard.
  std::string bad = format::NewModelIndex(1, {{"x", "gone.safetensors"}});
  EXPECT_FALSE(PlanLockSplit(one, {{"model.safetensors.index.json", bad}}, {"x"}, {}).ok());
  // Name clash with a kept file.
  auto clash = PlanLockSplit(one, {}, {"x"}, {"model.safetensors", "model-locked.safetensors"});
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.status().message().find("model-locked.safetensors"), std::string::npos);
}

class LockFilesTest : public ::testing::Test {
 protected:
  ctfs::testing::TempDir dir_;
  std::mt19937_64 rng_{7};
};

TEST_F(LockFilesTest, WritePlainShardCopiesTensorBytesFromSeveralSources) {
  std::string d1 = testutil::MakePlain(dir_.File("m-1.safetensors"), {{"a", 5}, {"b", 300}}, rng_);
  std::string d2 = testutil::MakePlain(dir_.File("m-2.safetensors"), {{"c", 7}}, rng_);
  auto h1 = ReadHeader(dir_.File("m-1.safetensors"));
  auto h2 = ReadHeader(dir_.File("m-2.safetensors"));
  ASSERT_TRUE(h1.ok() && h2.ok());
  std::string index = format::NewModelIndex(
      312, {{"a", "m-1.safetensors"}, {"b", "m-1.safetensors"}, {"c", "m-2.safetensors"}});
  auto plan = PlanLockSplit({{"m-1.safetensors", h1->header}, {"m-2.safetensors", h2->header}},
                            {{"m.safetensors.index.json", index}}, {"b", "c"}, {});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const auto* locked = Find(*plan, "m-locked.safetensors");
  ASSERT_NE(locked, nullptr);
  ASSERT_TRUE(WritePlainShard(*locked, dir_.path(), dir_.File("out.safetensors")).ok());
  auto out = ReadHeader(dir_.File("out.safetensors"));
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->header.tensors.size(), 2u);
  const std::string bytes = ctfs::testing::ReadFile(dir_.File("out.safetensors"));
  const std::string data = bytes.substr(out->header.data_start());
  EXPECT_EQ(data, d1.substr(5, 300) + d2);
  ASSERT_NE(out->header.FindMetadata(format::kLockedKey), nullptr);
  EXPECT_EQ(*out->header.FindMetadata("format"), "pt");
}

TEST_F(LockFilesTest, ProbeRecognisesOnlyASignedLockedShardWithoutItsKey) {
  testutil::Keys main = testutil::MakeKeys(dir_);
  ctfs::testing::TempDir lock_dir;
  testutil::Keys lock = testutil::MakeKeys(lock_dir);  // same kids: give the lock key its own
  lock.enc.kid = "lock-1";
  // A plain shard with the marker, encrypted under the lock key, signed by the main key.
  format::SafetensorsHeader h;
  h.has_metadata = true;
  h.metadata = {{"format", "pt"}, {format::kLockedKey, "l.*"}};
  h.tensors.push_back({"l.0", format::Dtype::kU8, {16}, 0, 16});
  h.data_len = 16;
  Bytes prefix = format::BuildHeaderPrefix(format::SerializeHeaderJson(h));
  ctfs::testing::WriteFile(dir_.File("plain.safetensors"),
                           std::string(prefix.begin(), prefix.end()) + std::string(16, 'x'));
  ASSERT_TRUE(EncryptFile(dir_.File("plain.safetensors"), dir_.File("locked.safetensors"), lock.enc,
                          main.sign, EncryptOptions{}, nullptr)
                  .ok());
  auto open = [&](const std::string& name) { return *PosixFile::Open(dir_.File(name)); };

  // Reader with the main key set only (signing key yes, lock key no): locked.
  auto main_only = keys::KeyResolver::Create({{main.key_file}, false, false});
  ASSERT_TRUE(main_only.ok());
  auto probe = ProbeLockedShard(*open("locked.safetensors"), *main_only);
  ASSERT_TRUE(probe.has_value());
  EXPECT_EQ(probe->lock_kid, "lock-1");
  Status err = LockedError("m-locked.safetensors", *probe);
  EXPECT_EQ(err.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(err.message(), "locked: m-locked.safetensors: lock key lock-1 not available");
  auto opened = EncryptedFile::Open(dir_.File("locked.safetensors"), *main_only);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kNotFound);

  // A tampered header (marker value changed, so the signature fails): not a known state.
  std::string bytes = ctfs::testing::ReadFile(dir_.File("locked.safetensors"));
  size_t at = bytes.find("\"l.*\"");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 1] = 'm';
  ctfs::testing::WriteFile(dir_.File("tampered.safetensors"), bytes);
  EXPECT_FALSE(ProbeLockedShard(*open("tampered.safetensors"), *main_only).has_value());

  // No signing key available: the marker cannot be trusted.
  ctfs::testing::TempDir other_dir;
  testutil::Keys other = testutil::MakeKeys(other_dir);
  other.sign.kid = "other-sign";
  other.enc.kid = "other-enc";
  ctfs::testing::WriteFile(other.key_file,
                           format::SerializeJwkSet({&other.enc, &other.sign}, true));
  auto stranger = keys::KeyResolver::Create({{other.key_file}, false, false});
  ASSERT_TRUE(stranger.ok()) << stranger.status().message();
  EXPECT_FALSE(ProbeLockedShard(*open("locked.safetensors"), *stranger).has_value());

  // With the lock key: not "locked", it opens.
  ctfs::testing::WriteFile(lock.key_file, format::SerializeJwkSet({&lock.enc}, true));
  auto both = keys::KeyResolver::Create({{main.key_file, lock.key_file}, false, false});
  ASSERT_TRUE(both.ok()) << both.status().message();
  EXPECT_FALSE(ProbeLockedShard(*open("locked.safetensors"), *both).has_value());
  EXPECT_TRUE(EncryptedFile::Open(dir_.File("locked.safetensors"), *both).ok());

  // Without the marker, a missing key is just a missing key.
  testutil::MakePlain(dir_.File("unmarked-plain.safetensors"), {{"l.0", 16}}, rng_);
  ASSERT_TRUE(EncryptFile(dir_.File("unmarked-plain.safetensors"),
                          dir_.File("unmarked.safetensors"), lock.enc, main.sign, EncryptOptions{},
                          nullptr)
                  .ok());
  EXPECT_FALSE(ProbeLockedShard(*open("unmarked.safetensors"), *main_only).has_value());
}

}  // namespace
}  // namespace ctfs::fs
