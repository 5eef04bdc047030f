// SPDX-License-Identifier: Apache-2.0
// Tests for config/mount_config: every key of the schema, every class of error with its exact
// FILE:LINE:COLUMN, relative path resolution, user and group names, hostile input, and that
// config/example.yaml (with its host-specific paths and names substituted) parses and sets
// every key. Each test works in a fresh mkdtemp directory holding a key file.
#include "config/mount_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/rfc3339.h"

namespace ctfs::config {
namespace {

class MountConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ctfs-config-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    key_ = dir_ + "/reader.jwk";
    std::ofstream(key_) << "{}";
    cfg_ = dir_ + "/cfg.yaml";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result<MountConfig> Parse(const std::string& yaml) { return ParseMountConfig(yaml, cfg_); }

  // Error: the message of a failed parse, with the config path replaced by "cfg".
  std::string Error(const std::string& yaml) {
    Result<MountConfig> r = Parse(yaml);
    if (r.ok()) return "(parsed)";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    std::string m = r.status().message();
    if (m.rfind(cfg_, 0) == 0) m = "cfg" + m.substr(cfg_.size());
    return m;
  }

  std::string dir_, key_, cfg_;
};

// Prefix: the message starts with "cfg:LINE:COL: " and contains `what`.
#define EXPECT_ERROR_AT(yaml, line, col, what)                                   \
  do {                                                                           \
    const std::string m_ = Error(yaml);                                          \
    const std::string at_ = "cfg:" + std::to_string(line) + ":" + std::to_string(col) + ": "; \
    EXPECT_EQ(m_.substr(0, at_.size()), at_) << m_;                              \
    EXPECT_NE(m_.find(what), std::string::npos) << m_;                           \
  } while (0)

TEST_F(MountConfigTest, EveryTopLevelKey) {
  Result<MountConfig> r = Parse(
      "source: /srv/enc\n"
      "mountpoint: /run/ctfs/m\n"
      "keys: [{file: " + key_ + "}, {file: reader.jwk}]\n"
      "foreground: true\n"
      "quiet: false\n"
      "cache_mb: 512\n"
      "threads: 8\n"
      "decrypt_threads: 0\n"
      "prefetch_mb: 128\n"
      "prefetch_threads: 3\n"
      "read_ahead_kb: 0\n"
      "direct_io: false\n"
      "allow_other: TRUE\n"
      "allow_bad_files: False\n"
      "log: {level: debug, file: logs/ctfs.log}\n"
      "metrics: {file: m/ctfs.prom, interval_s: 30}\n"
      "audit: {file: /var/log/a.jsonl, stderr: true}\n"
      "key_lease: {grace_s: 5, on_key_loss: unmount}\n"
      "embedded_policy: operator\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const MountConfig& c = *r;
  EXPECT_EQ(c.path, cfg_);
  EXPECT_EQ(c.source, "/srv/enc");
  EXPECT_EQ(c.mountpoint, "/run/ctfs/m");
  ASSERT_EQ(c.keys.size(), 2u);
  EXPECT_EQ(c.keys[0].file, key_);
  EXPECT_EQ(c.keys[1].file, key_);  // relative: against the config's directory
  EXPECT_EQ(c.keys[1].pos.line, 3);
  EXPECT_EQ(c.keys[1].pos.column, static_cast<int>(key_.size()) + 25);
  EXPECT_EQ(c.foreground, true);
  EXPECT_EQ(c.quiet, false);
  EXPECT_EQ(c.cache_mb, 512u);
  EXPECT_EQ(c.threads, 8u);
  EXPECT_EQ(c.decrypt_threads, 0u);
  EXPECT_EQ(c.prefetch_mb, 128u);
  EXPECT_EQ(c.prefetch_threads, 3u);
  EXPECT_EQ(c.read_ahead_kb, 0u);
  EXPECT_EQ(c.direct_io, false);
  EXPECT_EQ(c.allow_other, true);
  EXPECT_EQ(c.allow_bad_files, false);
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.file, dir_ + "/logs/ctfs.log");
  EXPECT_EQ(c.metrics.file, dir_ + "/m/ctfs.prom");
  EXPECT_EQ(c.metrics.interval_s, 30u);
  EXPECT_EQ(c.audit.file, "/var/log/a.jsonl");
  EXPECT_TRUE(c.audit.to_stderr);
  EXPECT_EQ(c.key_lease.grace_s, 5u);
  EXPECT_EQ(c.key_lease.on_key_loss, KeyLossMode::kUnmount);
  EXPECT_EQ(c.embedded_policy, EmbeddedPolicyMode::kOperator);
  EXPECT_FALSE(c.policy.has_value());
}

TEST_F(MountConfigTest, KeysLeftOutAreUnset) {
  Result<MountConfig> r = Parse("cache_mb: 1\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->source || r->mountpoint || r->foreground || r->quiet || r->threads ||
               r->decrypt_threads || r->prefetch_mb || r->prefetch_threads || r->read_ahead_kb ||
               r->direct_io || r->allow_other || r->allow_bad_files || r->log.level ||
               r->log.file || r->metrics.file || r->metrics.interval_s || r->audit.file ||
               r->embedded_policy || r->policy || r->key_lease.grace_s ||
               r->key_lease.on_key_loss);
  EXPECT_TRUE(r->keys.empty());
  EXPECT_FALSE(r->audit.to_stderr);
}

TEST_F(MountConfigTest, RelativePathsAgainstTheConfigDirectory) {
  Result<MountConfig> r = Parse("source: enc/../models\nmountpoint: ./mnt\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->source, dir_ + "/models");
  EXPECT_EQ(r->mountpoint, dir_ + "/mnt");
}

TEST_F(MountConfigTest, LoadReadsTheFile) {
  std::ofstream(cfg_) << "source: enc\n";
  Result<MountConfig> r = LoadMountConfig(cfg_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->source, dir_ + "/enc");
  Result<MountConfig> missing = LoadMountConfig(dir_ + "/nope.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.yaml"), std::string::npos);
}

TEST_F(MountConfigTest, PolicyEveryKey) {
  Result<MountConfig> r = Parse(
      "policy:\n"
      "  mode: permissive\n"
      "  rules:\n"
      "    - name: all\n"
      "      decision: allow\n"
      "      subject:\n"
      "        uid: [0, 1000]\n"
      "        user: root\n"
      "        gid: 5\n"
      "        group: [root]\n"
      "        exe: /usr/bin/python3*\n"
      "        exe_sha256: " + std::string(64, 'A') + "\n"
      "        comm: [pt_main*, python]\n"
      "        cgroup: /system.slice/vllm.service\n"
      "        machine_id: " + std::string(32, 'f') + "\n"
      "      object: {path: [\"*.json\", \"llama/**\"], tensor: model.layers.*}\n"
      "      not_before: 2026-01-01T00:00:00+01:00\n"
      "      not_after: 2027-06-30T00:00:00Z\n"
      "    - {name: rest, decision: deny}\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->policy.has_value());
  const PolicyConfig& p = *r->policy;
  EXPECT_EQ(p.mode, PolicyConfig::Mode::kPermissive);
  ASSERT_EQ(p.rules.size(), 2u);
  const RuleConfig& a = p.rules[0];
  EXPECT_EQ(a.name, "all");
  EXPECT_TRUE(a.allow);
  EXPECT_EQ(a.pos.line, 4);
  EXPECT_EQ(a.pos.column, 7);
  EXPECT_EQ(a.subject.uids, (std::vector<uint32_t>{0, 1000, 0}));
  EXPECT_EQ(a.subject.gids, (std::vector<uint32_t>{5, 0}));
  EXPECT_EQ(a.subject.exe, (std::vector<std::string>{"/usr/bin/python3*"}));
  EXPECT_EQ(a.subject.exe_sha256, (std::vector<std::string>{std::string(64, 'a')}));
  EXPECT_EQ(a.subject.comm, (std::vector<std::string>{"pt_main*", "python"}));
  EXPECT_EQ(a.subject.cgroup, (std::vector<std::string>{"/system.slice/vllm.service"}));
  EXPECT_EQ(a.subject.machine_id, (std::vector<std::string>{std::string(32, 'f')}));
  EXPECT_EQ(a.object.path, (std::vector<std::string>{"*.json", "llama/**"}));
  EXPECT_EQ(a.object.tensor, (std::vector<std::string>{"model.layers.*"}));
  EXPECT_EQ(a.not_before_unix, 1767222000);  // 2025-12-31T23:00:00Z
  EXPECT_EQ(a.not_after_unix, 1814313600);
  const RuleConfig& b = p.rules[1];
  EXPECT_EQ(b.name, "rest");
  EXPECT_FALSE(b.allow);
  EXPECT_TRUE(b.subject.uids.empty() && b.subject.exe.empty() && b.object.path.empty());
  EXPECT_FALSE(b.not_before_unix || b.not_after_unix);
}

TEST_F(MountConfigTest, ScalarIsAListOfOne) {
  Result<MountConfig> one = Parse(
      "policy: {rules: [{name: a, decision: allow, subject: {group: root, exe: /bin/cat}}]}");
  Result<MountConfig> list = Parse(
      "policy: {rules: [{name: a, decision: allow, subject: {group: [root], exe: [/bin/cat]}}]}");
  ASSERT_TRUE(one.ok()) << one.status().message();
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(one->policy->rules[0].subject.gids, list->policy->rules[0].subject.gids);
  EXPECT_EQ(one->policy->rules[0].subject.exe, list->policy->rules[0].subject.exe);
  EXPECT_EQ(one->policy->mode, PolicyConfig::Mode::kEnforce);  // the default
  // A single key source and a single rule need no list brackets either.
  Result<MountConfig> k = Parse("keys: {file: reader.jwk}\n");
  ASSERT_TRUE(k.ok()) << k.status().message();
  ASSERT_EQ(k->keys.size(), 1u);
}

TEST_F(MountConfigTest, UserAndGroupNames) {
  Result<MountConfig> r =
      Parse("policy: {rules: [{name: a, decision: allow, subject: {user: root, group: root}}]}");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->policy->rules[0].subject.uids, (std::vector<uint32_t>{0}));
  EXPECT_EQ(r->policy->rules[0].subject.gids, (std::vector<uint32_t>{0}));
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n"
                  "      subject: {user: [root, ctfs-no-such-user]}\n",
                  5, 30, "unknown user \"ctfs-no-such-user\"");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n"
                  "      subject:\n        group: ctfs-no-such-group\n",
                  6, 16, "unknown group \"ctfs-no-such-group\"");
  EXPECT_ERROR_AT("policy: {rules: [{name: a, decision: allow, subject: {uid: root}}]}", 1, 60,
                  "names go under user:");
  EXPECT_ERROR_AT("policy: {rules: [{name: a, decision: allow, subject: {gid: 4294967295}}]}",
                  1, 60, "expected numeric ids");
}

TEST_F(MountConfigTest, SyntaxErrors) {
  EXPECT_ERROR_AT("source: [a,\nmountpoint: b\n", 3, 1, "YAML syntax error");
  EXPECT_ERROR_AT("source: a: b\n", 1, 10, "YAML syntax error: illegal map value");
  EXPECT_ERROR_AT("log:\n  - a\n b: c\n", 3, 2, "YAML syntax error");
  EXPECT_ERROR_AT("a: b\n---\nc: d\n", 2, 1, "more than one YAML document");
  EXPECT_ERROR_AT("", 1, 1, "empty");
  EXPECT_ERROR_AT("# only a comment\n", 1, 1, "empty");
  EXPECT_ERROR_AT("- a\n- b\n", 1, 1, "expected a mapping");
  EXPECT_ERROR_AT("just text", 1, 1, "expected a mapping");
}

TEST_F(MountConfigTest, UnknownKeysAtEveryLevel) {
  EXPECT_ERROR_AT("source: a\ncache: 5\n", 2, 1, "unknown key \"cache\" in the config");
  EXPECT_ERROR_AT("log:\n  level: info\n  colour: red\n", 3, 3, "unknown key \"colour\" in log");
  EXPECT_ERROR_AT("audit: {fil: x}\n", 1, 9, "unknown key \"fil\" in audit");
  EXPECT_ERROR_AT("keys: [{path: x}]\n", 1, 9, "unknown key \"path\" in keys[0]");
  EXPECT_ERROR_AT("policy: {mode: enforce, rule: []}\n", 1, 25, "unknown key \"rule\" in policy");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n      action: read\n",
                  5, 7, "unknown key \"action\" in policy.rules[0]");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n"
                  "      subject: {usr: root}\n",
                  5, 17, "unknown key \"usr\" in policy.rules[0].subject");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n"
                  "      object: {tensors: x}\n",
                  5, 16, "unknown key \"tensors\" in policy.rules[0].object");
  // A merge key is no exception.
  EXPECT_ERROR_AT("base: &b {cache_mb: 1}\n", 1, 1, "unknown key \"base\"");
  EXPECT_ERROR_AT("log: {<<: {level: info}}\n", 1, 7, "unknown key \"<<\" in log");
}

TEST_F(MountConfigTest, DuplicateKeys) {
  EXPECT_ERROR_AT("cache_mb: 1\nthreads: 2\ncache_mb: 3\n", 3, 1,
                  "duplicate key \"cache_mb\" in the config (first given on line 1)");
  EXPECT_ERROR_AT("log: {level: info, level: debug}\n", 1, 20, "duplicate key \"level\"");
}

TEST_F(MountConfigTest, WrongTypes) {
  EXPECT_ERROR_AT("cache_mb: lots\n", 1, 11, "cache_mb: expected a whole number from 0 to 1048576");
  EXPECT_ERROR_AT("cache_mb: \"5\"\n", 1, 11, "expected a whole number");
  EXPECT_ERROR_AT("cache_mb: -1\n", 1, 11, "expected a whole number");
  EXPECT_ERROR_AT("cache_mb: 0x10\n", 1, 11, "expected a whole number");
  EXPECT_ERROR_AT("cache_mb: [1]\n", 1, 11, "got a list");
  EXPECT_ERROR_AT("cache_mb:\n", 1, 1, "got nothing");
  EXPECT_ERROR_AT("allow_other: yes\n", 1, 14, "allow_other: expected true or false, got \"yes\"");
  EXPECT_ERROR_AT("quiet: \"true\"\n", 1, 8, "expected true or false");
  EXPECT_ERROR_AT("source: {a: b}\n", 1, 9, "source: expected a string, got a mapping");
  EXPECT_ERROR_AT("source: \"\"\n", 1, 9, "source: must not be empty");
  EXPECT_ERROR_AT("log: info\n", 1, 6, "log: expected a mapping");
  EXPECT_ERROR_AT("log: {level: loud}\n", 1, 14, "log.level: expected one of trace, debug");
  EXPECT_ERROR_AT("metrics: {interval_s: 0}\n", 1, 23, "metrics.interval_s");
  EXPECT_ERROR_AT("metrics: {file: /a, every: 5}\n", 1, 21, "unknown key \"every\" in metrics");
  EXPECT_ERROR_AT("key_lease: {grace_s: -1}\n", 1, 22, "expected a whole number");
  EXPECT_ERROR_AT("key_lease: {grace_s: 86401}\n", 1, 22, "key_lease.grace_s");
  EXPECT_ERROR_AT("key_lease: {on_key_loss: panic}\n", 1, 26, "expected one of deny, unmount");
  EXPECT_ERROR_AT("key_lease: {grace: 5}\n", 1, 13, "unknown key \"grace\" in key_lease");
  EXPECT_ERROR_AT("key_lease: 30\n", 1, 12, "key_lease: expected a mapping");
  EXPECT_ERROR_AT("embedded_policy: rego\n", 1, 18, "expected one of reference, operator");
  EXPECT_ERROR_AT("keys: /etc/k.jwk\n", 1, 7, "keys: expected a list of key sources");
  EXPECT_ERROR_AT("keys: []\n", 1, 7, "an empty list");
  EXPECT_ERROR_AT("cache_mb: !!int 5\n", 1, 11, "YAML tags are not supported");
  EXPECT_ERROR_AT("policy: {mode: strict, rules: [{name: a, decision: allow}]}\n", 1, 16,
                  "policy.mode: expected one of enforce, permissive");
  EXPECT_ERROR_AT("policy: {rules: [{name: a, decision: maybe}]}\n", 1, 38,
                  "decision: expected one of allow, deny");
  EXPECT_ERROR_AT("policy: {rules: [{name: a, decision: allow, subject: {exe: [[x]]}}]}\n", 1,
                  61, "policy.rules[0].subject.exe[0]: expected a string, got a list");
  EXPECT_ERROR_AT("policy: {rules: [{name: a, decision: allow, subject: {exe: []}}]}\n", 1, 60,
                  "empty list");
  EXPECT_ERROR_AT("policy: {rules: [a]}\n", 1, 18, "policy.rules[0]: expected a mapping");
  EXPECT_ERROR_AT("policy: {rules: 5}\n", 1, 17, "expected a list of rules");
}

TEST_F(MountConfigTest, Ranges) {
  EXPECT_ERROR_AT("threads: 0\n", 1, 10, "threads: \"0\" is out of range (1 to 1024)");
  EXPECT_ERROR_AT("threads: 1025\n", 1, 10, "out of range (1 to 1024)");
  EXPECT_ERROR_AT("cache_mb: 1048577\n", 1, 11, "out of range (0 to 1048576)");
  EXPECT_ERROR_AT("cache_mb: 99999999999999999999999\n", 1, 11, "out of range");
  EXPECT_ERROR_AT("decrypt_threads: 257\n", 1, 18, "out of range (0 to 256)");
  EXPECT_ERROR_AT("prefetch_mb: 65537\n", 1, 14, "out of range (0 to 65536)");
  EXPECT_ERROR_AT("prefetch_threads: 0\n", 1, 19, "out of range (1 to 256)");
  EXPECT_ERROR_AT("read_ahead_kb: 1048577\n", 1, 16, "out of range (0 to 1048576)");
  EXPECT_TRUE(Parse("threads: 1024\ncache_mb: 1048576\nprefetch_threads: 1\n").ok());
}

TEST_F(MountConfigTest, BadGlobs) {
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n"
                  "      object: {path: [\"*.json\", \"[abc\"]}\n",
                  5, 33, "policy.rules[0].object.path: bad pattern");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n"
                  "      subject: {cgroup: \"a/**b\"}\n",
                  5, 25, "policy.rules[0].subject.cgroup: bad pattern");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n"
                  "      object: {tensor: \"x\\\\\"}\n",
                  5, 24, "bad pattern");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n"
                  "      subject: {comm: \"[]\"}\n",
                  5, 23, "bad pattern");
}

TEST_F(MountConfigTest, HexDigests) {
  EXPECT_ERROR_AT("policy: {rules: [{name: a, decision: allow, subject: {exe_sha256: abc}}]}", 1,
                  67, "exe_sha256: expected 64 hex digits, got \"abc\"");
  EXPECT_ERROR_AT("policy: {rules: [{name: a, decision: allow, subject: {machine_id: " +
                      std::string(31, 'a') + "g}}]}",
                  1, 67, "machine_id: expected 32 hex digits");
}

TEST_F(MountConfigTest, Times) {
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n"
                  "      not_after: 2027-06-30\n",
                  5, 18, "not_after: expected an RFC 3339 time with a zone");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n"
                  "      not_before: 2027-06-30T00:00:00\n",
                  5, 19, "RFC 3339");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n      decision: allow\n"
                  "      not_before: 2027-06-30T00:00:00Z\n      not_after: 2027-06-30T02:00:00+02:00\n",
                  6, 18, "not_after is not later than not_before");
}

TEST_F(MountConfigTest, RuleContradictions) {
  EXPECT_ERROR_AT("policy:\n", 1, 1, "to allow everyone, add a rule with decision: allow");
  EXPECT_ERROR_AT("policy: {mode: enforce}\n", 1, 1, "to allow everyone");
  EXPECT_ERROR_AT("policy:\n  rules: []\n", 2, 10, "to allow everyone");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - decision: allow\n", 3, 7, "a rule needs a name");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - name: a\n", 3, 7, "a rule needs decision: allow");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - {name: a, decision: allow}\n"
                  "    - {name: b, decision: deny}\n    - {name: a, decision: deny}\n",
                  5, 7, "duplicate rule name \"a\" (first used on line 3)");
}

TEST_F(MountConfigTest, HideOnlyOnDenyRules) {
  auto ok = Parse("policy:\n  rules:\n    - {name: a, decision: deny, hide: true}\n");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_TRUE(ok->policy->rules[0].hide);
  auto off = Parse("policy:\n  rules:\n    - {name: a, decision: deny}\n");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->policy->rules[0].hide);
  EXPECT_ERROR_AT("policy:\n  rules:\n    - {name: a, decision: allow, hide: true}\n", 3, 40,
                  "hide: true applies to deny rules");
  EXPECT_ERROR_AT("policy:\n  rules:\n    - {name: a, decision: deny, hide: 1}\n", 3, 39, "hide");
}

TEST_F(MountConfigTest, KeyFiles) {
  EXPECT_ERROR_AT("keys:\n  - file: " + key_ + "\n  - file: missing.jwk\n", 3, 11,
                  "key file " + dir_ + "/missing.jwk: No such file or directory");
  EXPECT_ERROR_AT("keys: [{file: " + dir_ + "}]\n", 1, 15, "not a regular file");
  EXPECT_ERROR_AT("keys: [{}]\n", 1, 8, "a key source needs one of file: PATH");
}

TEST_F(MountConfigTest, KeyProviders) {
  const std::string helper = dir_ + "/helper.sh";
  std::ofstream(helper) << "#!/bin/sh\n";
  ASSERT_EQ(::chmod(helper.c_str(), 0700), 0);
  ::unsetenv("CREDENTIALS_DIRECTORY");
  Result<MountConfig> r = Parse(
      "keys:\n"
      "  - {file: reader.jwk, passphrase_file: reader.jwk}\n"
      "  - {credential: llama.jwk}\n"
      "  - {exec: [helper.sh, llama, --x], timeout_s: 3}\n"
      "  - exec: [" +
      helper + "]\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->keys.size(), 4u);
  EXPECT_EQ(r->keys[0].file, key_);
  EXPECT_EQ(r->keys[0].passphrase_file, key_);
  EXPECT_EQ(r->keys[1].credential, "llama.jwk");
  EXPECT_TRUE(r->keys[1].file.empty());
  EXPECT_EQ(r->keys[1].pos.line, 3);
  EXPECT_EQ(r->keys[2].exec, (std::vector<std::string>{helper, "llama", "--x"}));
  EXPECT_EQ(r->keys[2].timeout_s, std::optional<uint64_t>(3));
  EXPECT_FALSE(r->keys[3].timeout_s.has_value());
}

TEST_F(MountConfigTest, KeyProviderErrors) {
  ::unsetenv("CREDENTIALS_DIRECTORY");
  EXPECT_ERROR_AT("keys: [{file: reader.jwk, credential: c}]\n", 1, 27,
                  "give only one of file, credential, exec");
  EXPECT_ERROR_AT("keys: [{credential: c, passphrase_file: reader.jwk}]\n", 1, 24,
                  "passphrase_file goes with file: only");
  EXPECT_ERROR_AT("keys: [{credential: c, timeout_s: 3}]\n", 1, 24,
                  "timeout_s goes with exec: only");
  EXPECT_ERROR_AT("keys: [{credential: ../x}]\n", 1, 21, "must be a plain file name");
  EXPECT_ERROR_AT("keys: [{credential: ..}]\n", 1, 21, "must be a plain file name");
  EXPECT_ERROR_AT("keys: [{file: reader.jwk, passphrase_file: nope}]\n", 1, 44,
                  "passphrase file " + dir_ + "/nope");
  EXPECT_ERROR_AT("keys: [{exec: /bin/true}]\n", 1, 15, "expected a list [/path/helper");
  EXPECT_ERROR_AT("keys: [{exec: [" + key_ + "]}]\n", 1, 16, "not an executable file");
  EXPECT_ERROR_AT("keys: [{exec: [/bin/true], timeout_s: 0}]\n", 1, 39, "out of range");
  EXPECT_ERROR_AT("keys: [{exec: [/bin/true], timeout_s: 3601}]\n", 1, 39, "out of range");
  // With CREDENTIALS_DIRECTORY set, a missing credential is found at load.
  ::setenv("CREDENTIALS_DIRECTORY", dir_.c_str(), 1);
  EXPECT_ERROR_AT("keys: [{credential: missing}]\n", 1, 21,
                  "credential \"missing\" ($CREDENTIALS_DIRECTORY=" + dir_ + ")");
  EXPECT_TRUE(Parse("keys: [{credential: reader.jwk}]\n").ok());
  ::unsetenv("CREDENTIALS_DIRECTORY");
}

TEST_F(MountConfigTest, HostileInputNeverCrashes) {
  // Deep nesting: yaml-cpp's depth guard or a type error, never a stack overflow.
  for (const std::string& open : {std::string("["), std::string("{a: ")}) {
    std::string deep = "log: ";
    for (int i = 0; i < 100000; ++i) deep += open;
    EXPECT_NE(Error(deep).find("nested more than"), std::string::npos) << Error(deep);
  }
  EXPECT_EQ(Parse(std::string(2 << 20, '#')).status().code(), StatusCode::kInvalidArgument);
  // Aliases: a shared node is read like any other; a list of aliased lists is a type error.
  EXPECT_ERROR_AT("log: &l {level: info}\naudit: *l\n", 1, 10, "unknown key \"level\" in audit");
  const char* junk[] = {"\t", ":", "? ", "[", "{", "&a", "*a", "!", "%YAML 1.2\n---\n",
                        "a: !<tag:x> 1", "\xff\xfe",
                        "source: \"a\\0b\"", "--- |\n  x", "a: *unknown"};
  for (const char* j : junk) EXPECT_FALSE(Parse(j).ok()) << j;
  EXPECT_ERROR_AT("source: \"a\\0b\"\n", 1, 9, "NUL byte");
  // A stray token where a document should start: yaml-cpp's LoadAll loops forever on these
  // (found by tests/fuzz/config_fuzzer); the parse must end, with an error.
  EXPECT_ERROR_AT(",", 1, 1, "stray character");
  EXPECT_ERROR_AT("# a comment\n,\n", 2, 1, "stray character");
  EXPECT_FALSE(Parse("source: /a\n,\n").ok());
}

TEST_F(MountConfigTest, ExampleParsesAndSetsEveryKey) {
  std::ifstream in(std::string(CTFS_TESTDATA_DIR) + "/../../config/example.yaml");
  ASSERT_TRUE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  // Host-specific parts: the key file, and the user and group names.
  auto replace = [&](const std::string& from, const std::string& to) {
    size_t n = 0;
    for (size_t p = 0; (p = text.find(from, p)) != std::string::npos; p += to.size(), ++n) {
      text.replace(p, from.size(), to);
    }
    return n;
  };
  ASSERT_GT(replace("/etc/ctfs/llama.reader.jwk", key_), 0u);
  ASSERT_GT(replace("[mlops]", "[root]"), 0u);
  ASSERT_GT(replace("group: mlops", "group: root"), 0u);
  ASSERT_GT(replace("user: trainer", "user: root"), 0u);
  Result<MountConfig> r = Parse(text);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const MountConfig& c = *r;
  EXPECT_TRUE(c.source && c.mountpoint && c.foreground && c.quiet && c.cache_mb && c.threads &&
              c.decrypt_threads && c.prefetch_mb && c.prefetch_threads && c.read_ahead_kb &&
              c.direct_io && c.allow_other && c.allow_bad_files && c.log.level && c.log.file &&
              c.metrics.file && c.metrics.interval_s && c.audit.file && c.embedded_policy &&
              c.policy && c.key_lease.grace_s && c.key_lease.on_key_loss);
  EXPECT_EQ(c.keys.size(), 1u);
  ASSERT_TRUE(c.policy);
  bool uid = false, gid = false, exe = false, sha = false, comm = false, cgroup = false,
       machine = false, path = false, tensor = false, before = false, after = false;
  for (const RuleConfig& rule : c.policy->rules) {
    uid |= !rule.subject.uids.empty();
    gid |= !rule.subject.gids.empty();
    exe |= !rule.subject.exe.empty();
    sha |= !rule.subject.exe_sha256.empty();
    comm |= !rule.subject.comm.empty();
    cgroup |= !rule.subject.cgroup.empty();
    machine |= !rule.subject.machine_id.empty();
    path |= !rule.object.path.empty();
    tensor |= !rule.object.tensor.empty();
    before |= rule.not_before_unix.has_value();
    after |= rule.not_after_unix.has_value();
  }
  EXPECT_TRUE(uid && gid && exe && sha && comm && cgroup && machine && path && tensor &&
              before && after);
}

TEST(Rfc3339Test, ParsesZonedTimes) {
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseRfc3339("2027-06-30T00:00:00Z"), 1814313600);
  EXPECT_EQ(ParseRfc3339("2027-06-30T02:00:00+02:00"), 1814313600);
  EXPECT_EQ(ParseRfc3339("2027-06-29T19:30:00-04:30"), 1814313600);
  EXPECT_EQ(ParseRfc3339("2027-06-30t00:00:00.999z"), 1814313600);
  EXPECT_EQ(ParseRfc3339("2027-06-30 00:00:00Z"), 1814313600);
  EXPECT_EQ(ParseRfc3339("2024-02-29T12:34:56Z"), 1709210096);
  EXPECT_EQ(ParseRfc3339("1969-12-31T23:59:59Z"), -1);
}

TEST(Rfc3339Test, RejectsOthers) {
  for (const char* bad :
       {"", "2027-06-30", "2027-06-30T00:00:00", "2023-02-29T00:00:00Z", "2027-13-01T00:00:00Z",
        "2027-06-31T00:00:00Z", "2027-06-30T24:00:00Z", "2027-06-30T00:60:00Z",
        "2027-06-30T00:00:61Z", "2027-06-30T00:00:00+2:00", "2027-06-30T00:00:00+02:00x",
        "2027-06-30T00:00:00.Z", "0000-01-01T00:00:00Z", "27-06-30T00:00:00Z",
        "2027-06-30T00:00:00 Z", "+2027-06-30T00:00:00Z"}) {
    EXPECT_FALSE(ParseRfc3339(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace ctfs::config
