// SPDX-License-Identifier: Apache-2.0
// ServedTree and a file whose embedded policy refuses it: the mount is refused (reference
// mode), or the file is served with one warning naming it (ServeOptions::
// embedded_policy_operator, config `embedded_policy: operator`).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"
#include "tests/unit/fs/served_tree_fixture.h"

namespace ctfs::fs {
namespace {

class EmbeddedPolicyTreeTest : public ServedTreeTest {
 protected:
  // Re-encrypts src/model.safetensors with `local` as its embedded policy.
  void Reencrypt(const std::string& local) {
    EncryptOptions opt;
    opt.chunk_size = 4096;
    opt.policy.local = local;
    ASSERT_TRUE(EncryptFile(dir_.File("plain.safetensors"), dir_.File("src/model.safetensors"),
                            enc_, sign_, opt, nullptr)
                    .ok());
  }
};

TEST_F(EmbeddedPolicyTreeTest, DenyingPolicyRefusesTheMount) {
  Reencrypt("package model\ndefault allow := false");
  auto resolver = Resolver();
  auto t = ServedTree::Create(dir_.File("src"), resolver, {}, nullptr);
  ASSERT_EQ(t.status().code(), StatusCode::kPermissionDenied) << t.status().ToString();
  EXPECT_NE(t.status().message().find("model.safetensors"), std::string::npos);
  EXPECT_NE(t.status().message().find("default allow := false"), std::string::npos)
      << t.status().message();
}

TEST_F(EmbeddedPolicyTreeTest, OperatorModeServesTheFileAndWarnsOnce) {
  Reencrypt("package model\nallow if input.user == \"alice\"");
  ServeOptions opt;
  opt.embedded_policy_operator = true;
  auto resolver = Resolver();
  std::vector<std::string> warnings;
  auto tree = ServedTree::Create(dir_.File("src"), resolver, opt, &warnings);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  std::vector<std::string> policy_warnings;
  for (const std::string& w : warnings) {
    if (w.find("embedded_policy: operator") != std::string::npos) policy_warnings.push_back(w);
  }
  ASSERT_EQ(policy_warnings.size(), 1u);
  EXPECT_NE(policy_warnings[0].find("src/model.safetensors"), std::string::npos)
      << policy_warnings[0];
  EXPECT_NE(policy_warnings[0].find("input.user"), std::string::npos) << policy_warnings[0];
  EXPECT_NE(policy_warnings[0].find("\"package model\""), std::string::npos) << policy_warnings[0];
  (*tree)->StartWorkers();
  const TreeNode* model = (*tree)->tree().Lookup(kRootIno, "model.safetensors");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(ReadAll(**tree, model->ino, 65536), plain_);
}

TEST_F(EmbeddedPolicyTreeTest, OperatorModeSaysNothingForAnAllowingPolicy) {
  Reencrypt("package model\nimport rego.v1\nallow if { true }");
  ServeOptions opt;
  opt.embedded_policy_operator = true;
  auto resolver = Resolver();
  std::vector<std::string> warnings;
  auto tree = ServedTree::Create(dir_.File("src"), resolver, opt, &warnings);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  for (const std::string& w : warnings) {
    EXPECT_EQ(w.find("embedded"), std::string::npos) << w;
  }
}

}  // namespace
}  // namespace ctfs::fs
