// SPDX-License-Identifier: Apache-2.0
// `ctfs mount --config FILE`: the file (config/mount_config.h) gives the settings, and every
// option given on the command line overrides its key (README "Configuration file"). A key
// list given with --key replaces the file's `keys:`; SRC and MNT replace source/mountpoint.
#ifndef CTFS_CMD_MOUNT_CONFIG_MERGE_H_
#define CTFS_CMD_MOUNT_CONFIG_MERGE_H_

#include "base/status.h"
#include "cmd/subcommands.h"
#include "config/mount_config.h"

namespace ctfs::cmd {

// MergeMountConfig copies every setting `config` has into `args`, except those whose option
// is in args.given, and takes the policy, audit and embedded_policy settings (no flags) as
// they are. Sets args.config_path to the file's absolute path.
// KeySpecOf turns a config `keys:` entry into a key provider spec.
keys::KeySourceSpec KeySpecOf(const config::KeySourceConfig& k);

void MergeMountConfig(const config::MountConfig& config, MountArgs& args);

// ApplyMountConfig loads args.config_path and merges it (errors: "FILE:LINE:COLUMN: ...",
// InvalidArgument). Without --config it does nothing.
Status ApplyMountConfig(MountArgs& args);

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_MOUNT_CONFIG_MERGE_H_
