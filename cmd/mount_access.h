// SPDX-License-Identifier: Apache-2.0
// The mount's access control from its config file: the operator's policy compiled against the
// served files, the audit log, and the SIGHUP reload of the policy.
#ifndef CTFS_CMD_MOUNT_ACCESS_H_
#define CTFS_CMD_MOUNT_ACCESS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "cmd/subcommands.h"
#include "config/mount_config.h"
#include "fs/access_control.h"
#include "fs/served_tree.h"
#include "policy/access_policy.h"

namespace ctfs::cmd {

// ServeOptionsOf: what the tree serves with, from the mount's arguments (mount and
// check-config open the tree alike).
fs::ServeOptions ServeOptionsOf(const MountArgs& args);

// CompilePolicy compiles `policy` (nullopt: no policy, returns null) against `files`. Errors
// name `config_path`.
Result<std::shared_ptr<const policy::AccessPolicy>> CompilePolicy(
    const std::optional<config::PolicyConfig>& policy, const std::vector<fs::PolicyFile>& files,
    const std::string& config_path);

// BuildAccessControl returns the access control for `tree`, or null when the config has
// neither a policy nor an audit log (the mount then behaves as without a config).
Result<std::unique_ptr<fs::AccessControl>> BuildAccessControl(
    const fs::ServedTree& tree, const std::optional<config::PolicyConfig>& policy,
    const config::AuditConfig& audit, const std::string& mountpoint,
    const std::string& config_path);

// ReloadPolicy re-reads `config_path` and compiles its policy against `files` (SIGHUP).
Result<std::shared_ptr<const policy::AccessPolicy>> ReloadPolicy(
    const std::string& config_path, const std::vector<fs::PolicyFile>& files);

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_MOUNT_ACCESS_H_
