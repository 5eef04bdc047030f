// SPDX-License-Identifier: Apache-2.0
// ModelTree + ServedTree + PlainFile without FUSE: the tree snapshot, the plain view of
// encrypted files (byte-identical to the original), passthrough, refusal of bad files, and
// revocation.
#include "fs/served_tree.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <random>

#include "crypto/random.h"
#include "crypto/signature.h"
#include "format/jwk.h"
#include "fs/encryptor.h"
#include "tests/testing/temp_dir.h"

namespace ctfs::fs {
namespace {

using ctfs::testing::ReadFile;
using ctfs::testing::TempDir;
using ctfs::testing::WriteFile;

class ServedTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    enc_.kty = "oct";
    enc_.alg = "aes256gcm";
    enc_.kid = "e1";
    enc_.k = *crypto::RandomSecret(32);
    sign_.kty = "okp";
    sign_.alg = "ed25519";
    sign_.kid = "s1";
    sign_.d = *crypto::RandomSecret(32);
    auto x = *crypto::Ed25519PublicKeyFromSeed(sign_.d);
    sign_.x.assign(x.begin(), x.end());
    key_file_ = keys_dir_.File("k.jwk");
    WriteFile(key_file_, format::SerializeJwkSet({&enc_, &sign_}, true));
    ::chmod(key_file_.c_str(), 0600);

    // plain/: a model file with random tensors; src/: its encrypted copy + passthrough files.
    std::mt19937_64 rng(3);
    format::SafetensorsHeader h;
    h.has_metadata = true;
    h.metadata.push_back({"format", "pt"});
    uint64_t off = 0;
    for (uint64_t n : {5000u, 3u, 70000u, 0u, 123u}) {
      h.tensors.push_back(
          {"t" + std::to_string(h.tensors.size()), format::Dtype::kU8, {n}, off, off + n});
      off += n;
    }
    h.data_len = off;
    std::string data(off, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    Bytes prefix = format::BuildHeaderPrefix(format::SerializeHeaderJson(h));
    plain_ = std::string(prefix.begin(), prefix.end()) + data;
    WriteFile(dir_.File("plain.safetensors"), plain_);
    std::filesystem::create_directories(dir_.File("src/sub"));
    EncryptOptions opt;
    opt.chunk_size = 4096;
    ASSERT_TRUE(EncryptFile(dir_.File("plain.safetensors"), dir_.File("src/model.safetensors"),
                            enc_, sign_, opt, nullptr)
                    .ok());
    WriteFile(dir_.File("src/config.json"), "{\"a\":1}");
    WriteFile(dir_.File("src/sub/other.safetensors"), plain_);  // plain: passthrough
  }

  keys::KeyResolver Resolver() { return *keys::KeyResolver::Create({{key_file_}, false, false}); }

  std::string ReadAll(ServedTree& tree, uint64_t ino, size_t piece) {
    auto h = tree.Open(ino);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (!h.ok()) return "";
    std::string out;
    Bytes buf(piece);
    for (uint64_t off = 0;; off += piece) {
      auto n = tree.Read(*h, off, buf);
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (!n.ok() || *n == 0) break;
      out.append(buf.begin(), buf.begin() + *n);
    }
    return out;
  }

  TempDir dir_, keys_dir_;
  format::Jwk enc_, sign_;
  std::string key_file_;
  std::string plain_;
};

TEST_F(ServedTreeTest, ServesPlainViewsAndPassthrough) {
  auto resolver = Resolver();
  std::vector<std::string> warnings;
  auto tree = ServedTree::Create(dir_.File("src"), resolver, {}, &warnings);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  (*tree)->StartWorkers();
  const ModelTree& mt = (*tree)->tree();
  const TreeNode* model = mt.Lookup(kRootIno, "model.safetensors");
  const TreeNode* config = mt.Lookup(kRootIno, "config.json");
  const TreeNode* sub = mt.Lookup(kRootIno, "sub");
  ASSERT_TRUE(model && config && sub);
  const TreeNode* other = mt.Lookup(sub->ino, "other.safetensors");
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(model->kind, TreeNode::Kind::kEncrypted);
  EXPECT_EQ(other->kind, TreeNode::Kind::kPassthrough);
  EXPECT_EQ(model->size, plain_.size()) << "plain size known from the header alone";
  EXPECT_EQ(model->mode & 0222, 0u) << "no write bits";
  EXPECT_EQ(mt.Lookup(kRootIno, "missing"), nullptr);
  for (size_t piece : {1u << 20, 4096u, 777u}) {
    EXPECT_EQ(ReadAll(**tree, model->ino, piece), plain_) << piece;
  }
  EXPECT_EQ(ReadAll(**tree, other->ino, 65536), plain_);
  EXPECT_EQ(ReadAll(**tree, config->ino, 10), "{\"a\":1}");
  EXPECT_GT((*tree)->cache().hits(), 0u) << "small reads reuse decrypted chunks";
  EXPECT_EQ((*tree)->Open(sub->ino).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ServedTreeTest, RevokeDeniesOpensAndReadsAndWipesCache) {
  auto resolver = Resolver();
  auto tree = ServedTree::Create(dir_.File("src"), resolver, {}, nullptr);
  ASSERT_TRUE(tree.ok());
  (*tree)->StartWorkers();
  const TreeNode* model = (*tree)->tree().Lookup(kRootIno, "model.safetensors");
  auto h = (*tree)->Open(model->ino);
  ASSERT_TRUE(h.ok());
  Bytes buf(100);
  ASSERT_TRUE((*tree)->Read(*h, 5000, buf).ok());
  EXPECT_GT((*tree)->cache().cached_bytes(), 0u);
  (*tree)->Revoke();
  EXPECT_TRUE((*tree)->revoked());
  EXPECT_EQ((*tree)->cache().cached_bytes(), 0u);
  EXPECT_EQ((*tree)->Read(*h, 0, buf).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ((*tree)->Open(model->ino).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(ServedTreeTest, BadFileRefusesMountUnlessAllowed) {
  // Break the signature: change a metadata value in the header text (same length).
  std::string raw = ReadFile(dir_.File("src/model.safetensors"));
  size_t pos = raw.find("\"format\":\"pt\"");
  ASSERT_NE(pos, std::string::npos);
  raw.replace(pos, 13, "\"format\":\"tf\"");
  WriteFile(dir_.File("src/model.safetensors"), raw);
  auto resolver = Resolver();
  auto refused = ServedTree::Create(dir_.File("src"), resolver, {}, nullptr);
  EXPECT_EQ(refused.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(refused.status().message().find("model.safetensors"), std::string::npos);
  ServeOptions opt;
  opt.allow_bad_files = true;
  std::vector<std::string> warnings;
  auto tree = ServedTree::Create(dir_.File("src"), resolver, opt, &warnings);
  ASSERT_TRUE(tree.ok());
  ASSERT_EQ(warnings.size(), 1u);
  const TreeNode* model = (*tree)->tree().Lookup(kRootIno, "model.safetensors");
  EXPECT_EQ((*tree)->Open(model->ino).status().code(), StatusCode::kDataLoss);
  const TreeNode* config = (*tree)->tree().Lookup(kRootIno, "config.json");
  EXPECT_TRUE((*tree)->Open(config->ino).ok());
}

TEST_F(ServedTreeTest, MissingKeyRefusesMount) {
  TempDir other;
  format::Jwk enc2 = enc_.Clone();
  enc2.kid = "someone-else";
  WriteFile(other.File("k.jwk"), format::SerializeJwkSet({&enc2, &sign_}, false));
  ::chmod(other.File("k.jwk").c_str(), 0600);
  auto resolver = *keys::KeyResolver::Create({{other.File("k.jwk")}, false, false});
  auto t = ServedTree::Create(dir_.File("src"), resolver, {}, nullptr);
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("e1"), std::string::npos) << t.status().message();
}

}  // namespace
}  // namespace ctfs::fs
