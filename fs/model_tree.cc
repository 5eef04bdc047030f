// SPDX-License-Identifier: Apache-2.0
#include "fs/model_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "base/random_access_file.h"
#include "fs/source_file_class.h"

namespace ctfs::fs {
namespace {

// How deep the source tree may nest (a bound on the walk's recursion).
constexpr int kMaxDepth = 64;

// Read-only view of the backing mode: keep read/execute bits, drop write and special bits.
uint32_t ReadOnlyMode(mode_t m) { return static_cast<uint32_t>(m & 0555); }

// NodeFromStat fills the fields every node takes from its backing entry.
TreeNode NodeFromStat(uint64_t ino, uint64_t parent_ino, const std::string& path,
                      const struct stat& st) {
  TreeNode n;
  n.ino = ino;
  n.parent_ino = parent_ino;
  n.backing_path = path;
  n.mode = ReadOnlyMode(st.st_mode);
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  n.mtime = st.st_mtim;
  n.size = static_cast<uint64_t>(st.st_size);
  return n;
}

// ListNames returns the entry names of directory `dir_fd`, sorted (the fd is not consumed).
Result<std::vector<std::string>> ListNames(int dir_fd, const std::string& path) {
  int dup_fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup_fd < 0) return ErrnoError(errno, "open directory " + path);
  DIR* d = ::fdopendir(dup_fd);
  if (d == nullptr) {
    const int err = errno;
    ::close(dup_fd);
    return ErrnoError(err, "open directory " + path);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoError(err, "list directory " + path);
  std::sort(names.begin(), names.end());
  return names;
}

struct Walker {
  std::vector<TreeNode>& nodes;
  std::vector<std::string>* skipped;

  // Visit adds the entries of directory node `dir_ino`, open as `dir_fd`.
  Status Visit(uint64_t dir_ino, int dir_fd, int depth) {
    if (depth > kMaxDepth) {
      return InvalidArgumentError(nodes[dir_ino - 1].backing_path + ": nested too deep");
    }
    const std::string dir_path = nodes[dir_ino - 1].backing_path;
    const std::string dir_rel = nodes[dir_ino - 1].rel_path;
    CTFS_ASSIGN_OR_RETURN(std::vector<std::string> names, ListNames(dir_fd, dir_path));
    for (const std::string& name : names) {
      const std::string path = dir_path + "/" + name;
      const std::string rel = dir_rel.empty() ? name : dir_rel + "/" + name;
      struct stat st;
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed while we looked
        return ErrnoError(errno, "stat " + path);
      }
      if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        if (skipped) skipped->push_back(rel + ": not a regular file or directory, not shown");
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        CTFS_RETURN_IF_ERROR(AddDirectory(dir_ino, dir_fd, name, path, rel, depth));
      } else {
        CTFS_RETURN_IF_ERROR(AddFile(dir_ino, dir_fd, name, path, rel));
      }
    }
    return Status::Ok();
  }

  Status AddDirectory(uint64_t parent, int parent_fd, const std::string& name,
                      const std::string& path, const std::string& rel, int depth) {
    int fd = ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      // Replaced by a symlink or a file since the fstatat: not a directory we may enter.
      if (errno == ELOOP || errno == ENOTDIR || errno == ENOENT) {
        if (skipped) skipped->push_back(rel + ": changed during the scan, not shown");
        return Status::Ok();
      }
      return ErrnoError(errno, "open directory " + path);
    }
    UniqueFd dir(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) return ErrnoError(errno, "stat " + path);
    TreeNode n = NodeFromStat(nodes.size() + 1, parent, path, st);
    n.kind = TreeNode::Kind::kDirectory;
    n.size = 0;
    n.name = name;
    n.rel_path = rel;
    const uint64_t ino = Append(parent, std::move(n));
    return Visit(ino, dir.get(), depth + 1);
  }

  Status AddFile(uint64_t parent, int parent_fd, const std::string& name, const std::string& path,
                 const std::string& rel) {
    auto opened = OpenRegularAt(parent_fd, name, path);
    if (!opened.ok()) {
      // Replaced by something else since the fstatat (or gone).
      if (skipped) skipped->push_back(rel + ": changed during the scan, not shown");
      return Status::Ok();
    }
    TreeNode n = NodeFromStat(nodes.size() + 1, parent, path, opened->st);
    n.name = name;
    n.rel_path = rel;
    n.identity = FileIdentity::Of(opened->st);
    const PosixFile file(std::move(opened->fd), path);
    const SourceFileClass c = ClassifySourceFile(file, n.identity.size, name);
    switch (c.kind) {
      case SourceFileClass::Kind::kPassthrough:
        n.kind = TreeNode::Kind::kPassthrough;
        break;
      case SourceFileClass::Kind::kEncrypted:
        n.kind = TreeNode::Kind::kEncrypted;
        break;
      case SourceFileClass::Kind::kRefused:
        n.kind = TreeNode::Kind::kRefused;
        n.refusal = c.refusal;
        break;
    }
    n.size = c.served_len;
    Append(parent, std::move(n));
    return Status::Ok();
  }

  uint64_t Append(uint64_t parent, TreeNode n) {
    const uint64_t ino = n.ino;
    nodes[parent - 1].children[n.name] = ino;
    nodes.push_back(std::move(n));
    return ino;
  }
};

}  // namespace

Result<ModelTree> ModelTree::Scan(const std::string& root, std::vector<std::string>* skipped) {
  char* real = ::realpath(root.c_str(), nullptr);
  if (real == nullptr) return ErrnoError(errno, "source directory " + root);
  std::string root_path = real;
  std::free(real);
  ModelTree tree;
  const int fd = ::open(root_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOTDIR) return InvalidArgumentError(root + ": not a directory");
    return ErrnoError(errno, "open directory " + root_path);
  }
  tree.root_fd_ = UniqueFd(fd);
  struct stat st;
  if (::fstat(tree.root_fd_.get(), &st) != 0) return ErrnoError(errno, "stat " + root_path);
  TreeNode r = NodeFromStat(kRootIno, kRootIno, root_path, st);
  r.size = 0;
  tree.nodes_.push_back(std::move(r));
  Walker w{tree.nodes_, skipped};
  CTFS_RETURN_IF_ERROR(w.Visit(kRootIno, tree.root_fd_.get(), 0));
  return tree;
}

const TreeNode* ModelTree::Find(uint64_t ino) const {
  if (ino == 0 || ino > nodes_.size()) return nullptr;
  return &nodes_[ino - 1];
}

const TreeNode* ModelTree::Lookup(uint64_t parent_ino, const std::string& name) const {
  const TreeNode* p = Find(parent_ino);
  if (p == nullptr || p->kind != TreeNode::Kind::kDirectory) return nullptr;
  auto it = p->children.find(name);
  return it == p->children.end() ? nullptr : Find(it->second);
}

size_t ModelTree::FileCount() const {
  return static_cast<size_t>(std::count_if(nodes_.begin(), nodes_.end(), [](const TreeNode& n) {
    return n.kind != TreeNode::Kind::kDirectory;
  }));
}

Result<UniqueFd> ModelTree::OpenFile(const TreeNode& node) const {
  return OpenSnapshotFile(root_fd_.get(), node.rel_path, node.identity, node.backing_path);
}

}  // namespace ctfs::fs
