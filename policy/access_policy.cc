// SPDX-License-Identifier: Apache-2.0
// Subject matching, field by field (a listed field must match; within a list, any entry):
//   uids: subject.uid; gids: subject.gid or any supplementary group;
//   exe: kPath globs on the absolute executable path; comm: kName globs;
//   cgroup: kPath globs on the cgroup path or any ancestor, the root included
//     ("/system.slice/vllm.service" matches a caller in "/system.slice/vllm.service/sub");
//   exe_sha256, machine_id: exact compare with the listed values, lowercased at Compile.
// A subject value the daemon could not read ("") never matches a field that lists entries:
// an unknown executable is not "/opt/vllm/bin/*", and not "*" either.
//
// In permissive mode CanAllow is always true: every decision there is an allow, so no file
// may be withdrawn from its readers.
#include "policy/access_policy.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <string_view>
#include <utility>

#include "base/glob.h"

namespace ctfs::policy {
namespace {

struct Rule {
  std::string name;
  bool allow = false;
  bool hide = false;
  std::vector<uint32_t> uids;
  std::vector<uint32_t> gids;
  std::vector<Glob> exe;
  std::vector<std::string> exe_sha256;
  std::vector<Glob> comm;
  std::vector<Glob> cgroup;
  std::vector<std::string> machine_id;
  std::optional<int64_t> not_before_unix;
  std::optional<int64_t> not_after_unix;
  size_t files_matched = 0;
};

std::string RuleLabel(const config::RuleConfig& rule) {
  std::string label = "policy rule '" + rule.name + "'";
  if (rule.pos.line > 0) label += " (line " + std::to_string(rule.pos.line) + ")";
  return label;
}

Result<std::vector<Glob>> CompileGlobs(const config::RuleConfig& rule, std::string_view field,
                                       const std::vector<std::string>& patterns, Glob::Kind kind) {
  std::vector<Glob> globs;
  globs.reserve(patterns.size());
  for (const std::string& pattern : patterns) {
    Result<Glob> glob = Glob::Compile(pattern, kind);
    if (!glob.ok()) {
      return InvalidArgumentError(RuleLabel(rule) + ": " + std::string(field) + ": " +
                                  glob.status().message());
    }
    globs.push_back(std::move(glob).value());
  }
  return globs;
}

std::vector<std::string> Lowercased(const std::vector<std::string>& values) {
  std::vector<std::string> out = values;
  for (std::string& v : out) {
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool AnyGlob(const std::vector<Glob>& globs, std::string_view text) {
  for (const Glob& g : globs) {
    if (g.Match(text)) return true;
  }
  return false;
}

bool Contains(const std::vector<uint32_t>& ids, uint32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool ContainsString(const std::vector<std::string>& values, std::string_view v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

// The cgroup path and each ancestor ("/a/b", "/a", "" for the root) against the globs.
bool CgroupMatches(const std::vector<Glob>& globs, std::string_view cgroup) {
  std::string_view path = cgroup;
  while (true) {
    if (AnyGlob(globs, path)) return true;
    const size_t slash = path.rfind('/');
    if (slash == std::string_view::npos || path.empty()) return false;
    path = path.substr(0, slash);
  }
}

bool SubjectMatches(const Rule& rule, const Subject& s) {
  if (!rule.uids.empty() && !Contains(rule.uids, s.uid)) return false;
  if (!rule.gids.empty() && !Contains(rule.gids, s.gid)) {
    bool any = false;
    for (uint32_t g : s.groups) {
      if (Contains(rule.gids, g)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  if (!rule.exe.empty() && (s.exe.empty() || !AnyGlob(rule.exe, s.exe))) return false;
  if (!rule.exe_sha256.empty() &&
      (s.exe_sha256.empty() || !ContainsString(rule.exe_sha256, s.exe_sha256))) {
    return false;
  }
  if (!rule.comm.empty() && (s.comm.empty() || !AnyGlob(rule.comm, s.comm))) return false;
  if (!rule.cgroup.empty() && (s.cgroup.empty() || !CgroupMatches(rule.cgroup, s.cgroup))) {
    return false;
  }
  if (!rule.machine_id.empty() &&
      (s.machine_id.empty() || !ContainsString(rule.machine_id, s.machine_id))) {
    return false;
  }
  return true;
}

bool InWindow(const Rule& rule, int64_t now_unix) {
  if (rule.not_before_unix && now_unix < *rule.not_before_unix) return false;
  if (rule.not_after_unix && now_unix >= *rule.not_after_unix) return false;
  return true;
}

// RFC 3339 UTC ("2027-06-30T00:00:00Z"); "@<seconds>" for a time gmtime cannot represent.
std::string FormatTime(int64_t unix_s) {
  const time_t t = static_cast<time_t>(unix_s);
  struct tm tm {};
  char buf[64];
  if (gmtime_r(&t, &tm) == nullptr || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    return "@" + std::to_string(unix_s);
  }
  return buf;
}

}  // namespace

struct AccessPolicy::Impl {
  bool permissive = false;
  bool needs_exe_hash = false;
  bool hides = false;
  std::vector<Rule> rules;
  std::vector<std::vector<uint32_t>> candidates;  // per file: rule indices, in order
};

AccessPolicy::AccessPolicy() : impl_(std::make_unique<Impl>()) {}
AccessPolicy::~AccessPolicy() = default;

Result<std::shared_ptr<const AccessPolicy>> AccessPolicy::Compile(
    const config::PolicyConfig& config, const std::vector<FileObject>& files) {
  std::shared_ptr<AccessPolicy> policy(new AccessPolicy());
  Impl& impl = *policy->impl_;
  impl.permissive = config.mode == config::PolicyConfig::Mode::kPermissive;
  impl.rules.reserve(config.rules.size());
  impl.candidates.resize(files.size());
  for (size_t ri = 0; ri < config.rules.size(); ++ri) {
    const config::RuleConfig& rc = config.rules[ri];
    const config::SubjectConfig& sc = rc.subject;
    Rule rule;
    rule.name = rc.name;
    rule.allow = rc.allow;
    rule.hide = rc.hide;
    if (rc.hide) impl.hides = true;
    rule.uids = sc.uids;
    rule.gids = sc.gids;
    rule.exe_sha256 = Lowercased(sc.exe_sha256);
    rule.machine_id = Lowercased(sc.machine_id);
    rule.not_before_unix = rc.not_before_unix;
    rule.not_after_unix = rc.not_after_unix;
    Result<std::vector<Glob>> exe = CompileGlobs(rc, "exe", sc.exe, Glob::Kind::kPath);
    if (!exe.ok()) return exe.status();
    rule.exe = std::move(exe).value();
    Result<std::vector<Glob>> comm = CompileGlobs(rc, "comm", sc.comm, Glob::Kind::kName);
    if (!comm.ok()) return comm.status();
    rule.comm = std::move(comm).value();
    Result<std::vector<Glob>> cgroup = CompileGlobs(rc, "cgroup", sc.cgroup, Glob::Kind::kPath);
    if (!cgroup.ok()) return cgroup.status();
    rule.cgroup = std::move(cgroup).value();
    Result<std::vector<Glob>> paths = CompileGlobs(rc, "path", rc.object.path, Glob::Kind::kPath);
    if (!paths.ok()) return paths.status();
    Result<std::vector<Glob>> tensors =
        CompileGlobs(rc, "tensor", rc.object.tensor, Glob::Kind::kName);
    if (!tensors.ok()) return tensors.status();
    if (!rule.exe_sha256.empty()) impl.needs_exe_hash = true;

    for (size_t fi = 0; fi < files.size(); ++fi) {
      const FileObject& file = files[fi];
      if (!paths->empty() && !AnyGlob(*paths, file.rel_path)) continue;
      if (!tensors->empty()) {
        bool any = false;
        for (const std::string& name : file.tensor_names) {
          if (AnyGlob(*tensors, name)) {
            any = true;
            break;
          }
        }
        if (!any) continue;
      }
      impl.candidates[fi].push_back(static_cast<uint32_t>(ri));
      ++rule.files_matched;
    }
    impl.rules.push_back(std::move(rule));
  }
  return std::shared_ptr<const AccessPolicy>(std::move(policy));
}

Decision AccessPolicy::Decide(size_t file_index, const Subject& subject, int64_t now_unix) const {
  Decision d;
  const Rule* outside_window = nullptr;  // the first rule that matched but for the time
  for (uint32_t ri : impl_->candidates[file_index]) {
    const Rule& rule = impl_->rules[ri];
    if (!SubjectMatches(rule, subject)) continue;
    if (!InWindow(rule, now_unix)) {
      if (outside_window == nullptr) outside_window = &rule;
      continue;
    }
    d.rules_allow = rule.allow;
    d.hide = rule.hide && !impl_->permissive;
    d.rule = rule.name;
    d.reason = "rule '" + rule.name + (rule.allow ? "' allows" : "' denies");
    break;
  }
  if (d.rule.empty()) {
    d.reason = "no rule matches";
    if (outside_window != nullptr) {
      const Rule& r = *outside_window;
      if (r.not_before_unix && now_unix < *r.not_before_unix) {
        d.reason +=
            " (rule '" + r.name + "' not yet valid until " + FormatTime(*r.not_before_unix) + ")";
      } else {
        d.reason += " (rule '" + r.name + "' expired at " + FormatTime(*r.not_after_unix) + ")";
      }
    }
  }
  d.allow = d.rules_allow || impl_->permissive;
  if (impl_->permissive && !d.rules_allow) d.reason += "; permissive mode allows";
  return d;
}

bool AccessPolicy::CanAllow(size_t file_index, int64_t now_unix) const {
  if (impl_->permissive) return true;
  for (uint32_t ri : impl_->candidates[file_index]) {
    const Rule& rule = impl_->rules[ri];
    if (rule.allow && InWindow(rule, now_unix)) return true;
  }
  return false;
}

std::optional<int64_t> AccessPolicy::NextTransition(int64_t now_unix) const {
  std::optional<int64_t> next;
  auto consider = [&](const std::optional<int64_t>& t) {
    if (t && *t > now_unix && (!next || *t < *next)) next = *t;
  };
  for (const Rule& rule : impl_->rules) {
    consider(rule.not_before_unix);
    consider(rule.not_after_unix);
  }
  return next;
}

bool AccessPolicy::NeedsExeHash() const { return impl_->needs_exe_hash; }
bool AccessPolicy::HidesFiles() const { return impl_->hides && !impl_->permissive; }
bool AccessPolicy::permissive() const { return impl_->permissive; }
size_t AccessPolicy::rule_count() const { return impl_->rules.size(); }
size_t AccessPolicy::FilesMatched(size_t rule_index) const {
  return impl_->rules[rule_index].files_matched;
}

}  // namespace ctfs::policy
