// SPDX-License-Identifier: Apache-2.0
#include "policy/access_policy.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace ctfs::policy {
namespace {

using config::PolicyConfig;
using config::RuleConfig;

// 2027-06-30T00:00:00Z
constexpr int64_t kJune2027 = 1814313600;
constexpr int64_t kNow = 1800000000;

RuleConfig Rule(std::string name, bool allow) {
  RuleConfig r;
  r.name = std::move(name);
  r.allow = allow;
  return r;
}

std::vector<FileObject> Files() {
  return {
      {"config.json", {}},                                                        // 0
      {"model-00001-of-00002.safetensors", {"model.layers.0.w", "model.embed"}},  // 1
      {"model-00002-of-00002.safetensors", {"model.layers.9.w", "lm_head"}},      // 2
      {"sub/tokenizer.json", {}},                                                 // 3
  };
}

std::shared_ptr<const AccessPolicy> MustCompile(const PolicyConfig& config,
                                                const std::vector<FileObject>& files = Files()) {
  auto p = AccessPolicy::Compile(config, files);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : nullptr;
}

Subject Vllm() {
  Subject s;
  s.uid = 990;
  s.gid = 990;
  s.groups = {990, 44};
  s.pid = 1234;
  s.exe = "/opt/vllm/bin/python3.11";
  s.exe_sha256 = std::string(64, 'a');
  s.comm = "python3";
  s.cgroup = "/system.slice/vllm.service";
  s.machine_id = std::string(32, 'b');
  return s;
}

// One rule allowing what `fill` lists, then nothing (default deny).
template <typename Fill>
std::shared_ptr<const AccessPolicy> OneRule(Fill fill) {
  PolicyConfig c;
  RuleConfig r = Rule("only", true);
  fill(r);
  c.rules.push_back(r);
  return MustCompile(c);
}

TEST(AccessPolicy, DefaultDeny) {
  PolicyConfig c;
  auto p = MustCompile(c);
  ASSERT_TRUE(p);
  Decision d = p->Decide(0, Vllm(), kNow);
  EXPECT_FALSE(d.allow);
  EXPECT_FALSE(d.rules_allow);
  EXPECT_EQ(d.rule, "");
  EXPECT_EQ(d.reason, "no rule matches");
  EXPECT_FALSE(p->CanAllow(0, kNow));
  EXPECT_EQ(p->rule_count(), 0u);
}

TEST(AccessPolicy, HideComesFromTheDecidingDenyRule) {
  PolicyConfig c;
  RuleConfig meta = Rule("meta", true);
  meta.object.path = {"*.json"};
  RuleConfig hidden = Rule("hidden", false);
  hidden.hide = true;
  hidden.object.path = {"model-00001*"};
  c.rules = {meta, hidden};
  auto p = MustCompile(c);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->HidesFiles());
  EXPECT_TRUE(p->Decide(1, Vllm(), kNow).hide);
  EXPECT_FALSE(p->Decide(0, Vllm(), kNow).hide);  // allowed
  EXPECT_FALSE(p->Decide(2, Vllm(), kNow).hide);  // no rule matches: denied, not hidden
  c.mode = PolicyConfig::Mode::kPermissive;        // permissive never hides
  auto permissive = MustCompile(c);
  EXPECT_FALSE(permissive->HidesFiles());
  EXPECT_FALSE(permissive->Decide(1, Vllm(), kNow).hide);
  c.rules = {meta};
  EXPECT_FALSE(MustCompile(c)->HidesFiles());
}

TEST(AccessPolicy, EmptyRuleMatchesEveryone) {
  auto p = OneRule([](RuleConfig&) {});
  ASSERT_TRUE(p);
  for (size_t f = 0; f < Files().size(); ++f) {
    Decision d = p->Decide(f, Subject{}, kNow);
    EXPECT_TRUE(d.allow) << f;
    EXPECT_EQ(d.rule, "only");
    EXPECT_EQ(d.reason, "rule 'only' allows");
  }
}

TEST(AccessPolicy, Uid) {
  auto p = OneRule([](RuleConfig& r) { r.subject.uids = {1, 990}; });
  Subject s = Vllm();
  EXPECT_TRUE(p->Decide(0, s, kNow).allow);
  s.uid = 0;  // root is not special
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
}

TEST(AccessPolicy, GidPrimaryOrSupplementary) {
  auto p = OneRule([](RuleConfig& r) { r.subject.gids = {44}; });
  Subject s = Vllm();
  EXPECT_TRUE(p->Decide(0, s, kNow).allow);  // supplementary 44
  s.groups = {990};
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
  s.gid = 44;
  EXPECT_TRUE(p->Decide(0, s, kNow).allow);  // primary 44
}

TEST(AccessPolicy, Exe) {
  auto p = OneRule([](RuleConfig& r) { r.subject.exe = {"/opt/vllm/bin/python3*"}; });
  Subject s = Vllm();
  EXPECT_TRUE(p->Decide(0, s, kNow).allow);
  s.exe = "/usr/bin/python3.11";
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
  s.exe = "/opt/vllm/bin/python3/evil";  // '*' does not cross '/'
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
  s.exe = "";
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
  auto any = OneRule([](RuleConfig& r) { r.subject.exe = {"**"}; });
  EXPECT_TRUE(any->Decide(0, Vllm(), kNow).allow);
  EXPECT_FALSE(any->Decide(0, s, kNow).allow);  // an unknown exe matches no listed glob
}

TEST(AccessPolicy, ExeSha256) {
  auto p = OneRule([](RuleConfig& r) {
    r.subject.exe_sha256 = {std::string(64, 'c'), std::string(64, 'A')};  // lowercased
  });
  EXPECT_TRUE(p->NeedsExeHash());
  Subject s = Vllm();
  EXPECT_TRUE(p->Decide(0, s, kNow).allow);
  s.exe_sha256 = std::string(64, 'd');
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
  s.exe_sha256 = "";
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
  EXPECT_FALSE(OneRule([](RuleConfig&) {})->NeedsExeHash());
}

TEST(AccessPolicy, Comm) {
  auto p = OneRule([](RuleConfig& r) { r.subject.comm = {"python*", "vllm"}; });
  Subject s = Vllm();
  EXPECT_TRUE(p->Decide(0, s, kNow).allow);
  s.comm = "vllm";
  EXPECT_TRUE(p->Decide(0, s, kNow).allow);
  s.comm = "cat";
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
}

TEST(AccessPolicy, CgroupAndAncestors) {
  auto p = OneRule([](RuleConfig& r) { r.subject.cgroup = {"/system.slice/vllm.service"}; });
  Subject s = Vllm();
  EXPECT_TRUE(p->Decide(0, s, kNow).allow);
  s.cgroup = "/system.slice/vllm.service/sub/deeper";
  EXPECT_TRUE(p->Decide(0, s, kNow).allow);
  s.cgroup = "/system.slice/vllm.service2";
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
  s.cgroup = "/system.slice";
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
  s.cgroup = "/user.slice/system.slice/vllm.service";  // anchored: not at this depth
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
  s.cgroup = "";
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);

  auto unit = OneRule([](RuleConfig& r) { r.subject.cgroup = {"vllm.service"}; });  // any depth
  s.cgroup = "/kubepods/pod1/vllm.service/ctr";
  EXPECT_TRUE(unit->Decide(0, s, kNow).allow);
  s.cgroup = "/kubepods/pod1/other.service";
  EXPECT_FALSE(unit->Decide(0, s, kNow).allow);
}

TEST(AccessPolicy, MachineId) {
  auto p = OneRule([](RuleConfig& r) { r.subject.machine_id = {std::string(32, 'b')}; });
  Subject s = Vllm();
  EXPECT_TRUE(p->Decide(0, s, kNow).allow);
  s.machine_id = std::string(32, 'e');
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
}

TEST(AccessPolicy, AllFieldsMustMatch) {
  auto p = OneRule([](RuleConfig& r) {
    r.subject.uids = {990};
    r.subject.exe = {"/opt/vllm/bin/*"};
    r.subject.cgroup = {"/system.slice/vllm.service"};
  });
  Subject s = Vllm();
  EXPECT_TRUE(p->Decide(0, s, kNow).allow);
  s.uid = 991;
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
  s = Vllm();
  s.cgroup = "/user.slice";
  EXPECT_FALSE(p->Decide(0, s, kNow).allow);
}

TEST(AccessPolicy, FirstMatchWins) {
  PolicyConfig c;
  RuleConfig deny = Rule("no-root", false);
  deny.subject.uids = {0};
  c.rules.push_back(deny);
  c.rules.push_back(Rule("everyone", true));
  auto p = MustCompile(c);
  Subject root;
  Decision d = p->Decide(0, root, kNow);
  EXPECT_FALSE(d.allow);
  EXPECT_EQ(d.rule, "no-root");
  EXPECT_EQ(d.reason, "rule 'no-root' denies");
  Subject other;
  other.uid = 5;
  d = p->Decide(0, other, kNow);
  EXPECT_TRUE(d.allow);
  EXPECT_EQ(d.rule, "everyone");

  // The reverse order: the allow-all rule shadows the deny.
  std::swap(c.rules[0], c.rules[1]);
  p = MustCompile(c);
  EXPECT_TRUE(p->Decide(0, root, kNow).allow);
  EXPECT_EQ(p->Decide(0, root, kNow).rule, "everyone");
}

TEST(AccessPolicy, PathObjects) {
  PolicyConfig c;
  RuleConfig meta = Rule("meta", true);
  meta.object.path = {"*.json"};
  c.rules.push_back(meta);
  RuleConfig first = Rule("first-shard", true);
  first.object.path = {"/model-00001-*"};
  c.rules.push_back(first);
  auto p = MustCompile(c);
  EXPECT_EQ(p->Decide(0, Subject{}, kNow).rule, "meta");
  EXPECT_EQ(p->Decide(3, Subject{}, kNow).rule, "meta");  // basename at any depth
  EXPECT_EQ(p->Decide(1, Subject{}, kNow).rule, "first-shard");
  EXPECT_FALSE(p->Decide(2, Subject{}, kNow).allow);
  EXPECT_EQ(p->FilesMatched(0), 2u);
  EXPECT_EQ(p->FilesMatched(1), 1u);
  EXPECT_TRUE(p->CanAllow(0, kNow));
  EXPECT_FALSE(p->CanAllow(2, kNow));
}

TEST(AccessPolicy, TensorObjects) {
  PolicyConfig c;
  RuleConfig locked = Rule("locked-layers", false);
  locked.object.tensor = {"model.layers.[0-1].*"};
  c.rules.push_back(locked);
  c.rules.push_back(Rule("rest", true));
  auto p = MustCompile(c);
  EXPECT_EQ(p->FilesMatched(0), 1u);  // only shard 1 holds layer 0; files without tensors never
  EXPECT_FALSE(p->Decide(1, Subject{}, kNow).allow);
  EXPECT_EQ(p->Decide(1, Subject{}, kNow).rule, "locked-layers");
  EXPECT_TRUE(p->Decide(0, Subject{}, kNow).allow);  // no tensors: the tensor rule never matches
  EXPECT_TRUE(p->Decide(2, Subject{}, kNow).allow);
  // path AND tensor
  PolicyConfig c2;
  RuleConfig both = Rule("both", true);
  both.object.path = {"model-00002-*"};
  both.object.tensor = {"lm_head", "nope"};
  c2.rules.push_back(both);
  p = MustCompile(c2);
  EXPECT_EQ(p->FilesMatched(0), 1u);
  EXPECT_TRUE(p->Decide(2, Subject{}, kNow).allow);
  EXPECT_FALSE(p->Decide(1, Subject{}, kNow).allow);
}

TEST(AccessPolicy, WindowBoundaries) {
  PolicyConfig c;
  RuleConfig r = Rule("vllm", true);
  r.not_before_unix = kNow;
  r.not_after_unix = kJune2027;
  c.rules.push_back(r);
  auto p = MustCompile(c);
  Decision before = p->Decide(0, Subject{}, kNow - 1);
  EXPECT_FALSE(before.allow);
  EXPECT_EQ(before.reason,
            "no rule matches (rule 'vllm' not yet valid until 2027-01-15T08:00:00Z)");
  EXPECT_TRUE(p->Decide(0, Subject{}, kNow).allow);  // not_before is inclusive
  EXPECT_TRUE(p->Decide(0, Subject{}, kJune2027 - 1).allow);
  Decision after = p->Decide(0, Subject{}, kJune2027);  // not_after is exclusive
  EXPECT_FALSE(after.allow);
  EXPECT_EQ(after.rule, "");
  EXPECT_EQ(after.reason, "no rule matches (rule 'vllm' expired at 2027-06-30T00:00:00Z)");
  EXPECT_FALSE(p->CanAllow(0, kNow - 1));
  EXPECT_TRUE(p->CanAllow(0, kNow));
  EXPECT_FALSE(p->CanAllow(0, kJune2027));
}

TEST(AccessPolicy, ExpiredRuleFallsThrough) {
  PolicyConfig c;
  RuleConfig old = Rule("old-deny", false);
  old.not_after_unix = kNow;
  c.rules.push_back(old);
  c.rules.push_back(Rule("open", true));
  auto p = MustCompile(c);
  EXPECT_EQ(p->Decide(0, Subject{}, kNow - 1).rule, "old-deny");
  EXPECT_EQ(p->Decide(0, Subject{}, kNow).rule, "open");
}

TEST(AccessPolicy, NextTransition) {
  PolicyConfig c;
  RuleConfig a = Rule("a", true);
  a.not_before_unix = 100;
  a.not_after_unix = 300;
  RuleConfig b = Rule("b", true);
  b.not_after_unix = 200;
  c.rules = {a, b, Rule("c", false)};
  auto p = MustCompile(c);
  EXPECT_EQ(p->NextTransition(0), 100);
  EXPECT_EQ(p->NextTransition(100), 200);  // strictly after now
  EXPECT_EQ(p->NextTransition(150), 200);
  EXPECT_EQ(p->NextTransition(200), 300);
  EXPECT_EQ(p->NextTransition(300), std::nullopt);
  EXPECT_EQ(MustCompile(PolicyConfig{})->NextTransition(0), std::nullopt);
}

TEST(AccessPolicy, CanAllowIgnoresSubjectsAndDenyRules) {
  PolicyConfig c;
  RuleConfig deny = Rule("deny", false);
  deny.object.path = {"config.json"};
  RuleConfig allow = Rule("some-user", true);
  allow.subject.uids = {1234};
  allow.object.path = {"*.safetensors"};
  c.rules = {deny, allow};
  auto p = MustCompile(c);
  EXPECT_FALSE(p->CanAllow(0, kNow));
  EXPECT_TRUE(p->CanAllow(1, kNow));
  EXPECT_FALSE(p->CanAllow(3, kNow));
}

TEST(AccessPolicy, Permissive) {
  PolicyConfig c;
  c.mode = PolicyConfig::Mode::kPermissive;
  RuleConfig deny = Rule("no-root", false);
  deny.subject.uids = {0};
  c.rules.push_back(deny);
  RuleConfig allow = Rule("meta", true);
  allow.object.path = {"*.json"};
  c.rules.push_back(allow);
  auto p = MustCompile(c);
  EXPECT_TRUE(p->permissive());
  Decision d = p->Decide(0, Subject{}, kNow);  // root
  EXPECT_TRUE(d.allow);
  EXPECT_FALSE(d.rules_allow);
  EXPECT_EQ(d.rule, "no-root");
  EXPECT_EQ(d.reason, "rule 'no-root' denies; permissive mode allows");
  Subject user;
  user.uid = 7;
  d = p->Decide(1, user, kNow);
  EXPECT_TRUE(d.allow);
  EXPECT_FALSE(d.rules_allow);
  EXPECT_EQ(d.reason, "no rule matches; permissive mode allows");
  d = p->Decide(0, user, kNow);
  EXPECT_TRUE(d.allow);
  EXPECT_TRUE(d.rules_allow);
  EXPECT_EQ(d.reason, "rule 'meta' allows");
  EXPECT_TRUE(p->CanAllow(1, kNow));  // nothing is withdrawn in permissive mode
}

TEST(AccessPolicy, BadGlobNamesRuleAndPattern) {
  PolicyConfig c;
  c.rules.push_back(Rule("fine", true));
  RuleConfig bad = Rule("broken", true);
  bad.pos.line = 12;
  bad.object.path = {"ok/*", "a/b**"};
  c.rules.push_back(bad);
  auto p = AccessPolicy::Compile(c, Files());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(),
            "policy rule 'broken' (line 12): path: glob \"a/b**\": '**' not a whole path "
            "segment at offset 3");
  for (auto fill : {+[](RuleConfig& r) { r.subject.exe = {"[x"}; },
                    +[](RuleConfig& r) { r.subject.comm = {""}; },
                    +[](RuleConfig& r) { r.subject.cgroup = {"x\\"}; },
                    +[](RuleConfig& r) { r.object.tensor = {"[]"}; }}) {
    PolicyConfig c2;
    RuleConfig r = Rule("r", true);
    fill(r);
    c2.rules.push_back(r);
    auto q = AccessPolicy::Compile(c2, Files());
    ASSERT_FALSE(q.ok());
    EXPECT_NE(q.status().message().find("policy rule 'r': "), std::string::npos)
        << q.status().message();
  }
}

TEST(AccessPolicy, ManyRulesOnlyCandidatesDecide) {
  // 100 rules, each for one file of 100: every file is decided by its own rule.
  PolicyConfig c;
  std::vector<FileObject> files;
  for (int i = 0; i < 100; ++i) {
    files.push_back({"m" + std::to_string(i) + ".safetensors", {"t"}});
    RuleConfig r = Rule("r" + std::to_string(i), i % 2 == 0);
    r.object.path = {"m" + std::to_string(i) + ".safetensors"};
    c.rules.push_back(r);
  }
  auto p = MustCompile(c, files);
  for (int i = 0; i < 100; ++i) {
    Decision d = p->Decide(i, Subject{}, kNow);
    EXPECT_EQ(d.rule, "r" + std::to_string(i));
    EXPECT_EQ(d.allow, i % 2 == 0);
    EXPECT_EQ(p->FilesMatched(i), 1u);
  }
}

}  // namespace
}  // namespace ctfs::policy
