// SPDX-License-Identifier: Apache-2.0
#include "fs/plain_file.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "base/file_io.h"
#include "base/secret_bytes.h"

namespace ctfs::fs {

std::unique_ptr<PlainFile> PlainFile::FromEncrypted(std::unique_ptr<EncryptedFile> file,
                                                    uint64_t file_id, ChunkCache* cache,
                                                    WorkerPool* pool) {
  std::unique_ptr<PlainFile> f(new PlainFile());
  f->path_ = file->path();
  f->size_ = file->plain_file_len();
  f->encrypted_ = std::move(file);
  f->file_id_ = file_id;
  f->cache_ = cache;
  f->pool_ = pool;
  return f;
}

Result<std::unique_ptr<PlainFile>> PlainFile::OpenPassthrough(const std::string& path) {
  std::unique_ptr<PlainFile> f(new PlainFile());
  f->path_ = path;
  CTFS_ASSIGN_OR_RETURN(f->fd_, OpenReadOnly(path));
  CTFS_ASSIGN_OR_RETURN(f->size_, FileSize(f->fd_.get(), path));
  return f;
}

Result<size_t> PlainFile::Read(uint64_t plain_off, MutableByteSpan out) const {
  if (plain_off >= size_) return size_t{0};
  const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - plain_off));
  out = out.first(n);
  if (!encrypted_) {
    CTFS_RETURN_IF_ERROR(PreadExact(fd_.get(), out, plain_off, path_));
    return n;
  }
  const Bytes& prefix = encrypted_->plain_prefix();
  size_t done = 0;
  if (plain_off < prefix.size()) {
    done = static_cast<size_t>(std::min<uint64_t>(n, prefix.size() - plain_off));
    std::memcpy(out.data(), prefix.data() + plain_off, done);
  }
  if (done < n) {
    const uint64_t data_off = plain_off + done - prefix.size();
    Status st = ReadEncryptedData(data_off, out.subspan(done));
    if (!st.ok()) {
      WipeMemory(out.data(), out.size());
      return st;
    }
  }
  return n;
}

Status PlainFile::ReadEncryptedData(uint64_t data_off, MutableByteSpan out) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<EncryptedFile::RangePiece> pieces,
                        encrypted_->MapDataRange(data_off, out.size()));
  const EncryptedFile& ef = *encrypted_;
  auto read_piece = [&](const EncryptedFile::RangePiece& p) -> Status {
    MutableByteSpan dst = out.subspan(p.out_off, p.take);
    if (!p.encrypted) return ef.ReadTensorRange(p.tensor, p.skip, dst);
    ChunkCache::Key key{file_id_, p.tensor, p.unit};
    CTFS_ASSIGN_OR_RETURN(ChunkCache::Chunk chunk,
                          cache_->GetOrLoad(key, p.unit_len, [&](MutableByteSpan buf) {
                            return ef.DecryptUnit(p.tensor, p.unit, buf);
                          }));
    std::memcpy(dst.data(), chunk->span().data() + p.skip, p.take);
    return Status::Ok();
  };
  if (pieces.size() == 1 || pool_ == nullptr) {
    for (const auto& p : pieces) CTFS_RETURN_IF_ERROR(read_piece(p));
    return Status::Ok();
  }
  std::mutex mu;
  Status first_error;
  pool_->ParallelFor(pieces.size(), [&](size_t i) {
    Status st = read_piece(pieces[i]);
    if (!st.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.ok()) first_error = st;
    }
  });
  return first_error;
}

}  // namespace ctfs::fs
