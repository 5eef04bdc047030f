// SPDX-License-Identifier: Apache-2.0
#include "cmd/policy_objects.h"

#include "cmd/common.h"
#include "fs/encrypted_file.h"

namespace ctfs::cmd {

PolicyObjects ListPolicyObjects(const fs::ModelTree& tree) {
  PolicyObjects out;
  for (const fs::TreeNode& node : tree.nodes()) {
    if (node.kind == fs::TreeNode::Kind::kDirectory) continue;
    policy::FileObject obj;
    obj.rel_path = node.rel_path;
    const bool encrypted = node.kind == fs::TreeNode::Kind::kEncrypted;
    if (encrypted || IsSafetensorsName(node.name)) {
      if (Result<fs::HeaderAndFd> h = fs::ReadHeader(node.backing_path); h.ok()) {
        for (const format::TensorInfo& t : h->header.tensors) obj.tensor_names.push_back(t.name);
      }
    }
    out.encrypted += encrypted ? 1 : 0;
    out.objects.push_back(std::move(obj));
    out.inos.push_back(node.ino);
  }
  return out;
}

}  // namespace ctfs::cmd
