// SPDX-License-Identifier: Apache-2.0
// Tests for fs/key_lease_keeper: a lease from an exec helper (a /bin/sh script printing a key
// set with "exp" that the test writes) over the ServedTree fixture, driven with a simulated
// clock (Step(now)): refresh extends, failures within grace keep serving, loss suspends the
// tree, renewal restores it, a different key set is a failed refresh, exit 77 is loss at once,
// and on_key_loss: unmount asks the daemon to unmount without suspending.
#include "fs/key_lease_keeper.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>
#include <string>
#include <vector>

#include "tests/unit/fs/served_tree_fixture.h"

namespace ctfs::fs {
namespace {

using Action = KeyLeaseKeeper::Action;

class KeyLeaseKeeperTest : public ServedTreeTest {
 protected:
  void SetUp() override {
    ServedTreeTest::SetUp();
    now_ = static_cast<int64_t>(std::time(nullptr));
    helper_ = keys_dir_.File("helper.sh");
    const std::string d = keys_dir_.path();
    ctfs::testing::WriteFile(helper_, "#!/bin/sh\n"
                                      "[ -e " + d + "/withdraw ] && exit 77\n"
                                      "[ -e " + d + "/fail ] && { echo down >&2; exit 1; }\n"
                                      "cat " + d + "/out.json\n");
    ::chmod(helper_.c_str(), 0700);
    Answer(now_ + 300);
    keys::KeySourceSpec spec;
    spec.exec = {helper_};
    sources_ = keys::KeySourceOptions({}, false, false, "", {spec});
  }

  // Answer: what the helper prints from now on: the fixture's keys (or `keys`) with `exp`.
  void Answer(int64_t exp, std::vector<const format::Jwk*> keys = {}) {
    if (keys.empty()) keys = {&enc_, &sign_};
    std::string set = format::SerializeJwkSet(keys, true);
    set.insert(1, "\"exp\":" + std::to_string(exp) + ",");
    ctfs::testing::WriteFile(keys_dir_.File("out.json"), set);
    ::chmod(keys_dir_.File("out.json").c_str(), 0600);
  }
  void Flag(const std::string& name, bool on) {
    if (on) {
      ctfs::testing::WriteFile(keys_dir_.File(name), "1");
    } else {
      std::filesystem::remove(keys_dir_.File(name));
    }
  }

  // Start: the tree, opened with the helper's keys, and its keeper.
  void Start(KeyLossAction on_loss = KeyLossAction::kDeny) {
    auto resolver = keys::KeyResolver::Create(sources_);
    ASSERT_TRUE(resolver.ok()) << resolver.status().message();
    ASSERT_EQ(resolver->providers().size(), 1u);
    EXPECT_EQ(resolver->providers()[0].exp_unix, now_ + 300);
    auto tree = ServedTree::Create(dir_.File("src"), *resolver, {}, nullptr);
    ASSERT_TRUE(tree.ok()) << tree.status().message();
    tree_ = std::move(*tree);
    tree_->StartWorkers();
    keeper_ = KeyLeaseKeeper::Create(sources_, resolver->providers(),
                                     {.grace_s = 5, .on_key_loss = on_loss}, tree_.get(), nullptr,
                                     [this](bool, const std::string& line) { log_.push_back(line); });
    ASSERT_NE(keeper_, nullptr);
    model_ = Ino(*tree_, "model.safetensors");
  }
  std::string State() { return keeper_->Leases().at(0).state; }
  bool Serving() { return tree_->Open(model_).ok(); }

  int64_t now_ = 0;
  std::string helper_;
  keys::KeySourceOptions sources_;
  std::unique_ptr<ServedTree> tree_;
  std::unique_ptr<KeyLeaseKeeper> keeper_;
  std::vector<std::string> log_;
  uint64_t model_ = 0;
};

TEST_F(KeyLeaseKeeperTest, NoExpNoKeeper) {
  auto resolver = keys::KeyResolver::Create({{key_file_}, false, false});
  ASSERT_TRUE(resolver.ok());
  auto tree = ServedTree::Create(dir_.File("src"), *resolver, {}, nullptr);
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(KeyLeaseKeeper::Create({{key_file_}, false, false}, resolver->providers(), {},
                                   tree->get(), nullptr, nullptr),
            nullptr);
  // A key file with an "exp", as a config source: only exec helpers lease keys.
  Answer(now_ + 300);
  keys::KeySourceSpec file;
  file.file = keys_dir_.File("out.json");
  const keys::KeySourceOptions with_file({}, false, false, "", {file});
  auto from_file = keys::KeyResolver::Create(with_file);
  ASSERT_TRUE(from_file.ok()) << from_file.status().message();
  ASSERT_EQ(from_file->providers().at(0).exp_unix, now_ + 300);
  EXPECT_EQ(KeyLeaseKeeper::Create(with_file, from_file->providers(), {}, tree->get(), nullptr,
                                   nullptr),
            nullptr);
}

TEST_F(KeyLeaseKeeperTest, RefreshExtendsLossSuspendsRenewalRestores) {
  Start();
  // 2/3 of the 300 s granted (Create reads the clock itself: a second may have passed).
  EXPECT_GE(keeper_->NextStepAt(), now_ + 199);
  EXPECT_LE(keeper_->NextStepAt(), now_ + 201);
  EXPECT_EQ(keeper_->Step(now_ + 100), Action::kNone);
  EXPECT_EQ(State(), "valid");

  Answer(now_ + 1000);
  EXPECT_EQ(keeper_->Step(now_ + 200), Action::kNone);
  EXPECT_EQ(keeper_->Leases()[0].exp_unix, now_ + 1000);
  EXPECT_EQ(State(), "valid");

  Flag("fail", true);
  const int64_t exp = now_ + 1000;
  EXPECT_EQ(keeper_->Step(exp - 1), Action::kNone);  // failed, within the lease
  EXPECT_EQ(State(), "refreshing");
  EXPECT_EQ(keeper_->Step(exp + 5), Action::kNone);  // the last second of grace
  EXPECT_TRUE(Serving());
  EXPECT_EQ(keeper_->Step(exp + 6), Action::kInvalidate);
  EXPECT_EQ(State(), "lost");
  EXPECT_TRUE(tree_->suspended());
  EXPECT_EQ(tree_->Open(model_).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(keeper_->Step(exp + 7), Action::kNone);  // still failing: stays lost, no repeat
  EXPECT_TRUE(tree_->suspended());

  Flag("fail", false);
  Answer(exp + 500);
  EXPECT_EQ(keeper_->Step(exp + 8), Action::kRestored);
  EXPECT_FALSE(tree_->suspended());
  EXPECT_EQ(ReadAll(*tree_, model_, 1000), plain_);
  EXPECT_EQ(State(), "valid");
}

TEST_F(KeyLeaseKeeperTest, ADifferentKeySetIsAFailedRefresh) {
  Start();
  format::Jwk other = enc_.Clone();
  other.k = *crypto::RandomSecret(32);
  Answer(now_ + 1000, {&other, &sign_});
  EXPECT_EQ(keeper_->Step(now_ + 200), Action::kNone);
  EXPECT_EQ(State(), "refreshing");
  EXPECT_EQ(keeper_->Leases()[0].exp_unix, now_ + 300);  // not extended
  ASSERT_FALSE(log_.empty());
  EXPECT_NE(log_.back().find("different key set"), std::string::npos) << log_.back();
  EXPECT_EQ(keeper_->Step(now_ + 306), Action::kInvalidate);
}

TEST_F(KeyLeaseKeeperTest, WithdrawnIsLostAtOnce) {
  Start();
  Flag("withdraw", true);
  EXPECT_EQ(keeper_->Step(now_ + 200), Action::kInvalidate);  // 100 s before exp
  EXPECT_TRUE(tree_->suspended());
  EXPECT_EQ(State(), "lost");
}

TEST_F(KeyLeaseKeeperTest, UnmountModeAsksToUnmount) {
  Start(KeyLossAction::kUnmount);
  Flag("fail", true);
  EXPECT_EQ(keeper_->Step(now_ + 200), Action::kNone);
  EXPECT_EQ(keeper_->Step(now_ + 306), Action::kUnmount);
  EXPECT_FALSE(tree_->suspended());  // the daemon revokes (as on SIGTERM)
}

}  // namespace
}  // namespace ctfs::fs
