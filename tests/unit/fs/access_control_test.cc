// SPDX-License-Identifier: Apache-2.0
#include "fs/access_control.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <sstream>

#include "tests/testing/temp_dir.h"

namespace ctfs::fs {
namespace {

CallerId Self() {
  return {static_cast<uint32_t>(::getuid()), static_cast<uint32_t>(::getgid()),
          static_cast<int32_t>(::syscall(SYS_gettid))};
}

config::RuleConfig Rule(std::string name, bool allow, std::vector<std::string> paths) {
  config::RuleConfig r;
  r.name = std::move(name);
  r.allow = allow;
  r.object.path = std::move(paths);
  return r;
}

std::vector<PolicyFile> Files() {
  return {{2, {"weights.safetensors", {"w"}}}, {3, {"config.json", {}}}};
}

std::shared_ptr<const policy::AccessPolicy> Compile(const config::PolicyConfig& p) {
  std::vector<policy::FileObject> objects;
  for (const PolicyFile& f : Files()) objects.push_back(f.object);
  auto c = policy::AccessPolicy::Compile(p, objects);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return *c;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<AccessControl> Make(std::shared_ptr<const policy::AccessPolicy> p,
                                    const std::string& audit_file) {
  std::unique_ptr<AuditLog> log;
  if (!audit_file.empty()) {
    AuditOptions opt;
    opt.file = audit_file;
    opt.mount = "/mnt/test";
    auto opened = AuditLog::Open(opt);
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    log = std::move(*opened);
  }
  AccessControl::Options opt;
  opt.mount = "/mnt/test";
  return std::make_unique<AccessControl>(opt, Files(), std::move(p), std::move(log));
}

TEST(AccessControlTest, DecidesAtOpenAndAuditsEveryDecision) {
  testing::TempDir dir;
  const std::string audit = dir.path() + "/audit.jsonl";
  config::PolicyConfig p;
  p.rules.push_back(Rule("metadata", true, {"*.json"}));
  auto ac = Make(Compile(p), audit);
  auto allowed = ac->CheckOpen(Self(), 3);
  ASSERT_TRUE(allowed.ok()) << allowed.status().message();
  ASSERT_NE(*allowed, nullptr);
  EXPECT_FALSE((*allowed)->withdrawn());
  auto denied = ac->CheckOpen(Self(), 2);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(denied.status().message().find("no rule matches"), std::string::npos);
  EXPECT_FALSE(ac->CheckOpen(Self(), 99).ok());  // not a served file
  ac.reset();  // flushes
  const std::string log = Slurp(audit);
  EXPECT_NE(log.find("\"path\":\"config.json\",\"decision\":\"allow\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"path\":\"weights.safetensors\",\"decision\":\"deny\""), std::string::npos)
      << log;
}

TEST(AccessControlTest, ReplaceWithdrawsGrantsTheNewPolicyDenies) {
  config::PolicyConfig all;
  all.rules.push_back(Rule("all", true, {}));
  auto ac = Make(Compile(all), "");
  auto weights = ac->CheckOpen(Self(), 2);
  auto config = ac->CheckOpen(Self(), 3);
  ASSERT_TRUE(weights.ok() && config.ok());
  config::PolicyConfig metadata_only;
  metadata_only.rules.push_back(Rule("metadata", true, {"*.json"}));
  std::vector<uint64_t> inos = ac->Replace(Compile(metadata_only));
  EXPECT_TRUE((*weights)->withdrawn());
  EXPECT_FALSE((*config)->withdrawn());
  EXPECT_EQ(inos, std::vector<uint64_t>{2});
  EXPECT_FALSE(ac->CheckOpen(Self(), 2).ok());
  // Back to no policy: every open is allowed again; a withdrawn grant stays withdrawn.
  EXPECT_TRUE(ac->Replace(nullptr).empty());
  EXPECT_TRUE(ac->CheckOpen(Self(), 2).ok());
  EXPECT_TRUE((*weights)->withdrawn());
}

TEST(AccessControlTest, AWindowEndWithdrawsAtReevaluation) {
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  config::PolicyConfig p;
  config::RuleConfig r = Rule("licence", true, {});
  r.not_after_unix = now + 100;
  p.rules.push_back(r);
  auto ac = Make(Compile(p), "");
  EXPECT_EQ(ac->NextTransition(), std::optional<int64_t>(now + 100));
  auto g = ac->CheckOpen(Self(), 2);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(ac->Reevaluate(now + 99, "window").empty());
  EXPECT_FALSE((*g)->withdrawn());
  std::vector<uint64_t> inos = ac->Reevaluate(now + 100, "window");
  EXPECT_TRUE((*g)->withdrawn());
  EXPECT_EQ(inos, (std::vector<uint64_t>{2, 3}));  // no rule can allow either file any more
}

TEST(AccessControlTest, PermissiveModeNeverWithdraws) {
  config::PolicyConfig all;
  all.rules.push_back(Rule("all", true, {}));
  auto ac = Make(Compile(all), "");
  auto g = ac->CheckOpen(Self(), 2);
  ASSERT_TRUE(g.ok());
  config::PolicyConfig none;
  none.mode = config::PolicyConfig::Mode::kPermissive;
  none.rules.push_back(Rule("nothing", true, {"nothing"}));
  EXPECT_TRUE(ac->Replace(Compile(none)).empty());
  EXPECT_FALSE((*g)->withdrawn());
  EXPECT_TRUE(ac->CheckOpen(Self(), 2).ok());
}

TEST(AccessControlTest, AnUnreadableCallerIsDeniedUnderAPolicyOnly) {
  config::PolicyConfig all;
  all.rules.push_back(Rule("all", true, {}));
  auto ac = Make(Compile(all), "");
  EXPECT_FALSE(ac->CheckOpen({0, 0, 0}, 2).ok());
  auto none = Make(nullptr, "");
  EXPECT_TRUE(none->CheckOpen({0, 0, 0}, 2).ok());
}

}  // namespace
}  // namespace ctfs::fs
