// SPDX-License-Identifier: Apache-2.0
#include "fs/fuse/ops.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cerrno>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "base/secret_bytes.h"
#include "fs/chunk_buffer_pool.h"
#include "fs/fuse/errno_map.h"

namespace ctfs::fs {
namespace {

constexpr double kTimeoutSeconds = 86400.0;  // the tree is an immutable snapshot

ServedTree& Tree(fuse_req_t req) { return *static_cast<OpsContext*>(fuse_req_userdata(req))->tree; }

// Runs a handler body; anything thrown becomes EIO (a reply has not been sent yet when
// handlers throw: they reply last).
template <typename Fn>
void Guard(fuse_req_t req, const char* op, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    spdlog::error("{}: unexpected exception: {}", op, e.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    spdlog::error("{}: unexpected exception", op);
    fuse_reply_err(req, EIO);
  }
}

struct stat AttrOf(const TreeNode& n) {
  struct stat st = {};
  st.st_ino = n.ino;
  const bool dir = n.kind == TreeNode::Kind::kDirectory;
  st.st_mode = (dir ? S_IFDIR : S_IFREG) | n.mode;
  st.st_nlink = dir ? 2 : 1;
  st.st_uid = n.uid;
  st.st_gid = n.gid;
  st.st_size = static_cast<off_t>(n.size);
  st.st_blksize = 4096;
  st.st_blocks = static_cast<blkcnt_t>((n.size + 511) / 512);
  st.st_mtim = n.mtime;
  st.st_ctim = n.mtime;
  st.st_atim = n.mtime;
  return st;
}

AccessControl* Access(fuse_req_t req) {
  return static_cast<OpsContext*>(fuse_req_userdata(req))->access;
}

CallerId CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return {static_cast<uint32_t>(ctx->uid), static_cast<uint32_t>(ctx->gid),
          static_cast<int32_t>(ctx->pid)};
}

// VisibilityOf: when the policy hides files, whether the caller of `req` may see an inode.
std::function<bool(uint64_t)> VisibilityOf(fuse_req_t req) {
  AccessControl* access = Access(req);
  if (access == nullptr) return {};
  return access->VisibilityFor(CallerOf(req));
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, "lookup", [&] {
    const TreeNode* n = Tree(req).tree().Lookup(parent, name);
    if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
    std::function<bool(uint64_t)> visible = VisibilityOf(req);
    if (visible && !visible(n->ino)) return (void)fuse_reply_err(req, ENOENT);
    fuse_entry_param e = {};
    e.ino = n->ino;
    e.generation = 1;
    e.attr = AttrOf(*n);
    e.attr_timeout = kTimeoutSeconds;
    // Names that are hidden from some callers are looked up again at every path walk: a cached
    // entry would show them to everyone.
    e.entry_timeout = visible ? 0.0 : kTimeoutSeconds;
    fuse_reply_entry(req, &e);
  });
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Guard(req, "getattr", [&] {
    const TreeNode* n = Tree(req).tree().Find(ino);
    if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
    struct stat st = AttrOf(*n);
    fuse_reply_attr(req, &st, kTimeoutSeconds);
  });
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Guard(req, "readdir", [&] {
    const ModelTree& tree = Tree(req).tree();
    const TreeNode* dir = tree.Find(ino);
    if (dir == nullptr) return (void)fuse_reply_err(req, ENOENT);
    if (dir->kind != TreeNode::Kind::kDirectory) return (void)fuse_reply_err(req, ENOTDIR);
    if (off < 0) return (void)fuse_reply_err(req, EINVAL);
    std::vector<std::pair<std::string, const TreeNode*>> entries = {
        {".", dir}, {"..", tree.Find(dir->parent_ino)}};
    std::function<bool(uint64_t)> visible = VisibilityOf(req);
    for (const auto& [name, child] : dir->children) {
      if (!visible || visible(child)) entries.emplace_back(name, tree.Find(child));
    }
    std::vector<char> buf(size);
    size_t used = 0;
    for (size_t i = static_cast<size_t>(off); i < entries.size(); ++i) {
      struct stat st = {};
      st.st_ino = entries[i].second->ino;
      st.st_mode = entries[i].second->kind == TreeNode::Kind::kDirectory ? S_IFDIR : S_IFREG;
      size_t need = fuse_add_direntry(req, buf.data() + used, size - used, entries[i].first.c_str(),
                                      &st, static_cast<off_t>(i + 1));
      if (need > size - used) break;
      used += need;
    }
    fuse_reply_buf(req, buf.data(), used);
  });
}

MountStats* Stats(fuse_req_t req) {
  return static_cast<OpsContext*>(fuse_req_userdata(req))->stats;
}

void CountRead(fuse_req_t req, fuse_ino_t ino, const std::vector<ByteSpan>& spans) {
  MountStats* stats = Stats(req);
  if (stats == nullptr) return;
  uint64_t len = 0;
  for (ByteSpan s : spans) len += s.size();
  stats->CountRead(ino, len);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, "open", [&] {
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
      return (void)fuse_reply_err(req, EROFS);
    }
    auto* ops_ctx = static_cast<OpsContext*>(fuse_req_userdata(req));
    ServedTree& tree = *ops_ctx->tree;
    const TreeNode* n = tree.tree().Find(ino);
    const fuse_ctx* ctx = fuse_req_ctx(req);
    const CallerId caller = CallerOf(req);
    // The access policy decides first (root callers included); the file may still refuse.
    std::shared_ptr<const AccessGrant> grant;
    if (ops_ctx->access != nullptr && n != nullptr && n->kind != TreeNode::Kind::kDirectory) {
      auto decided = ops_ctx->access->CheckOpen(caller, ino);
      if (!decided.ok()) {
        spdlog::warn("open denied by policy: {}: {} (uid {} pid {})", n->rel_path,
                     decided.status().message(), ctx->uid, ctx->pid);
        if (ops_ctx->stats != nullptr) ops_ctx->stats->CountDenial(ino);
        return (void)fuse_reply_err(req, EACCES);
      }
      grant = std::move(*decided);
    }
    auto h = tree.Open(ino, std::move(grant));
    if (!h.ok()) {
      spdlog::warn("open denied: {}: {} (uid {} pid {})", n ? n->rel_path : "?",
                   h.status().message(), ctx->uid, ctx->pid);
      if (ops_ctx->access != nullptr) ops_ctx->access->AuditRefusal(caller, ino, h.status().message());
      if (ops_ctx->stats != nullptr) ops_ctx->stats->CountDenial(ino);
      return (void)fuse_reply_err(req, ErrnoFor(h.status()));
    }
    spdlog::info("open {} (uid {} pid {})", n->rel_path, ctx->uid, ctx->pid);
    if (ops_ctx->stats != nullptr) ops_ctx->stats->CountOpen(ino);
    fi->fh = reinterpret_cast<uint64_t>(new OpenHandle(std::move(*h)));
    fi->keep_cache = 1;  // immutable: keep cached pages across opens
    if (fuse_reply_open(req, fi) != 0) delete reinterpret_cast<OpenHandle*>(fi->fh);
  });
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Guard(req, "read", [&] {
    if (off < 0) return (void)fuse_reply_err(req, EINVAL);
    const auto* h = reinterpret_cast<const OpenHandle*>(fi->fh);
    auto fail = [&](const Status& st) {
      const TreeNode* node = Tree(req).tree().Find(ino);
      spdlog::error("read {} [{}, +{}): {}", node ? node->rel_path : "?", off, size, st.message());
      fuse_reply_err(req, ErrnoFor(st));
    };
    // Usual case: reply straight from the decrypted chunks, no copy in between.
    ChunkSpans spans;  // holds the chunks until the reply is written
    auto direct = Tree(req).ReadSpans(*h, static_cast<uint64_t>(off), size, spans);
    if (!direct.ok()) return fail(direct.status());
    if (*direct) {
      std::vector<iovec> iov;
      iov.reserve(spans.spans.size());
      for (ByteSpan s : spans.spans) iov.push_back({const_cast<uint8_t*>(s.data()), s.size()});
      if (iov.empty()) return (void)fuse_reply_buf(req, nullptr, 0);
      CountRead(req, ino, spans.spans);
      return (void)fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
    }
    // Replies that are copied (header bytes, passthrough files, tensors stored in plain) go
    // through a buffer placed for the kernel's copies (fs/copy_alignment.h): the pread into it
    // and the reply out of it. A std::vector's block lay wherever malloc put it (1,520-2,768
    // bytes past a page in one daemon; 16 when glibc maps a block of its own), where a slow
    // distance would have stuck for the thread's life.
    thread_local ReusedBuffer copy_buffer;
    Result<MutableByteSpan> buf =
        copy_buffer.Span(size, Tree(req).CopyLead(*h, static_cast<uint64_t>(off)));
    if (!buf.ok()) return fail(buf.status());
    // Decrypted plaintext lives on only in the page cache. A passthrough file's bytes are
    // stored in plain on disk: wiping them was ~7 % of a plain mount's daemon CPU. (Decided
    // before the reply: once it is sent, a RELEASE on another thread may free `h`.)
    const bool wipe = h->encrypted();
    auto n = Tree(req).Read(*h, static_cast<uint64_t>(off), *buf);
    if (!n.ok()) return fail(n.status());
    if (MountStats* stats = Stats(req)) stats->CountRead(ino, *n);
    fuse_reply_buf(req, reinterpret_cast<const char*>(buf->data()), *n);
    if (wipe) WipeMemory(buf->data(), *n);
  });
}

void Release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<OpenHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void StatFs(fuse_req_t req, fuse_ino_t) {
  struct statvfs s = {};
  s.f_bsize = 4096;
  s.f_frsize = 4096;
  s.f_namemax = 255;
  s.f_flag = ST_RDONLY;
  fuse_reply_statfs(req, &s);
}

// Every mutating operation: read-only file system.
void RoSetAttr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
  fuse_reply_err(req, EROFS);
}
void RoMknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { fuse_reply_err(req, EROFS); }
void RoMkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { fuse_reply_err(req, EROFS); }
void RoUnlink(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void RoSymlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void RoRename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned int) {
  fuse_reply_err(req, EROFS);
}
void RoLink(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void RoCreate(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
  fuse_reply_err(req, EROFS);
}
void RoWrite(fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) {
  fuse_reply_err(req, EROFS);
}
void RoSetXattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
  fuse_reply_err(req, EROFS);
}
void RoRemoveXattr(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void RoFallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
  fuse_reply_err(req, EROFS);
}

void Init(void*, fuse_conn_info* conn) {
  // More concurrent background (readahead) requests: FUSE's default of 12 throttles
  // parallel readers (fuse-notes.md §4.2).
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

}  // namespace

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops = {};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.getattr = GetAttr;
  ops.readdir = ReadDir;
  ops.open = Open;
  ops.read = Read;
  ops.release = Release;
  ops.statfs = StatFs;
  ops.setattr = RoSetAttr;
  ops.mknod = RoMknod;
  ops.mkdir = RoMkdir;
  ops.unlink = RoUnlink;
  ops.rmdir = RoUnlink;
  ops.symlink = RoSymlink;
  ops.rename = RoRename;
  ops.link = RoLink;
  ops.create = RoCreate;
  ops.write = RoWrite;
  ops.setxattr = RoSetXattr;
  ops.removexattr = RoRemoveXattr;
  ops.fallocate = RoFallocate;
  return ops;
}

}  // namespace ctfs::fs
