// SPDX-License-Identifier: Apache-2.0
// PlainFile: what the mount serves for one file. For an encrypted file: the synthesized plain
// header followed by the decrypted data region, with chunks fetched through the shared
// ChunkCache and several missing chunks of one read decrypted in parallel. For any other file:
// the backing bytes as they are.
// Thread safety: immutable after Open*; Read may be called concurrently.
#ifndef CTFS_FS_PLAIN_FILE_H_
#define CTFS_FS_PLAIN_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "fs/chunk_cache.h"
#include "fs/encrypted_file.h"
#include "fs/worker_pool.h"

namespace ctfs::fs {

class PlainFile {
 public:
  // FromEncrypted wraps a verified EncryptedFile. `file_id` keys its chunks in `cache`.
  // `cache` and `pool` (may be null: no parallel decryption) must outlive the PlainFile.
  static std::unique_ptr<PlainFile> FromEncrypted(std::unique_ptr<EncryptedFile> file,
                                                  uint64_t file_id, ChunkCache* cache,
                                                  WorkerPool* pool);
  // OpenPassthrough opens a backing file to serve as is.
  static Result<std::unique_ptr<PlainFile>> OpenPassthrough(const std::string& path);

  // ReleaseEncrypted hands back the EncryptedFile (this PlainFile is unusable afterwards).
  std::unique_ptr<EncryptedFile> ReleaseEncrypted() { return std::move(encrypted_); }

  uint64_t size() const { return size_; }
  bool encrypted() const { return encrypted_ != nullptr; }
  const EncryptedFile* encrypted_file() const { return encrypted_.get(); }

  // Read copies the bytes at [plain_off, plain_off + out.size()) clipped at EOF into `out` and
  // returns how many were copied (0 at or past EOF). DataLoss if any touched chunk fails
  // authentication: then nothing of the read is released (`out` is wiped).
  Result<size_t> Read(uint64_t plain_off, MutableByteSpan out) const;

 private:
  PlainFile() = default;
  Status ReadEncryptedData(uint64_t data_off, MutableByteSpan out) const;

  uint64_t size_ = 0;
  std::string path_;
  UniqueFd fd_;                               // passthrough
  std::unique_ptr<EncryptedFile> encrypted_;  // encrypted
  uint64_t file_id_ = 0;
  ChunkCache* cache_ = nullptr;
  WorkerPool* pool_ = nullptr;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_PLAIN_FILE_H_
