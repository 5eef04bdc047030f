// SPDX-License-Identifier: Apache-2.0
// Fuzzes config/mount_config (the YAML mount config, through yaml-cpp). Input: the file's text,
// parsed as kConfigPath; a readable dummy key file kKeyFile is created at startup so that seeds
// naming it (absolutely or as "reader.jwk") get past the key check. Oracles:
//   * never crashes, hangs or throws (every yaml-cpp exception becomes a Status);
//   * an error is InvalidArgument shaped "FILE:LINE:COLUMN: message" with LINE, COLUMN >= 1;
//   * an accepted config keeps the documented invariants: paths absolute and normalized;
//     numbers within the ranges of the matching flags; a policy has rules, each with a
//     non-empty unique name without control characters, hide only on deny rules, not_before
//     before not_after, globs that compile with the kind of their key (base/glob.h), hex
//     digests of the right length in lowercase, no uid/gid (uint32_t)-1; positions >= 1.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/glob.h"
#include "config/mount_config.h"
#include "tests/fuzz/fuzz_util.h"

namespace ctfs::fuzz {
namespace {

constexpr char kDir[] = "/tmp/ctfs-config-fuzzer";
constexpr char kConfigPath[] = "/tmp/ctfs-config-fuzzer/ctfs.yaml";
constexpr char kKeyFile[] = "/tmp/ctfs-config-fuzzer/reader.jwk";

// "PATH:LINE:COLUMN: " with both numbers >= 1.
bool HasPosition(const std::string& m) {
  const std::string prefix = std::string(kConfigPath) + ":";
  if (m.rfind(prefix, 0) != 0) return false;
  size_t i = prefix.size();
  for (int field = 0; field < 2; ++field) {
    const size_t start = i;
    uint64_t v = 0;
    while (i < m.size() && m[i] >= '0' && m[i] <= '9' && i - start < 10) {
      v = v * 10 + static_cast<uint64_t>(m[i] - '0');
      ++i;
    }
    if (i == start || v == 0 || i >= m.size() || m[i] != ':') return false;
    ++i;
  }
  return m.compare(i, 1, " ") == 0;
}

void CheckPath(const std::string& p, const std::string& what) {
  const std::filesystem::path fp(p);
  FUZZ_CHECK(fp.is_absolute() && fp.lexically_normal() == fp && p.find('\0') == std::string::npos,
             what + ": not an absolute normal path: " + p);
}

void CheckPos(const config::SourcePos& pos, const std::string& what) {
  FUZZ_CHECK(pos.line >= 1 && pos.column >= 1,
             what + " at " + std::to_string(pos.line) + ":" + std::to_string(pos.column));
}

void CheckGlobs(const std::vector<std::string>& globs, Glob::Kind kind, const std::string& what) {
  for (const std::string& g : globs) {
    Result<Glob> c = Glob::Compile(g, kind);
    FUZZ_CHECK(c.ok(),
               what + ": accepted a pattern that does not compile: " + c.status().ToString());
  }
}

void CheckHex(const std::vector<std::string>& v, size_t digits, const std::string& what) {
  for (const std::string& h : v) {
    FUZZ_CHECK(
        h.size() == digits &&
            std::all_of(h.begin(), h.end(),
                        [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }),
        what + ": " + h);
  }
}

template <typename T>
void CheckRange(const std::optional<T>& v, uint64_t lo, uint64_t hi, const std::string& what) {
  if (v) FUZZ_CHECK(*v >= lo && *v <= hi, what + " out of range: " + std::to_string(*v));
}

void CheckRule(const config::RuleConfig& r, size_t i) {
  const std::string what = "rule " + std::to_string(i) + " (" + r.name + ")";
  FUZZ_CHECK(!r.name.empty(), what + ": empty name");
  FUZZ_CHECK(std::none_of(r.name.begin(), r.name.end(),
                          [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }),
             what + ": control character in the name");
  FUZZ_CHECK(!(r.hide && r.allow), what + ": hide on an allow rule");
  if (r.not_before_unix && r.not_after_unix) {
    FUZZ_CHECK(*r.not_before_unix < *r.not_after_unix, what + ": empty time window");
  }
  // Years 0001-9999 with a zone of at most a day either way.
  for (const std::optional<int64_t>& t : {r.not_before_unix, r.not_after_unix}) {
    if (t) FUZZ_CHECK(*t > -62135596800 - 86400 && *t < 253402300800 + 86400, what + ": time");
  }
  CheckPos(r.pos, what);
  const config::SubjectConfig& s = r.subject;
  for (uint32_t id : s.uids) FUZZ_CHECK(id != UINT32_MAX, what + ": uid -1");
  for (uint32_t id : s.gids) FUZZ_CHECK(id != UINT32_MAX, what + ": gid -1");
  CheckGlobs(s.exe, Glob::Kind::kPath, what + " exe");
  CheckGlobs(s.cgroup, Glob::Kind::kPath, what + " cgroup");
  CheckGlobs(s.comm, Glob::Kind::kName, what + " comm");
  CheckHex(s.exe_sha256, 64, what + " exe_sha256");
  CheckHex(s.machine_id, 32, what + " machine_id");
  CheckGlobs(r.object.path, Glob::Kind::kPath, what + " path");
  CheckGlobs(r.object.tensor, Glob::Kind::kName, what + " tensor");
}

void CheckConfig(const config::MountConfig& c) {
  FUZZ_CHECK(c.path == kConfigPath, "path: " + c.path);
  if (c.source) CheckPath(*c.source, "source");
  if (c.mountpoint) CheckPath(*c.mountpoint, "mountpoint");
  if (c.log.file) CheckPath(*c.log.file, "log.file");
  if (c.audit.file) CheckPath(*c.audit.file, "audit.file");
  for (const config::KeySourceConfig& k : c.keys) {
    CheckPath(k.file, "key file");
    CheckPos(k.pos, "key file " + k.file);
  }
  CheckRange(c.cache_mb, 0, uint64_t{1} << 20, "cache_mb");
  CheckRange(c.threads, 1, 1024, "threads");
  CheckRange(c.decrypt_threads, 0, 256, "decrypt_threads");
  CheckRange(c.prefetch_mb, 0, uint64_t{1} << 16, "prefetch_mb");
  CheckRange(c.prefetch_threads, 1, 256, "prefetch_threads");
  CheckRange(c.read_ahead_kb, 0, uint64_t{1} << 20, "read_ahead_kb");
  if (c.log.level) {
    static const std::set<std::string> kLevels = {"trace",   "debug", "info",     "warn",
                                                  "warning", "error", "critical", "off"};
    FUZZ_CHECK(kLevels.count(*c.log.level) == 1, "log.level " + *c.log.level);
  }
  if (!c.policy) return;
  FUZZ_CHECK(!c.policy->rules.empty(), "a policy without rules");
  std::set<std::string> names;
  for (size_t i = 0; i < c.policy->rules.size(); ++i) {
    CheckRule(c.policy->rules[i], i);
    FUZZ_CHECK(names.insert(c.policy->rules[i].name).second,
               "duplicate rule name " + c.policy->rules[i].name);
  }
}

void FuzzConfig(ByteSpan input) {
  Result<config::MountConfig> c = config::ParseMountConfig(AsStringView(input), kConfigPath);
  if (!c.ok()) {
    FUZZ_CHECK(c.status().code() == StatusCode::kInvalidArgument,
               "error code: " + c.status().ToString());
    FUZZ_CHECK(HasPosition(c.status().message()),
               "error without FILE:LINE:COLUMN: " + c.status().message());
    return;
  }
  CheckConfig(*c);
}

// The dummy key file the seeds name (its contents are not read by the config loader).
void MakeKeyFile() {
  ::mkdir(kDir, 0700);
  const std::string tmp = std::string(kKeyFile) + "." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr || std::fputs("{\"keys\": []}\n", f) < 0 || std::fclose(f) != 0 ||
      std::rename(tmp.c_str(), kKeyFile) != 0) {
    std::fprintf(stderr, "fuzzer setup: cannot write %s\n", kKeyFile);
    std::exit(2);
  }
}

}  // namespace
}  // namespace ctfs::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ctfs::fuzz::MakeKeyFile();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctfs::fuzz::FuzzConfig(ctfs::ByteSpan(data, size));
  return 0;
}
