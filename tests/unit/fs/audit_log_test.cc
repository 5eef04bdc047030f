// SPDX-License-Identifier: Apache-2.0
#include "fs/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace ctfs::fs {
namespace {

using Clock = std::chrono::system_clock;
using ctfs::testing::ReadFile;
using ctfs::testing::TempDir;
using Json = nlohmann::json;
using std::chrono::milliseconds;

// 2026-03-01T12:00:00.250Z
const Clock::time_point kT0 = Clock::time_point(milliseconds(1772366400250));

std::vector<Json> Lines(const std::string& path) {
  std::vector<Json> out;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) out.push_back(Json::parse(line));  // throws if not JSON
  return out;
}

AuditEvent Open(std::string path, std::string decision = "allow") {
  AuditEvent e;
  e.event = "open";
  e.path = std::move(path);
  e.decision = std::move(decision);
  e.rule = "vllm";
  e.reason = "rule 'vllm' allows";
  e.mode = "enforce";
  e.has_subject = true;
  e.uid = 990;
  e.gid = 991;
  e.pid = 1234;
  e.exe = "/opt/vllm/bin/python3";
  e.cgroup = "/system.slice/vllm.service";
  return e;
}

std::unique_ptr<AuditLog> MustOpen(const std::string& file) {
  auto log = AuditLog::Open({.file = file, .to_stderr = false, .mount = "/run/ctfs/llama"});
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? std::move(log).value() : nullptr;
}

TEST(AuditLog, FieldsAndMode) {
  TempDir dir;
  const std::string file = dir.File("audit.jsonl");
  {
    auto log = MustOpen(file);
    ASSERT_TRUE(log);
    log->Record(Open("model.safetensors"), kT0);
    AuditEvent reload;
    reload.event = "reload";
    reload.reason = "policy reloaded: 3 rules";
    log->Record(reload, kT0 + milliseconds(5));
  }
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::vector<Json> lines = Lines(file);
  ASSERT_EQ(lines.size(), 2u);
  const Json& j = lines[0];
  EXPECT_EQ(j["time"], "2026-03-01T12:00:00.250Z");
  EXPECT_EQ(j["mount"], "/run/ctfs/llama");
  EXPECT_EQ(j["event"], "open");
  EXPECT_EQ(j["path"], "model.safetensors");
  EXPECT_EQ(j["decision"], "allow");
  EXPECT_EQ(j["rule"], "vllm");
  EXPECT_EQ(j["reason"], "rule 'vllm' allows");
  EXPECT_EQ(j["mode"], "enforce");
  EXPECT_EQ(j["uid"], 990);
  EXPECT_EQ(j["gid"], 991);
  EXPECT_EQ(j["pid"], 1234);
  EXPECT_EQ(j["exe"], "/opt/vllm/bin/python3");
  EXPECT_EQ(j["cgroup"], "/system.slice/vllm.service");
  EXPECT_FALSE(j.contains("count"));
  const Json& r = lines[1];
  EXPECT_EQ(r["event"], "reload");
  EXPECT_EQ(r["time"], "2026-03-01T12:00:00.255Z");
  EXPECT_EQ(r["reason"], "policy reloaded: 3 rules");
  for (const char* absent : {"uid", "gid", "pid", "exe", "cgroup", "path", "rule", "count"}) {
    EXPECT_FALSE(r.contains(absent)) << absent;
  }
}

TEST(AuditLog, AppendsToExistingFile) {
  TempDir dir;
  const std::string file = dir.File("audit.jsonl");
  MustOpen(file)->Record(Open("a"), kT0);
  MustOpen(file)->Record(Open("b"), kT0);
  std::vector<Json> lines = Lines(file);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["path"], "a");
  EXPECT_EQ(lines[1]["path"], "b");
}

TEST(AuditLog, HostileStringsStayValidJson) {
  TempDir dir;
  const std::string file = dir.File("audit.jsonl");
  const std::string hostile[] = {
      "a\"b\\c",                                    // quote, backslash
      "line\nbreak\r\t",                            // newline would split the line
      std::string("ctl\x01\x1f\x7f", 6),            // control bytes
      "bad\xff\xfeutf8",                            // invalid bytes
      "\xc0\xaf",                                   // overlong '/'
      "\xed\xa0\x80",                               // a UTF-16 surrogate
      "trunc\xe2\x82",                              // truncated sequence at the end
      "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",  // valid: e-acute, euro, emoji
      "\"},{\"decision\":\"allow",                  // injection attempt
  };
  {
    auto log = MustOpen(file);
    for (const std::string& h : hostile) log->Record(Open(h), kT0);
  }
  std::vector<Json> lines = Lines(file);
  ASSERT_EQ(lines.size(), std::size(hostile));
  EXPECT_EQ(lines[0]["path"], "a\"b\\c");
  EXPECT_EQ(lines[1]["path"], "line\nbreak\r\t");
  EXPECT_EQ(lines[2]["path"], std::string("ctl\x01\x1f\x7f", 6));
  EXPECT_EQ(lines[3]["path"], "bad\xef\xbf\xbd\xef\xbf\xbdutf8");  // U+FFFD per byte
  EXPECT_EQ(lines[4]["path"], "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(lines[5]["path"], "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(lines[6]["path"], "trunc\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(lines[7]["path"], hostile[7]);
  EXPECT_EQ(lines[8]["path"], hostile[8]);
  EXPECT_EQ(lines[8]["decision"], "allow");
  EXPECT_EQ(lines[8].size(), lines[0].size());  // no field was injected
  // Each record is exactly one physical line.
  const std::string text = ReadFile(file);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(std::size(hostile)));
}

TEST(AuditLog, RefusesGroupReadableFile) {
  TempDir dir;
  const std::string file = dir.File("audit.jsonl");
  ctfs::testing::WriteFile(file, "");
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  auto log = AuditLog::Open({.file = file, .to_stderr = false, .mount = "/m"});
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find(file), std::string::npos) << log.status().message();
  EXPECT_NE(log.status().message().find("0644"), std::string::npos) << log.status().message();
  ASSERT_EQ(::chmod(file.c_str(), 0600), 0);
  EXPECT_TRUE(AuditLog::Open({.file = file, .to_stderr = false, .mount = "/m"}).ok());
}

TEST(AuditLog, RefusesSymlinkAndNonRegular) {
  TempDir dir;
  const std::string target = dir.File("target");
  ctfs::testing::WriteFile(target, "");
  ASSERT_EQ(::chmod(target.c_str(), 0600), 0);
  const std::string link = dir.File("audit.jsonl");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  auto log = AuditLog::Open({.file = link, .to_stderr = false, .mount = "/m"});
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find(link), std::string::npos) << log.status().message();
  EXPECT_EQ(ReadFile(target), "");

  auto d = AuditLog::Open({.file = dir.path(), .to_stderr = false, .mount = "/m"});
  ASSERT_FALSE(d.ok());  // a directory (EISDIR on open)
  EXPECT_NE(d.status().message().find(dir.path()), std::string::npos) << d.status().message();

  const std::string fifo = dir.File("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto f = AuditLog::Open({.file = fifo, .to_stderr = false, .mount = "/m"});
  ASSERT_FALSE(f.ok());  // no reader: fails instead of blocking
  EXPECT_NE(f.status().message().find(fifo), std::string::npos) << f.status().message();
}

TEST(AuditLog, CoalescesRepeatsWithinASecond) {
  TempDir dir;
  const std::string file = dir.File("audit.jsonl");
  auto log = MustOpen(file);
  for (int i = 0; i < 1000; ++i) {
    AuditEvent e = Open("model.safetensors");
    e.pid = 1000 + i;
    log->Record(e, kT0 + milliseconds(i));  // 0..999 ms
  }
  EXPECT_EQ(Lines(file).size(), 1u);    // only the first so far
  log->Flush(kT0 + milliseconds(999));  // the window is not over yet
  EXPECT_EQ(Lines(file).size(), 1u);
  log->Flush(kT0 + milliseconds(1000));
  std::vector<Json> lines = Lines(file);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_FALSE(lines[0].contains("count"));
  EXPECT_EQ(lines[0]["pid"], 1000);
  EXPECT_EQ(lines[1]["count"], 999);  // the repeats; with the first line, 1000 decisions
  EXPECT_EQ(lines[1]["pid"], 1999);   // the last repeat's fields and time
  EXPECT_EQ(lines[1]["time"], "2026-03-01T12:00:01.249Z");
  EXPECT_EQ(lines[1]["path"], "model.safetensors");
  EXPECT_EQ(lines[1]["decision"], "allow");
  log->Flush(kT0 + milliseconds(5000));  // nothing left to write
  EXPECT_EQ(Lines(file).size(), 2u);
}

TEST(AuditLog, NextEventAfterWindowWritesCountThenItself) {
  TempDir dir;
  const std::string file = dir.File("audit.jsonl");
  auto log = MustOpen(file);
  log->Record(Open("m"), kT0);
  log->Record(Open("m"), kT0 + milliseconds(10));
  log->Record(Open("m"), kT0 + milliseconds(20));
  log->Record(Open("m"), kT0 + milliseconds(1500));  // a new window
  std::vector<Json> lines = Lines(file);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_FALSE(lines[0].contains("count"));
  EXPECT_EQ(lines[1]["count"], 2);
  EXPECT_FALSE(lines[2].contains("count"));
  EXPECT_EQ(lines[2]["time"], "2026-03-01T12:00:01.750Z");
}

TEST(AuditLog, SingleEventWritesNoCountLine) {
  TempDir dir;
  const std::string file = dir.File("audit.jsonl");
  auto log = MustOpen(file);
  log->Record(Open("m"), kT0);
  log->Flush(kT0 + milliseconds(2000));
  log->Record(Open("m"), kT0 + milliseconds(2500));
  EXPECT_EQ(Lines(file).size(), 2u);  // two plain lines, no count
  for (const Json& j : Lines(file)) EXPECT_FALSE(j.contains("count"));
}

TEST(AuditLog, DistinctKeysAreNotCoalesced) {
  TempDir dir;
  const std::string file = dir.File("audit.jsonl");
  auto log = MustOpen(file);
  log->Record(Open("a"), kT0);
  log->Record(Open("b"), kT0);          // path
  log->Record(Open("a", "deny"), kT0);  // decision
  AuditEvent e = Open("a");
  e.uid = 1;  // uid
  log->Record(e, kT0);
  e = Open("a");
  e.gid = 1;
  log->Record(e, kT0);
  e = Open("a");
  e.exe = "/bin/cat";
  log->Record(e, kT0);
  e = Open("a");
  e.cgroup = "/user.slice";
  log->Record(e, kT0);
  e = Open("a");
  e.rule = "other";
  log->Record(e, kT0);
  e = Open("a");
  e.pid = 99;  // not part of the key: coalesced
  log->Record(e, kT0);
  EXPECT_EQ(Lines(file).size(), 8u);
  // Non-open events are never coalesced.
  AuditEvent w;
  w.event = "window";
  w.reason = "rule 'vllm' expired";
  log->Record(w, kT0);
  log->Record(w, kT0);
  EXPECT_EQ(Lines(file).size(), 10u);
  log.reset();  // the destructor writes the pending count
  std::vector<Json> lines = Lines(file);
  ASSERT_EQ(lines.size(), 11u);
  EXPECT_EQ(lines[10]["count"], 1);
  EXPECT_EQ(lines[10]["pid"], 99);
}

TEST(AuditLog, NoFileNoOutput) {
  auto log = AuditLog::Open({.file = "", .to_stderr = false, .mount = "/m"});
  ASSERT_TRUE(log.ok());
  (*log)->Record(Open("a"), kT0);  // goes nowhere, must not crash
  (*log)->Flush(kT0 + milliseconds(2000));
}

}  // namespace
}  // namespace ctfs::fs
