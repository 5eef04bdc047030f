// SPDX-License-Identifier: Apache-2.0
// ServedTree: everything the mount serves, without any FUSE dependency. At creation it scans
// the source directory (ModelTree) and opens every encrypted file: header, keys, signature,
// policy, data keys (EncryptedFile::Open). A file that fails, or that the scan refused
// (fs/source_file_class.h: damaged, or a CryptoTensors header where none may be), refuses the
// whole mount, unless allow_bad_files: then that file answers every open with its error.
// A locked shard whose lock key is missing (fs/encrypted_file.h ProbeLockedShard: signed marker,
// verified) does not refuse the mount: it is listed with its plain size and every open answers
// PermissionDenied "locked: <file>: lock key <kid> not available".
// Passthrough files are opened at each open, beneath the source root, only if they are still
// the file the snapshot saw (ModelTree::OpenFile).
//
// Revoke() is the in-daemon half of revocation: from then on every open and read is denied,
// and all key material and cached plaintext is wiped (as soon as in-flight reads finish).
//
// Suspend() / Resume() are the reversible half, for a lost key lease (README "Key leases"):
// while suspended, opens and reads of encrypted files are denied and their data keys and
// cached plaintext are wiped (the views are destroyed); plain passthrough files stay served
// (no key protects them). Resume() opens and verifies the encrypted files again, as at mount,
// with fresh keys.
//
// Lifetime rule: the tree's files (the encrypted views) are reached only under the tree's
// lock, by inode, through the ServedTree calls below; an OpenHandle holds no pointer to them,
// so nothing the FUSE layer keeps can outlive what Revoke() frees.
// Thread safety: thread-safe. Reads hold a shared lock; Revoke takes it exclusively.
#ifndef CTFS_FS_SERVED_TREE_H_
#define CTFS_FS_SERVED_TREE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/mutex.h"
#include "base/random_access_file.h"
#include "base/result.h"
#include "fs/access_control.h"
#include "fs/chunk_cache.h"
#include "fs/model_tree.h"
#include "fs/plain_file.h"
#include "fs/prefetcher.h"
#include "fs/stream_activity.h"
#include "fs/worker_pool.h"
#include "keys/key_resolver.h"

namespace ctfs::fs {

struct ServeOptions {
  size_t cache_bytes = 256u << 20;  // decrypted-chunk cache cap
  size_t decrypt_threads = 2;       // helpers for multi-chunk reads (plus the reading thread)
  // Decrypt this far ahead of sequential readers, shared by the files read at once
  // (StreamActivity); 0 = off.
  size_t prefetch_bytes = 64u << 20;
  // A new stream's window: it grows to twice what the stream has read, up to prefetch_bytes,
  // so that a reader of a file's first bytes only (a header probe) costs little decryption.
  size_t prefetch_first_bytes = 1u << 20;
  size_t prefetch_threads = 4;           // background threads for that (mostly waiting for disk)
  size_t prefetch_run_bytes = 4u << 20;  // chunks decrypted ahead are read in runs this long
  bool direct_io = true;         // decrypt ahead from O_DIRECT reads (needs prefetch and a cache)
  bool allow_bad_files = false;  // serve the rest if some files are refused or fail to open
  // Config `embedded_policy: operator`: files open whatever their embedded policy says
  // (policy/embedded_policy.h); each one it would refuse gets one line in `warnings`.
  bool embedded_policy_operator = false;
  // The I/O seam (fault injection in tests): if set, every backing file the tree reads (encrypted
  // files from mount time, passthrough files at each open) is read through what this returns
  // for it.
  std::function<std::unique_ptr<RandomAccessFile>(std::unique_ptr<RandomAccessFile>)> wrap_file;
};

// DirectReadsWarning returns the mount warning for decrypt-ahead reads under the kernel's
// transparent huge page mode `thp_mode` (base/huge_mapping.h ThpMode()): "" unless huge pages
// are off, which leaves the staging buffers on 4 KiB pages (several times slower on some VMs).
std::string DirectReadsWarning(std::string_view thp_mode);

// OpenHandle: what an open of a served file holds. It owns everything it refers to (an
// encrypted file's view is looked up by inode under the tree's lock at every read), so it stays
// safe to keep and to destroy after Revoke(). Only ServedTree reads through it.
class OpenHandle {
 public:
  OpenHandle(OpenHandle&&) = default;
  OpenHandle& operator=(OpenHandle&&) = default;
  uint64_t ino() const { return ino_; }
  // encrypted: its reads return decrypted plaintext (reply buffers holding it get wiped).
  bool encrypted() const { return passthrough_ == nullptr; }

 private:
  friend class ServedTree;
  OpenHandle() = default;
  uint64_t ino_ = 0;
  std::unique_ptr<PlainFile> passthrough_;  // passthrough files: one per open
  // What the access policy granted this open (null: no policy was asked). Once withdrawn,
  // reads fail with PermissionDenied.
  std::shared_ptr<const AccessGrant> grant_;
};

class ServedTree {
 public:
  // Create scans `source_dir` and opens all encrypted files. `warnings` receives lines about
  // skipped entries and, with allow_bad_files, files that will not be served.
  static Result<std::unique_ptr<ServedTree>> Create(const std::string& source_dir,
                                                    const keys::KeyResolver& keys,
                                                    const ServeOptions& options,
                                                    std::vector<std::string>* warnings);

  const ModelTree& tree() const { return tree_; }

  ~ServedTree();
  ServedTree(const ServedTree&) = delete;
  ServedTree& operator=(const ServedTree&) = delete;

  // StartWorkers starts the decryption helper and prefetch threads (call after any fork()).
  void StartWorkers();

  // Open checks that `ino` may be opened for reading. PermissionDenied after Revoke() and for a
  // locked shard without its key; the file's own error (e.g. DataLoss for a bad signature) for
  // a file that failed to open or was refused; for a passthrough file, DataLoss if it changed
  // since the mount (NotFound if it is gone).
  // `grant`: the access policy's grant for this open (fs/access_control.h), kept with the
  // handle: once it is withdrawn, reads through the handle are PermissionDenied.
  Result<OpenHandle> Open(uint64_t ino,
                          std::shared_ptr<const AccessGrant> grant = nullptr) const;

  // PolicyFiles: every served regular file as the access policy sees it (relative path and,
  // for safetensors files that can be read, the tensor names), by inode.
  std::vector<PolicyFile> PolicyFiles() const;

  // Read reads from an open handle into `out`; returns the byte count (short at EOF).
  // PermissionDenied after Revoke(). A read that continues a sequential pattern queues the
  // decryption of the chunks after it (ServeOptions::prefetch_bytes).
  Result<size_t> Read(const OpenHandle& handle, uint64_t off, MutableByteSpan out) const;

  // WithFile runs `fn` on the file `handle` reads, under the tree's lock (the reference must
  // not escape `fn`): for tests and diagnostics. PermissionDenied after Revoke().
  Status WithFile(const OpenHandle& handle, const std::function<void(const PlainFile&)>& fn) const;

  // CopyLead: where a copied Read at `off` should place its buffer (PlainFile::CopyLead); 0
  // after Revoke().
  size_t CopyLead(const OpenHandle& handle, uint64_t off) const;

  // ReadSpans is Read without the copy where PlainFile::ReadSpans can do it (true); false:
  // nothing was done, use Read.
  Result<bool> ReadSpans(const OpenHandle& handle, uint64_t off, size_t len, ChunkSpans& out) const;

  // Revoke denies all further opens and reads and wipes keys and cached plaintext.
  void Revoke();
  bool revoked() const { return revoked_.load(); }

  // Suspend denies opens and reads of encrypted files (PermissionDenied "key lease lost:
  // `reason`"), destroys their views (EncryptedFile wipes its data keys) and clears the chunk
  // cache, once in-flight reads finish. Idempotent. The caller invalidates the kernel's pages.
  void Suspend(const std::string& reason);
  // Resume re-opens every encrypted file that was served before Suspend, verifying it as at
  // mount, with `keys`; on success reads work again (also through handles opened before). On
  // any file's error the tree stays suspended (nothing is half served) and the error returns.
  Status Resume(const keys::KeyResolver& keys);
  bool suspended() const { return suspended_.load(); }

  const ChunkCache& cache() const { return *cache_; }
  uint64_t prefetched() const;
  // DecryptedBytes: plaintext bytes decrypted so far for file `ino` (0 for other files, and
  // after Revoke()).
  uint64_t DecryptedBytes(uint64_t ino) const;

 private:
  ServedTree() = default;
  void QueueReadAhead(const PlainFile& file, uint64_t off, uint64_t len) const
      CTFS_REQUIRES_SHARED(mu_);
  // UnreadableError: why FileLocked gave nullptr (revoked, the grant was withdrawn, or the key
  // lease was lost). Called with mu_ held shared (it reads suspend_reason_).
  Status UnreadableError(const OpenHandle& handle) const CTFS_REQUIRES_SHARED(mu_);
  // FileLocked: the file `handle` reads; nullptr after Revoke() or once its grant is withdrawn.
  const PlainFile* FileLocked(const OpenHandle& handle) const CTFS_REQUIRES_SHARED(mu_);
  // OpenView opens, verifies and sizes one encrypted file for serving (Resume; Create does
  // the same with its warnings). `direct_error`: why direct reads were not enabled, if tried.
  Result<std::unique_ptr<PlainFile>> OpenView(const TreeNode& node, const keys::KeyResolver& keys,
                                              WorkerPool* pool, Status* direct_error) const;
  // WrapFile applies options_.wrap_file.
  std::unique_ptr<RandomAccessFile> WrapFile(std::unique_ptr<RandomAccessFile> file) const;

  ModelTree tree_;
  ServeOptions options_;
  std::unique_ptr<ChunkCache> cache_;
  mutable SharedMutex mu_;
  std::unique_ptr<WorkerPool> pool_ CTFS_GUARDED_BY(mu_);
  // Its jobs take mu_ shared and check revoked_.
  std::unique_ptr<Prefetcher> prefetcher_ CTFS_GUARDED_BY(mu_);
  mutable StreamActivity streams_;  // files sharing options_.prefetch_bytes
  // Index = ino - 1: the open encrypted view, or the reason the file is not served.
  std::vector<std::unique_ptr<PlainFile>> encrypted_ CTFS_GUARDED_BY(mu_);
  std::vector<Status> open_errors_;                     // immutable after Create
  std::atomic<bool> revoked_{false};
  std::atomic<bool> suspended_{false};
  // While suspended: why (for messages), and which inodes had a view to re-open.
  std::string suspend_reason_ CTFS_GUARDED_BY(mu_);
  std::vector<uint64_t> suspended_inos_ CTFS_GUARDED_BY(mu_);
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_SERVED_TREE_H_
