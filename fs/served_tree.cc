// SPDX-License-Identifier: Apache-2.0
#include "fs/served_tree.h"

#include <optional>

#include "base/huge_mapping.h"

namespace ctfs::fs {
namespace {

Status RevokedError() { return PermissionDeniedError("access revoked (the mount is going away)"); }
Status WithdrawnError() { return PermissionDeniedError("access withdrawn by the policy"); }
Status LeaseLostError(const std::string& reason) {
  return PermissionDeniedError("key lease lost: " + reason);
}

constexpr size_t kMaxQueuedPrefetches = 64;

}  // namespace

std::string DirectReadsWarning(std::string_view thp_mode) {
  if (thp_mode != "never") return "";
  return std::string("transparent huge pages are off (") + kThpEnabledPath +
         ": never): decrypt-ahead reads ciphertext into 4 KiB pages, which can be several "
         "times slower than into huge pages (bench/direct_read.py)";
}

namespace {

// RefusalSummary: the mount's error when files are refused: the first one's, plus how many
// more there are and their names.
Status RefusalSummary(const std::vector<std::pair<std::string, Status>>& refused) {
  const Status& first = refused.front().second;
  std::string more;
  if (refused.size() > 1) {
    more = "; " + std::to_string(refused.size() - 1) + " more file(s) refused:";
    constexpr size_t kNamed = 5;
    for (size_t i = 1; i < refused.size() && i <= kNamed; ++i) more += " " + refused[i].first;
    if (refused.size() - 1 > kNamed) more += " ...";
  }
  return Status(first.code(), first.message() + more +
                                  " (--allow-bad-files mounts the rest and answers EIO for "
                                  "these files)");
}

}  // namespace

Result<std::unique_ptr<ServedTree>> ServedTree::Create(const std::string& source_dir,
                                                       const keys::KeyResolver& keys,
                                                       const ServeOptions& options,
                                                       std::vector<std::string>* warnings) {
  std::unique_ptr<ServedTree> t(new ServedTree());
  t->options_ = options;
  CTFS_ASSIGN_OR_RETURN(t->tree_, ModelTree::Scan(source_dir, warnings));
  t->cache_ = std::make_unique<ChunkCache>(options.cache_bytes);
  const size_t n = t->tree_.nodes().size();
  WriterLock lock(t->mu_);  // not shared yet; held so the analysis sees encrypted_ guarded
  t->encrypted_.resize(n);
  t->open_errors_.resize(n);
  size_t no_direct_io = 0;
  size_t direct_io = 0;
  std::string no_direct_reason;
  std::vector<std::pair<std::string, Status>> refused;  // (rel_path, why)
  auto refuse = [&](const TreeNode& node, Status why) {
    t->open_errors_[node.ino - 1] = why;
    refused.emplace_back(node.rel_path, std::move(why));
  };
  for (const TreeNode& node : t->tree_.nodes()) {
    if (node.kind == TreeNode::Kind::kRefused) {
      refuse(node, node.refusal);
      continue;
    }
    if (node.kind != TreeNode::Kind::kEncrypted) continue;
    auto fd = t->tree_.OpenFile(node);
    if (!fd.ok()) {
      refuse(node, fd.status());
      continue;
    }
    auto f = EncryptedFile::Open(
        t->WrapFile(std::make_unique<PosixFile>(std::move(*fd), node.backing_path)), keys,
        {.embedded_policy_operator = options.embedded_policy_operator});
    if (!f.ok()) {
      // A locked shard without its lock key is a known state, not damage: listed, and every
      // open answers EACCES. Only a missing key can mean that; the probe re-reads the header
      // and trusts the marker only under a verified signature.
      std::optional<LockedShard> locked;
      if (f.status().code() == StatusCode::kNotFound) {
        if (auto again = t->tree_.OpenFile(node); again.ok()) {
          locked = ProbeLockedShard(
              *t->WrapFile(std::make_unique<PosixFile>(std::move(*again), node.backing_path)),
              keys);
        }
      }
      if (!locked) {
        refuse(node, f.status());
        continue;
      }
      t->open_errors_[node.ino - 1] = LockedError(node.rel_path, *locked);
      if (warnings != nullptr) {
        warnings->push_back(t->open_errors_[node.ino - 1].message() +
                            " (listed; every open is denied)");
      }
      continue;
    }
    if ((*f)->plain_file_len() != node.size) {
      refuse(node, DataLossError(node.backing_path + ": changed during the scan"));
      continue;
    }
    if (!(*f)->embedded_policy_override().empty() && warnings != nullptr) {
      warnings->push_back(node.backing_path + ": " + (*f)->embedded_policy_override());
    }
    // Direct reads serve decrypt-ahead runs only: without decrypt-ahead they would just take
    // kernel readahead away from the reader's own reads.
    if (options.direct_io && options.prefetch_bytes > 0 && options.prefetch_threads > 0 &&
        options.cache_bytes > 0) {
      Status st = (*f)->EnableDirectReads();
      if (st.ok()) ++direct_io;
      if (!st.ok() && no_direct_io++ == 0) no_direct_reason = st.message();
    }
    t->encrypted_[node.ino - 1] =
        PlainFile::FromEncrypted(std::move(*f), node.ino, t->cache_.get(), nullptr);
  }
  if (!refused.empty()) {
    if (!options.allow_bad_files) return RefusalSummary(refused);
    if (warnings != nullptr) {
      for (const auto& [rel, why] : refused) warnings->push_back("not serving " + why.message());
    }
  }
  if (no_direct_io > 0 && warnings != nullptr) {
    warnings->push_back(std::to_string(no_direct_io) +
                        " encrypted file(s) are read through the page cache (" + no_direct_reason +
                        ")");
  }
  if (direct_io > 0 && warnings != nullptr) {
    if (std::string w = DirectReadsWarning(ThpMode()); !w.empty()) warnings->push_back(w);
  }
  return t;
}

std::unique_ptr<RandomAccessFile> ServedTree::WrapFile(std::unique_ptr<RandomAccessFile> file) const {
  return options_.wrap_file ? options_.wrap_file(std::move(file)) : std::move(file);
}

ServedTree::~ServedTree() {
  prefetcher_.reset();  // its jobs use the files below
  pool_.reset();
}

void ServedTree::StartWorkers() {
  WriterLock lock(mu_);
  pool_ = std::make_unique<WorkerPool>(options_.decrypt_threads);
  if (options_.prefetch_bytes > 0 && options_.prefetch_threads > 0) {
    prefetcher_ = std::make_unique<Prefetcher>(options_.prefetch_threads, kMaxQueuedPrefetches);
  }
  for (const TreeNode& node : tree_.nodes()) {
    auto& slot = encrypted_[node.ino - 1];
    if (slot == nullptr) continue;
    // Rebuild the view around the same EncryptedFile with the pool attached.
    slot = PlainFile::FromEncrypted(slot->ReleaseEncrypted(), node.ino, cache_.get(), pool_.get());
  }
}

Result<OpenHandle> ServedTree::Open(uint64_t ino, std::shared_ptr<const AccessGrant> grant) const {
  if (revoked_.load()) return RevokedError();
  const TreeNode* node = tree_.Find(ino);
  if (node == nullptr) return NotFoundError("no such inode");
  if (node->kind == TreeNode::Kind::kDirectory) return InvalidArgumentError("is a directory");
  const Status& err = open_errors_[ino - 1];
  if (!err.ok()) {
    // A file that could not be verified is never served: EIO (a missing key must not look
    // like a missing file), or EACCES if its policy denies access.
    if (err.code() == StatusCode::kPermissionDenied) return err;
    return DataLossError(err.message());
  }
  OpenHandle h;
  h.ino_ = ino;
  h.grant_ = std::move(grant);
  if (node->kind == TreeNode::Kind::kPassthrough) {
    CTFS_ASSIGN_OR_RETURN(UniqueFd fd, tree_.OpenFile(*node));
    h.passthrough_ = PlainFile::OpenPassthrough(
        WrapFile(std::make_unique<PosixFile>(std::move(fd), node->backing_path)), node->size);
    return h;
  }
  ReaderLock lock(mu_);
  if (revoked_.load()) return RevokedError();
  if (suspended_.load()) return LeaseLostError(suspend_reason_);
  if (encrypted_[ino - 1] == nullptr) return InternalError(node->rel_path + ": not opened");
  return h;
}

Status ServedTree::UnreadableError(const OpenHandle& handle) const {
  if (!revoked_.load() && handle.grant_ != nullptr && handle.grant_->withdrawn()) {
    return WithdrawnError();
  }
  if (!revoked_.load() && suspended_.load()) return LeaseLostError(suspend_reason_);
  return RevokedError();
}

std::vector<PolicyFile> ServedTree::PolicyFiles() const {
  std::vector<PolicyFile> files;
  ReaderLock lock(mu_);
  for (const TreeNode& node : tree_.nodes()) {
    if (node.kind == TreeNode::Kind::kDirectory) continue;
    PolicyFile f;
    f.ino = node.ino;
    f.object.rel_path = node.rel_path;
    const PlainFile* view = node.ino <= encrypted_.size() ? encrypted_[node.ino - 1].get() : nullptr;
    if (view != nullptr && view->encrypted_file() != nullptr) {
      for (const format::TensorInfo& t : view->encrypted_file()->header().tensors) {
        f.object.tensor_names.push_back(t.name);
      }
    } else if (node.kind == TreeNode::Kind::kPassthrough &&
               node.name.ends_with(".safetensors")) {
      // A plain safetensors file (the scan validated its header): its tensor names.
      if (auto fd = tree_.OpenFile(node); fd.ok()) {
        PosixFile file(std::move(*fd), node.backing_path);
        if (auto h = ReadHeaderFrom(file); h.ok()) {
          for (const format::TensorInfo& t : h->header.tensors) {
            f.object.tensor_names.push_back(t.name);
          }
        }
      }
    }
    files.push_back(std::move(f));
  }
  return files;
}

const PlainFile* ServedTree::FileLocked(const OpenHandle& handle) const {
  if (revoked_.load()) return nullptr;
  if (handle.grant_ != nullptr && handle.grant_->withdrawn()) return nullptr;
  if (handle.passthrough_ != nullptr) return handle.passthrough_.get();
  if (handle.ino_ == 0 || handle.ino_ > encrypted_.size()) return nullptr;
  return encrypted_[handle.ino_ - 1].get();
}

Status ServedTree::WithFile(const OpenHandle& handle,
                            const std::function<void(const PlainFile&)>& fn) const {
  ReaderLock lock(mu_);
  const PlainFile* f = FileLocked(handle);
  if (f == nullptr) return UnreadableError(handle);
  fn(*f);
  return Status::Ok();
}

Result<size_t> ServedTree::Read(const OpenHandle& handle, uint64_t off, MutableByteSpan out) const {
  ReaderLock lock(mu_);
  const PlainFile* f = FileLocked(handle);
  if (f == nullptr) return UnreadableError(handle);
  Result<size_t> n = f->Read(off, out);
  if (n.ok() && prefetcher_ && f->encrypted()) QueueReadAhead(*f, off, *n);
  return n;
}

size_t ServedTree::CopyLead(const OpenHandle& handle, uint64_t off) const {
  ReaderLock lock(mu_);
  const PlainFile* f = FileLocked(handle);
  return f == nullptr ? 0 : f->CopyLead(off);
}

Result<bool> ServedTree::ReadSpans(const OpenHandle& handle, uint64_t off, size_t len,
                                   ChunkSpans& out) const {
  ReaderLock lock(mu_);
  const PlainFile* f = FileLocked(handle);
  if (f == nullptr) return UnreadableError(handle);
  CTFS_ASSIGN_OR_RETURN(bool done, f->ReadSpans(off, len, out));
  if (done && prefetcher_) {
    uint64_t n = 0;
    for (ByteSpan s : out.spans) n += s.size();
    QueueReadAhead(*f, off, n);
  }
  return done;
}

void ServedTree::QueueReadAhead(const PlainFile& file, uint64_t off, uint64_t len) const {
  std::optional<ChunkCache::Key> last_head;
  // Files read at once share the budget (PlainFile::AheadWindow), down to one run each.
  const PlainFile::AheadWindow window{.first_len = options_.prefetch_first_bytes,
                                      .max_len = options_.prefetch_bytes,
                                      .shared_by = &streams_,
                                      .min_share = options_.prefetch_run_bytes};
  for (const ChunkCache::Key& key : file.PlanReadAhead(off, len, window)) {
    const ChunkCache::Key head = file.RunHead(key, options_.prefetch_run_bytes);
    if (head == last_head) continue;  // keys come in file order: a run's chunks are adjacent
    last_head = head;
    // The job looks the file up again under the lock: after Revoke() it is gone.
    prefetcher_->Submit(head, [this, head]() CTFS_NO_THREAD_SAFETY_ANALYSIS {
      // (clang cannot see that this job's lock is this tree's mu_)
      ReaderLock lock(mu_);
      if (revoked_.load()) return;
      const PlainFile* f = encrypted_[head.file_id - 1].get();
      if (f != nullptr) f->PrefetchRun(head, options_.prefetch_run_bytes);
    });
  }
}

uint64_t ServedTree::prefetched() const {
  ReaderLock lock(mu_);
  return prefetcher_ ? prefetcher_->completed() : 0;
}

uint64_t ServedTree::DecryptedBytes(uint64_t ino) const {
  ReaderLock lock(mu_);
  if (ino == 0 || ino > encrypted_.size() || encrypted_[ino - 1] == nullptr) return 0;
  const EncryptedFile* f = encrypted_[ino - 1]->encrypted_file();
  return f != nullptr ? f->decrypted_bytes() : 0;
}

Result<std::unique_ptr<PlainFile>> ServedTree::OpenView(const TreeNode& node,
                                                        const keys::KeyResolver& keys,
                                                        WorkerPool* pool,
                                                        Status* direct_error) const {
  CTFS_ASSIGN_OR_RETURN(UniqueFd fd, tree_.OpenFile(node));
  CTFS_ASSIGN_OR_RETURN(
      std::unique_ptr<EncryptedFile> f,
      EncryptedFile::Open(WrapFile(std::make_unique<PosixFile>(std::move(fd), node.backing_path)),
                          keys, {.embedded_policy_operator = options_.embedded_policy_operator}));
  if (f->plain_file_len() != node.size) {
    return DataLossError(node.backing_path + ": changed since the mount");
  }
  if (options_.direct_io && options_.prefetch_bytes > 0 && options_.prefetch_threads > 0 &&
      options_.cache_bytes > 0) {
    Status st = f->EnableDirectReads();
    if (direct_error != nullptr) *direct_error = st;
  }
  return PlainFile::FromEncrypted(std::move(f), node.ino, cache_.get(), pool);
}

void ServedTree::Suspend(const std::string& reason) {
  suspended_.store(true);
  {
    ReaderLock lock(mu_);  // as in Revoke: running jobs hold it shared too
    if (prefetcher_) prefetcher_->Cancel();
  }
  WriterLock lock(mu_);  // waits for in-flight reads
  suspend_reason_ = reason;
  for (size_t i = 0; i < encrypted_.size(); ++i) {
    if (encrypted_[i] == nullptr) continue;
    suspended_inos_.push_back(i + 1);
    encrypted_[i].reset();  // EncryptedFile wipes its data keys
  }
  cache_->Clear();
}

Status ServedTree::Resume(const keys::KeyResolver& keys) {
  std::vector<uint64_t> inos;
  WorkerPool* pool = nullptr;
  {
    ReaderLock lock(mu_);
    if (revoked_.load()) return RevokedError();
    if (!suspended_.load()) return Status::Ok();
    inos = suspended_inos_;
    pool = pool_.get();
  }
  // Open and verify outside the lock (reads of plain files go on); install all or nothing.
  std::vector<std::unique_ptr<PlainFile>> views;
  for (uint64_t ino : inos) {
    const TreeNode* node = tree_.Find(ino);
    if (node == nullptr) return InternalError("no inode " + std::to_string(ino));
    auto view = OpenView(*node, keys, pool, nullptr);
    if (!view.ok()) return view.status().WithContext(node->rel_path);
    views.push_back(std::move(*view));
  }
  WriterLock lock(mu_);
  if (revoked_.load()) return RevokedError();  // the views die here, wiping their keys
  for (size_t i = 0; i < inos.size(); ++i) encrypted_[inos[i] - 1] = std::move(views[i]);
  suspended_inos_.clear();
  suspend_reason_.clear();
  suspended_.store(false);
  return Status::Ok();
}

void ServedTree::Revoke() {
  revoked_.store(true);
  {
    ReaderLock lock(mu_);  // running jobs hold it shared too: dropping the queue waits for none
    if (prefetcher_) prefetcher_->Cancel();
  }
  WriterLock lock(mu_);  // waits for in-flight reads
  for (auto& f : encrypted_) f.reset();           // EncryptedFile wipes its data keys
  cache_->Clear();
}

}  // namespace ctfs::fs
