// SPDX-License-Identifier: Apache-2.0
// DirectReader reads byte ranges of a file with O_DIRECT: the disk transfers straight into a
// private, aligned staging buffer, so a read costs no CPU copy out of the page cache and leaves
// nothing in it. The mount uses it for ciphertext, which it would otherwise copy once and
// cache twice (ciphertext in the backing file's page cache, plaintext in the mount's).
//
// O_DIRECT wants offset, length and memory aligned (statx STATX_DIOALIGN; 4096 where the kernel
// does not say). Read() widens the range to that alignment and returns the caller's bytes
// inside the staging buffer. The staging buffer is the caller's, so that the bytes a caller
// authenticates and decrypts are bytes no other thread or process can change underneath it.
// Thread safety: a DirectReader may be used by many threads, each with its own StagingBuffer.
#ifndef CTFS_BASE_DIRECT_READER_H_
#define CTFS_BASE_DIRECT_READER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace ctfs {

// StagingBuffer: a page-aligned anonymous mapping that grows on demand; from a huge page's
// length on, it starts on a huge-page boundary and asks for transparent huge pages
// (huge_mapping.h), because the disk fills those several times faster. Holds ciphertext only,
// so it is not wiped. Move-only.
class StagingBuffer {
 public:
  StagingBuffer() = default;
  StagingBuffer(StagingBuffer&& other) noexcept;
  StagingBuffer& operator=(StagingBuffer&& other) noexcept;
  StagingBuffer(const StagingBuffer&) = delete;
  StagingBuffer& operator=(const StagingBuffer&) = delete;
  ~StagingBuffer();

  // Reserve makes at least `len` bytes usable (contents are not kept).
  Status Reserve(size_t len);
  uint8_t* data() const { return data_; }
  size_t capacity() const { return capacity_; }

 private:
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
};

class DirectReader {
 public:
  // Open opens `path` O_RDONLY|O_DIRECT. FailedPrecondition if the file system does not do
  // direct I/O (or wants alignment a page-aligned buffer cannot give).
  static Result<DirectReader> Open(const std::string& path);
  // OpenFrom opens the file of descriptor `fd` again, O_DIRECT (through /proc/self/fd: the same
  // inode, whatever its path names now). Errors as for Open.
  static Result<DirectReader> OpenFrom(int fd, const std::string& path);

  // Read returns exactly `len` bytes at `off`, inside `staging` (valid until its next use).
  // DataLoss ("truncated") if the file ends first.
  Result<ByteSpan> Read(uint64_t off, size_t len, StagingBuffer& staging) const;

  size_t offset_align() const { return offset_align_; }

 private:
  // FromFd finishes Open/OpenFrom once `fd` is open O_DIRECT (or `err` says why not).
  static Result<DirectReader> FromFd(int fd, int err, const std::string& path);
  DirectReader(std::string path, UniqueFd fd, size_t offset_align)
      : path_(std::move(path)), fd_(std::move(fd)), offset_align_(offset_align) {}

  std::string path_;
  UniqueFd fd_;
  size_t offset_align_ = 4096;
};

}  // namespace ctfs

#endif  // CTFS_BASE_DIRECT_READER_H_
