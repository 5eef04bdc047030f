// SPDX-License-Identifier: Apache-2.0
// ModelTree + ServedTree + PlainFile without FUSE: the tree snapshot, the plain view of
// encrypted files (byte-identical to the original), passthrough, refusal of bad files, and
// revocation. Decrypt-ahead and zero-copy reads: served_tree_prefetch_test.cc.
#include "fs/served_tree.h"

#include <gtest/gtest.h>

#include "tests/unit/fs/served_tree_fixture.h"

namespace ctfs::fs {
namespace {

using ctfs::testing::ReadFile;
using ctfs::testing::TempDir;
using ctfs::testing::WriteFile;

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

TEST_F(ServedTreeTest, SuspendDeniesEncryptedFilesUntilResumed) {
  auto tree = MakeTree({});
  ASSERT_NE(tree, nullptr);
  const uint64_t model = Ino(*tree, "model.safetensors");
  const uint64_t config = Ino(*tree, "config.json");
  auto h = tree->Open(model);
  ASSERT_TRUE(h.ok());
  Bytes buf(100);
  ASSERT_TRUE(tree->Read(*h, 5000, buf).ok());
  EXPECT_GT(tree->cache().cached_bytes(), 0u);
  EXPECT_GT(tree->DecryptedBytes(model), 0u);

  tree->Suspend("the key lease of e1 ended");
  EXPECT_TRUE(tree->suspended());
  EXPECT_FALSE(tree->revoked());
  EXPECT_EQ(tree->cache().cached_bytes(), 0u);
  EXPECT_EQ(tree->DecryptedBytes(model), 0u);  // the view (and its data keys) is gone
  auto read = tree->Read(*h, 0, buf);
  EXPECT_EQ(read.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(read.status().message().find("key lease lost: the key lease of e1 ended"),
            std::string::npos)
      << read.status().message();
  EXPECT_EQ(tree->Open(model).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ReadAll(*tree, config, 10), "{\"a\":1}");  // plain files stay served

  // Resume with keys that cannot open the file: still suspended, nothing served.
  TempDir other;
  format::Jwk wrong = enc_.Clone();
  wrong.k = *crypto::RandomSecret(32);
  const std::string wrong_file = other.File("w.jwk");
  ctfs::testing::WriteFile(wrong_file, format::SerializeJwkSet({&wrong, &sign_}, true));
  ::chmod(wrong_file.c_str(), 0600);
  auto wrong_keys = keys::KeyResolver::Create({{wrong_file}, false, false});
  ASSERT_TRUE(wrong_keys.ok());
  EXPECT_FALSE(tree->Resume(*wrong_keys).ok());
  EXPECT_TRUE(tree->suspended());
  EXPECT_EQ(tree->Open(model).status().code(), StatusCode::kPermissionDenied);

  auto resolver = Resolver();
  ASSERT_TRUE(tree->Resume(resolver).ok());
  EXPECT_FALSE(tree->suspended());
  EXPECT_EQ(ReadAll(*tree, model, 777), plain_);
  ASSERT_TRUE(tree->Read(*h, 0, buf).ok());  // the handle from before reads again
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), plain_.begin()));

  // Revoke after Resume is final.
  tree->Revoke();
  EXPECT_EQ(tree->Resume(resolver).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(tree->Open(model).status().code(), StatusCode::kPermissionDenied);
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

TEST(DirectReadsWarning, OnlyWhenHugePagesAreOff) {
  EXPECT_EQ(DirectReadsWarning("madvise"), "");
  EXPECT_EQ(DirectReadsWarning("always"), "");
  EXPECT_EQ(DirectReadsWarning(""), "");  // no THP in this kernel at all: nothing to switch on
  const std::string w = DirectReadsWarning("never");
  EXPECT_NE(w.find("transparent huge pages are off"), std::string::npos) << w;
  EXPECT_NE(w.find("/sys/kernel/mm/transparent_hugepage/enabled"), std::string::npos) << w;
}

}  // namespace
}  // namespace ctfs::fs
