// SPDX-License-Identifier: Apache-2.0
// PolicyObjects: the files of a mount as the access policy sees them (policy::FileObject), for
// AccessPolicy::Compile: every regular file of the snapshot (served, passed through or
// refused), its path relative to the mount root, and the tensor names of its safetensors
// header (encrypted files, and passed-through *.safetensors files).
#ifndef CTFS_CMD_POLICY_OBJECTS_H_
#define CTFS_CMD_POLICY_OBJECTS_H_

#include <cstdint>
#include <vector>

#include "fs/model_tree.h"
#include "policy/access_policy.h"

namespace ctfs::cmd {

struct PolicyObjects {
  std::vector<policy::FileObject> objects;
  std::vector<uint64_t> inos;  // inos[i]: the node of objects[i]
  size_t encrypted = 0;        // how many of them are encrypted
};

// ListPolicyObjects reads the header of each safetensors file again (a file whose header
// cannot be read has no tensor names: the mount refuses or fails it anyway).
PolicyObjects ListPolicyObjects(const fs::ModelTree& tree);

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_POLICY_OBJECTS_H_
