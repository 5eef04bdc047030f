// SPDX-License-Identifier: Apache-2.0
#include "cmd/mount_access.h"

#include <spdlog/spdlog.h>

namespace ctfs::cmd {

fs::ServeOptions ServeOptionsOf(const MountArgs& args) {
  fs::ServeOptions sopt;
  sopt.cache_bytes = args.cache_mb << 20;
  sopt.decrypt_threads = args.decrypt_threads;
  sopt.prefetch_bytes = args.prefetch_mb << 20;
  sopt.prefetch_threads = args.prefetch_threads;
  sopt.direct_io = args.direct_io;
  sopt.allow_bad_files = args.allow_bad_files;
  sopt.embedded_policy_operator = args.embedded_policy == config::EmbeddedPolicyMode::kOperator;
  return sopt;
}

Result<std::shared_ptr<const policy::AccessPolicy>> CompilePolicy(
    const std::optional<config::PolicyConfig>& policy, const std::vector<fs::PolicyFile>& files,
    const std::string& config_path) {
  if (!policy) return std::shared_ptr<const policy::AccessPolicy>();
  std::vector<policy::FileObject> objects;
  objects.reserve(files.size());
  for (const fs::PolicyFile& f : files) objects.push_back(f.object);
  auto compiled = policy::AccessPolicy::Compile(*policy, objects);
  if (!compiled.ok()) {
    return Status(compiled.status().code(), config_path + ": " + compiled.status().message());
  }
  return std::move(*compiled);
}

Result<std::unique_ptr<fs::AccessControl>> BuildAccessControl(
    const fs::ServedTree& tree, const std::optional<config::PolicyConfig>& policy,
    const config::AuditConfig& audit, const std::string& mountpoint,
    const std::string& config_path) {
  if (!policy && !audit.file && !audit.to_stderr) return std::unique_ptr<fs::AccessControl>();
  std::vector<fs::PolicyFile> files = tree.PolicyFiles();
  CTFS_ASSIGN_OR_RETURN(std::shared_ptr<const policy::AccessPolicy> compiled,
                        CompilePolicy(policy, files, config_path));
  std::unique_ptr<fs::AuditLog> log;
  if (audit.file || audit.to_stderr) {
    fs::AuditOptions opt;
    opt.file = audit.file.value_or("");
    opt.to_stderr = audit.to_stderr;
    opt.mount = mountpoint;
    CTFS_ASSIGN_OR_RETURN(log, fs::AuditLog::Open(opt));
  }
  fs::AccessControl::Options opt;
  opt.mount = mountpoint;
  auto machine_id = fs::ReadMachineId();
  if (machine_id.ok()) {
    opt.caller.machine_id = *machine_id;
  } else {
    // Rules that name a machine id then match nothing: deny, never allow by mistake.
    spdlog::warn("{} (rules naming a machine_id will not match)", machine_id.status().message());
  }
  return std::make_unique<fs::AccessControl>(std::move(opt), std::move(files),
                                             std::move(compiled), std::move(log));
}

Result<std::shared_ptr<const policy::AccessPolicy>> ReloadPolicy(
    const std::string& config_path, const std::vector<fs::PolicyFile>& files) {
  CTFS_ASSIGN_OR_RETURN(config::MountConfig cfg, config::LoadMountConfig(config_path));
  return CompilePolicy(cfg.policy, files, config_path);
}

}  // namespace ctfs::cmd
