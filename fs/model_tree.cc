// SPDX-License-Identifier: Apache-2.0
#include "fs/model_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "base/file_io.h"
#include "base/unique_fd.h"
#include "format/crypt_metadata.h"
#include "format/plain_view.h"
#include "fs/encrypted_file.h"

namespace ctfs::fs {
namespace {

bool IsSafetensorsName(const std::string& name) {
  const std::string ext = ".safetensors";
  return name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
}

// LooksEncrypted: the file's header JSON (rules S1-S14, without the file-length check) parses
// and carries __encryption__.
bool LooksEncrypted(const std::string& path) {
  auto fd = OpenReadOnly(path);
  if (!fd.ok()) return false;
  auto file_len = FileSize(fd->get(), path);
  if (!file_len.ok() || *file_len < 8) return false;
  uint8_t len_bytes[8];
  if (!PreadExact(fd->get(), MutableByteSpan(len_bytes, 8), 0, path).ok()) return false;
  auto n = format::ParseHeaderLength(ByteSpan(len_bytes, 8), *file_len);
  if (!n.ok()) return false;
  Bytes json(*n);
  if (!PreadExact(fd->get(), json, 8, path).ok()) return false;
  auto header = format::ParseHeaderJson(json);
  return header.ok() && format::IsEncrypted(*header);
}

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

struct Walker {
  std::vector<TreeNode>& nodes;
  std::vector<std::string>* skipped;

  Status Visit(uint64_t dir_ino, int depth) {
    if (depth > 64) return InvalidArgumentError(nodes[dir_ino - 1].rel_path + ": nested too deep");
    const std::string dir_path = nodes[dir_ino - 1].backing_path;
    DIR* d = ::opendir(dir_path.c_str());
    if (d == nullptr) return ErrnoError(errno, "open directory " + dir_path);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      const std::string path = dir_path + "/" + name;
      const std::string rel =
          nodes[dir_ino - 1].rel_path.empty() ? name : nodes[dir_ino - 1].rel_path + "/" + name;
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0) return ErrnoError(errno, "stat " + path);
      if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        if (skipped) skipped->push_back(rel + ": not a regular file or directory, not shown");
        continue;
      }
      TreeNode n = NodeFromStat(nodes.size() + 1, dir_ino, path, st);
      n.name = name;
      n.rel_path = rel;
      if (S_ISDIR(st.st_mode)) {
        n.kind = TreeNode::Kind::kDirectory;
      } else {
        n.kind = TreeNode::Kind::kPassthrough;
        if (IsSafetensorsName(name)) {
          auto hf = ReadHeader(path);
          if (hf.ok() && format::IsEncrypted(hf->header)) {
            auto prefix = format::BuildPlainPrefix(hf->header);
            if (!prefix.ok()) return prefix.status().WithContext(path);
            n.kind = TreeNode::Kind::kEncrypted;
            n.size = prefix->size() + hf->header.data_len;
          } else if (!hf.ok() && hf.status().code() != StatusCode::kInvalidArgument) {
            return hf.status();
          } else if (!hf.ok() && LooksEncrypted(path)) {
            // A damaged CryptoTensors file (e.g. truncated): never pass its ciphertext through.
            // Opening it reports the damage (the mount is refused, or it answers EIO).
            n.kind = TreeNode::Kind::kEncrypted;
          }
          // Any other file that is not valid safetensors is passed through as it is.
        }
      }
      nodes.push_back(std::move(n));
      nodes[dir_ino - 1].children[name] = nodes.back().ino;
      if (nodes.back().kind == TreeNode::Kind::kDirectory) {
        CTFS_RETURN_IF_ERROR(Visit(nodes.back().ino, depth + 1));
      }
    }
    return Status::Ok();
  }
};

}  // namespace

Result<ModelTree> ModelTree::Scan(const std::string& root, std::vector<std::string>* skipped) {
  char* real = ::realpath(root.c_str(), nullptr);
  if (real == nullptr) return ErrnoError(errno, "source directory " + root);
  std::string root_path = real;
  std::free(real);
  struct stat st;
  if (::stat(root_path.c_str(), &st) != 0) return ErrnoError(errno, "stat " + root_path);
  if (!S_ISDIR(st.st_mode)) return InvalidArgumentError(root + ": not a directory");
  ModelTree tree;
  TreeNode r = NodeFromStat(kRootIno, kRootIno, root_path, st);
  r.size = 0;
  tree.nodes_.push_back(std::move(r));
  Walker w{tree.nodes_, skipped};
  CTFS_RETURN_IF_ERROR(w.Visit(kRootIno, 0));
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

}  // namespace ctfs::fs
