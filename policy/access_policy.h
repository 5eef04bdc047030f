// SPDX-License-Identifier: Apache-2.0
// AccessPolicy: the operator's rules (config::PolicyConfig), compiled against the files of one
// mount, deciding who may open which file at what time. Pure: it sees plain subject and object
// values; reading them (FUSE request, /proc) and auditing are the caller's job.
//
// Semantics (README "Policies"; after fapolicyd): rules are tried top to bottom; the first
// rule that matches the subject, the file and the current time decides (allow or deny); if no
// rule matches, deny. A rule matches when every subject field it lists matches (a list matches
// if any entry does), its object matches the file (FileObject: path glob, and a tensor glob
// matching at least one tensor name if the rule lists tensor globs), and now is in
// [not_before, not_after). In permissive mode every decision is an allow, but the decision the
// rules made is reported (rules_allow) so that a rollout can be audited first.
//
// Cost: objects are static, so Compile matches every rule's object against every file once;
// Decide tries only the rules whose object matched that file, and does no allocation when the
// subject has no unmatched glob work (a few hundred ns for 100 rules).
// Thread safety: immutable after Compile; Decide is thread-safe.
#ifndef CTFS_POLICY_ACCESS_POLICY_H_
#define CTFS_POLICY_ACCESS_POLICY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "config/mount_config.h"

namespace ctfs::policy {

// Subject: the caller, as the daemon read it (fs/caller_info.h).
struct Subject {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups
  int32_t pid = 0;
  std::string exe;         // absolute path of the running executable ("" if unknown)
  std::string exe_sha256;  // lowercase hex ("" if not computed: only when NeedsExeHash())
  std::string comm;
  std::string cgroup;      // cgroup v2 path, e.g. "/system.slice/vllm.service"
  std::string machine_id;  // the host's /etc/machine-id
};

// FileObject: a served file as the rules see it.
struct FileObject {
  std::string rel_path;                   // relative to the mount root, no leading '/'
  std::vector<std::string> tensor_names;  // empty for files that are not safetensors
};

struct Decision {
  bool allow = false;       // the effect: true in permissive mode even when the rules deny
  bool rules_allow = false; // what the rules decided
  std::string rule;         // the deciding rule's name; empty if no rule matched
  std::string reason;       // one line, e.g. "rule 'vllm' allows", "no rule matches"
  bool hide = false;        // a deny rule with hide: true decided (never in permissive mode)
};

class AccessPolicy {
 public:
  // Compile validates the globs (InvalidArgument naming the rule and the pattern) and matches
  // each rule's object against `files` (index = the file index Decide takes).
  static Result<std::shared_ptr<const AccessPolicy>> Compile(const config::PolicyConfig& config,
                                                             const std::vector<FileObject>& files);

  // Decide decides for file `file_index` at `now_unix` (seconds). REQUIRES: a valid index.
  Decision Decide(size_t file_index, const Subject& subject, int64_t now_unix) const;

  // CanAllow: some allow rule that is in its window at `now_unix` matches file `file_index`
  // for some subject (a file no rule can allow any more is withdrawn from every reader).
  bool CanAllow(size_t file_index, int64_t now_unix) const;

  // NextTransition: the earliest not_before / not_after after `now_unix`, if any.
  std::optional<int64_t> NextTransition(int64_t now_unix) const;

  // NeedsExeHash: some rule lists exe_sha256 (the caller hashes executables only then).
  bool NeedsExeHash() const;

  // HidesFiles: some deny rule has hide: true (and the mode is enforce): lookups and directory
  // listings must then be decided per caller too.
  bool HidesFiles() const;

  bool permissive() const;
  size_t rule_count() const;
  // FilesMatched: for rule i, how many files its object matches (for `check-config`).
  size_t FilesMatched(size_t rule_index) const;

  ~AccessPolicy();

 private:
  struct Impl;
  AccessPolicy();
  std::unique_ptr<Impl> impl_;
};

}  // namespace ctfs::policy

#endif  // CTFS_POLICY_ACCESS_POLICY_H_
