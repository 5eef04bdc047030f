// SPDX-License-Identifier: Apache-2.0
// ModelTree: a snapshot, taken at mount time, of the source directory the daemon serves.
// Each directory and regular file gets a stable inode number (1 = root). Files named
// *.safetensors whose header carries __encryption__ are "encrypted": they are shown with the
// size of their plain view (computed from the header alone, no key needed). Everything else is
// passed through. Symlinks and special files are skipped (and reported).
// Thread safety: immutable after Scan(); all accessors are thread-safe.
#ifndef CTFS_FS_MODEL_TREE_H_
#define CTFS_FS_MODEL_TREE_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"

namespace ctfs::fs {

inline constexpr uint64_t kRootIno = 1;

struct TreeNode {
  enum class Kind { kDirectory, kPassthrough, kEncrypted };
  uint64_t ino = 0;
  uint64_t parent_ino = 0;
  Kind kind = Kind::kDirectory;
  std::string name;          // entry name ("" for the root)
  std::string backing_path;  // absolute path in the source directory
  std::string rel_path;      // path relative to the source root, for messages
  uint64_t size = 0;         // plain size shown to readers
  uint32_t mode = 0;         // permission bits shown (read-only: no write bits)
  uint32_t uid = 0;          // owner of the backing entry
  uint32_t gid = 0;
  struct timespec mtime = {};
  std::map<std::string, uint64_t> children;  // directories: name -> ino
};

class ModelTree {
 public:
  // Scan walks `root` (no symlink following). Headers of *.safetensors files are parsed to
  // classify them; an encrypted file whose header is malformed is an error naming it.
  // `skipped` receives one human-readable line per skipped entry (symlinks, special files).
  static Result<ModelTree> Scan(const std::string& root, std::vector<std::string>* skipped);

  // Find returns the node of `ino`, or nullptr.
  const TreeNode* Find(uint64_t ino) const;
  // Lookup returns the child `name` of directory `parent_ino`, or nullptr.
  const TreeNode* Lookup(uint64_t parent_ino, const std::string& name) const;
  const std::vector<TreeNode>& nodes() const { return nodes_; }  // index = ino - 1

 private:
  std::vector<TreeNode> nodes_;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_MODEL_TREE_H_
