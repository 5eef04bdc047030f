// SPDX-License-Identifier: Apache-2.0
// ctfs check-config FILE: what `ctfs mount --config FILE` checks before it mounts, without
// mounting: the file (config/mount_config.h), each key file (its errors at the line and column
// of its entry), the source and the mountpoint, the source tree opened and verified as the
// mount opens it (signatures, keys, embedded policies), and the access policy compiled
// against its files. Prints one paragraph saying what would be served to whom and exits 0;
// any problem is one error line and exit 3 (invalid input): the config would not mount.
#include <time.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "cmd/common.h"
#include "cmd/exit_codes.h"
#include "cmd/mount_access.h"
#include "cmd/mount_config_merge.h"
#include "cmd/mount_table.h"
#include "cmd/subcommands.h"
#include "config/mount_config.h"
#include "fs/served_tree.h"
#include "keys/key_resolver.h"
#include "policy/access_policy.h"

namespace ctfs::cmd {
namespace {

std::string Time(int64_t unix_s) {
  const time_t t = static_cast<time_t>(unix_s);
  tm utc{};
  char buf[64];
  if (::gmtime_r(&t, &utc) == nullptr || std::strftime(buf, sizeof buf, "%FT%TZ", &utc) == 0) {
    return std::to_string(unix_s);
  }
  return buf;
}

template <typename T>
std::string Alternatives(const std::vector<T>& v) {
  std::string out;
  for (const T& x : v) {
    if (!out.empty()) out += " or ";
    if constexpr (std::is_same_v<T, std::string>) {
      out += x;
    } else {
      out += std::to_string(x);
    }
  }
  return out;
}

std::string Subject(const config::SubjectConfig& s) {
  std::vector<std::string> parts;
  if (!s.uids.empty()) parts.push_back("uid " + Alternatives(s.uids));
  if (!s.gids.empty()) parts.push_back("gid " + Alternatives(s.gids));
  if (!s.exe.empty()) parts.push_back("exe " + Alternatives(s.exe));
  if (!s.exe_sha256.empty()) parts.push_back("exe sha256 " + Alternatives(s.exe_sha256));
  if (!s.comm.empty()) parts.push_back("comm " + Alternatives(s.comm));
  if (!s.cgroup.empty()) parts.push_back("cgroup " + Alternatives(s.cgroup));
  if (!s.machine_id.empty()) parts.push_back("machine-id " + Alternatives(s.machine_id));
  if (parts.empty()) return "everyone";
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : " and ") + p;
  return out;
}

std::string Window(const config::RuleConfig& r, int64_t now) {
  std::string out;
  if (r.not_before_unix) out += "; from " + Time(*r.not_before_unix);
  if (r.not_after_unix) out += "; until " + Time(*r.not_after_unix);
  if (r.not_after_unix && *r.not_after_unix <= now) {
    out += " (ended: never applies)";
  } else if (r.not_before_unix && *r.not_before_unix > now) {
    out += " (not yet in force)";
  }
  return out;
}

std::string Plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Check does every check; on success `summary` is the paragraph.
Status Check(const std::string& file, std::string* summary) {
  CTFS_ASSIGN_OR_RETURN(config::MountConfig cfg, config::LoadMountConfig(file));
  MountArgs args;
  MergeMountConfig(cfg, args);
  const auto err = [&](const std::string& msg) { return InvalidArgumentError(file + ": " + msg); };
  if (!cfg.source) return err("source: not set (check-config needs the source directory)");
  if (!cfg.mountpoint) return err("mountpoint: not set (check-config needs the mountpoint)");
  if (!PathExists(args.src)) return err("source " + args.src + ": does not exist");
  if (!IsDirectory(args.src)) return err("source " + args.src + ": not a directory");
  if (!PathExists(args.mountpoint)) {
    return err("mountpoint " + args.mountpoint + ": does not exist (create an empty directory)");
  }
  if (!IsDirectory(args.mountpoint)) {
    return err("mountpoint " + args.mountpoint + ": not a directory");
  }
  // A live ctfs mount there (this config's, checked before a reload) is fine; otherwise the
  // mount needs an empty directory.
  std::optional<MountEntry> live = FindMountAt(args.mountpoint);
  const bool mounted = live && live->fstype == kCtfsFsType;
  std::error_code ec;
  if (!mounted && !std::filesystem::is_empty(args.mountpoint, ec)) {
    return err("mountpoint " + args.mountpoint + ": " + (ec ? ec.message() : "not empty"));
  }

  // Each key file alone first, so that its error points at its entry.
  for (const config::KeySourceConfig& k : cfg.keys) {
    Result<keys::KeyResolver> one =
        keys::KeyResolver::Create({{}, false, false, "", {KeySpecOf(k)}});
    if (!one.ok()) {
      return InvalidArgumentError(file + ":" + std::to_string(k.pos.line) + ":" +
                                  std::to_string(k.pos.column) + ": " + one.status().message());
    }
  }
  // Then as the mount resolves them (with CRYPTOTENSOR_KEYS and file:// jku).
  Result<keys::KeyResolver> resolver = keys::KeyResolver::Create(
      {args.key_files, true, true, args.passphrase_file, args.key_sources});
  if (!resolver.ok()) return err(resolver.status().message());
  const fs::ServeOptions sopt = ServeOptionsOf(args);
  std::vector<std::string> warnings;
  Result<std::unique_ptr<fs::ServedTree>> tree =
      fs::ServedTree::Create(args.src, *resolver, sopt, &warnings);
  if (!tree.ok()) return err(tree.status().message());
  for (const std::string& w : warnings) std::fprintf(stderr, "ctfs: warning: %s\n", w.c_str());
  const std::vector<fs::PolicyFile> files = (*tree)->PolicyFiles();
  size_t encrypted = 0;
  for (const fs::PolicyFile& f : files) {
    const fs::TreeNode* n = (*tree)->tree().Find(f.ino);
    if (n != nullptr && n->kind == fs::TreeNode::Kind::kEncrypted) ++encrypted;
  }

  std::string s = file + ": OK. Would serve " + Plural(files.size(), "file", "files") +
                  " (" + std::to_string(encrypted) + " encrypted) from " + args.src +
                  " at " + args.mountpoint + (mounted ? " (mounted now)" : "");
  if (!cfg.policy) {
    s += args.allow_other ? " to the users file modes allow (allow_other)"
                          : " to root only (allow_other is off)";
    s += "; no policy: file modes decide (as without a config).";
  } else {
    Result<std::shared_ptr<const policy::AccessPolicy>> compiled =
        CompilePolicy(cfg.policy, files, file);
    if (!compiled.ok()) return InvalidArgumentError(compiled.status().message());
    const bool permissive = cfg.policy->mode == config::PolicyConfig::Mode::kPermissive;
    s += " to the callers its policy allows (mode " +
         std::string(permissive ? "permissive" : "enforce") + ", first match wins): ";
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    for (size_t i = 0; i < cfg.policy->rules.size(); ++i) {
      const config::RuleConfig& r = cfg.policy->rules[i];
      s += "rule \"" + r.name + "\" (" + (r.allow ? "allow" : "deny") + "): " +
           Subject(r.subject) + "; " +
           Plural((*compiled)->FilesMatched(i), "file", "files") + Window(r, now) + "; ";
    }
    s += "anything else: denied.";
    if (permissive) {
      s += " Permissive mode: every open is allowed; what the rules deny is audited as "
           "would-deny.";
    }
    if (!args.allow_other) s += " Without allow_other only root can open the mount at all.";
  }
  if (cfg.audit.file) s += " Audit log: " + *cfg.audit.file + ".";
  *summary = std::move(s);
  return Status::Ok();
}

}  // namespace

CLI::App* AddCheckConfig(CLI::App& app, CheckConfigArgs& args) {
  CLI::App* c = app.add_subcommand(
      "check-config",
      "Check a mount config file (YAML) without mounting: keys, source tree, mountpoint and "
      "policy, as `ctfs mount --config FILE` would; prints what would be served to whom.");
  c->add_option("FILE", args.file, "The config file")->required();
  return c;
}

int RunCheckConfig(const CheckConfigArgs& args) {
  std::string summary;
  Status st = Check(args.file, &summary);
  if (!st.ok()) {
    Fail(st);
    return kExitInvalidInput;
  }
  std::printf("%s\n", summary.c_str());
  return kExitOk;
}

}  // namespace ctfs::cmd
