// SPDX-License-Identifier: Apache-2.0
// RandomAccessFile: positional reads of one backing file, the I/O seam under the decrypting
// reader (after leveldb's Env/RandomAccessFile). The mount reads every encrypted file through
// one, so tests can wrap it (tests/testing/faulty_file.h) to make chosen ranges fail with EIO,
// come back short, or return changed bytes, and check that the daemon answers EIO for exactly
// those ranges and never wrong bytes.
// Thread safety: implementations must allow concurrent Pread calls.
#ifndef CTFS_BASE_RANDOM_ACCESS_FILE_H_
#define CTFS_BASE_RANDOM_ACCESS_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/direct_reader.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace ctfs {

class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;

  // Pread reads up to dst.size() bytes at `off` and returns how many it read: fewer (even 0) at
  // the end of the file, and an implementation may return fewer at any time (callers retry).
  virtual Result<size_t> Pread(MutableByteSpan dst, uint64_t off) const = 0;
  // Size is the file's length now.
  virtual Result<uint64_t> Size() const = 0;
  // OpenDirect returns an O_DIRECT reader of the same file, or FailedPrecondition where this
  // file (or implementation) has none; callers then read through Pread.
  virtual Result<DirectReader> OpenDirect() const = 0;
  // AdviseRandom tells the kernel not to read ahead around Pread calls (best effort).
  virtual void AdviseRandom() const = 0;
  // The path, for messages only.
  virtual const std::string& path() const = 0;
};

// PosixFile: a RandomAccessFile over an open descriptor.
class PosixFile final : public RandomAccessFile {
 public:
  PosixFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  // Open opens `path` O_RDONLY (symlinks followed: for files named on the command line).
  static Result<std::unique_ptr<PosixFile>> Open(const std::string& path);

  Result<size_t> Pread(MutableByteSpan dst, uint64_t off) const override;
  Result<uint64_t> Size() const override;
  Result<DirectReader> OpenDirect() const override;
  void AdviseRandom() const override;
  const std::string& path() const override { return path_; }
  // TakeFd hands the descriptor to the caller; this file reads nothing afterwards.
  UniqueFd TakeFd() { return std::move(fd_); }

 private:
  UniqueFd fd_;
  std::string path_;
};

// PreadExact reads exactly dst.size() bytes at `off` from `file`, retrying short reads;
// hitting the end of the file first is DataLoss ("truncated").
Status PreadExact(const RandomAccessFile& file, MutableByteSpan dst, uint64_t off);

}  // namespace ctfs

#endif  // CTFS_BASE_RANDOM_ACCESS_FILE_H_
