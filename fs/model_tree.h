// SPDX-License-Identifier: Apache-2.0
// ModelTree: a snapshot, taken at mount time, of the source directory the daemon serves.
// Each directory and regular file gets a stable inode number (1 = root). Regular files are
// classified by ClassifySourceFile (fs/source_file_class.h): encrypted (shown with the size of
// their plain view, computed from the header alone, no key needed), passed through, or refused
// (damaged: never served). Symlinks and special files are skipped (and reported).
//
// The walk never follows a symlink and never opens anything but directories and regular files
// (entries are opened O_PATH and checked first), and the tree keeps the source root open:
// later opens resolve a node's path beneath it with OpenSnapshotFile (base/safe_open.h),
// which checks that the entry is still the file the snapshot saw.
// Thread safety: immutable after Scan(); all accessors are thread-safe.
#ifndef CTFS_FS_MODEL_TREE_H_
#define CTFS_FS_MODEL_TREE_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/safe_open.h"
#include "base/unique_fd.h"

namespace ctfs::fs {

inline constexpr uint64_t kRootIno = 1;

struct TreeNode {
  enum class Kind { kDirectory, kPassthrough, kEncrypted, kRefused };
  uint64_t ino = 0;
  uint64_t parent_ino = 0;
  Kind kind = Kind::kDirectory;
  std::string name;          // entry name ("" for the root)
  std::string backing_path;  // absolute path in the source directory, for messages
  std::string rel_path;      // path relative to the source root ("" for the root)
  uint64_t size = 0;         // plain size shown to readers
  uint32_t mode = 0;         // permission bits shown (read-only: no write bits)
  uint32_t uid = 0;          // owner of the backing entry
  uint32_t gid = 0;
  struct timespec mtime = {};
  FileIdentity identity;  // regular files: the backing file the snapshot saw
  Status refusal;         // kRefused: why it is not served (names the file and the rule)
  std::map<std::string, uint64_t> children;  // directories: name -> ino
};

class ModelTree {
 public:
  // Scan walks `root` (no symlink following). `skipped` receives one human-readable line per
  // skipped entry (symlinks, special files). Refused files are nodes (kRefused), not errors:
  // the caller decides (ServedTree refuses the mount unless allow_bad_files).
  static Result<ModelTree> Scan(const std::string& root, std::vector<std::string>* skipped);

  // Find returns the node of `ino`, or nullptr.
  const TreeNode* Find(uint64_t ino) const;
  // Lookup returns the child `name` of directory `parent_ino`, or nullptr.
  const TreeNode* Lookup(uint64_t parent_ino, const std::string& name) const;
  const std::vector<TreeNode>& nodes() const { return nodes_; }  // index = ino - 1
  // FileCount: regular-file nodes (served, passed through or refused).
  size_t FileCount() const;

  // OpenFile opens the backing file of regular-file node `node` for reading if it is still the
  // file the snapshot saw (OpenSnapshotFile): DataLoss naming it if it changed, NotFound if it
  // is gone. Never follows a symlink, never blocks on a FIFO.
  Result<UniqueFd> OpenFile(const TreeNode& node) const;

 private:
  UniqueFd root_fd_;
  std::vector<TreeNode> nodes_;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_MODEL_TREE_H_
