// SPDX-License-Identifier: Apache-2.0
// Small POSIX file helpers returning Status: whole-file reads, exact preads, and an atomic
// writer that writes to a temporary name in the destination directory and renames on Commit,
// so a failure never leaves a half-written output.
#ifndef CTFS_BASE_FILE_IO_H_
#define CTFS_BASE_FILE_IO_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace ctfs {

// OpenReadOnly opens `path` O_RDONLY|O_CLOEXEC.
Result<UniqueFd> OpenReadOnly(const std::string& path);

// FileSize returns st_size of an open fd.
Result<uint64_t> FileSize(int fd, const std::string& path_for_errors);

// PreadExact reads exactly dst.size() bytes at `off` (retrying short reads and EINTR).
// Hitting EOF early is DataLoss ("truncated").
Status PreadExact(int fd, MutableByteSpan dst, uint64_t off, const std::string& path_for_errors);

// ReadWholeFile reads a (small) file; fails if it is larger than `max_len`.
Result<std::string> ReadWholeFile(const std::string& path, size_t max_len);

// AtomicFileWriter writes `final_path` via a temporary sibling "<final>.ctfs-tmp-XXXXXX".
// Destroying it without Commit() removes the temporary. Not thread-safe.
//
// Every kWritebackKickLen bytes written it asks the kernel to start writing the file's dirty
// pages back (sync_file_range(SYNC_FILE_RANGE_WRITE), which does not wait for completion), so
// the disk works while the caller produces more data and the fsync in Commit() only waits for
// the tail. Durability is unchanged: Commit() still fsyncs before the rename.
class AtomicFileWriter {
 public:
  // Create opens the temporary with `mode` (e.g. 0644, 0600).
  static Result<AtomicFileWriter> Create(const std::string& final_path, mode_t mode);
  AtomicFileWriter(AtomicFileWriter&&) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  // Write appends all of `data`.
  Status Write(ByteSpan data);
  // PwriteAll writes all of `data` at offset `off` (the file grows as needed).
  Status PwriteAll(ByteSpan data, uint64_t off);
  // Truncate sets the file length.
  Status Truncate(uint64_t len);
  // Commit fsyncs, closes and renames the temporary onto the final path.
  Status Commit();
  int fd() const { return fd_.get(); }

  static constexpr uint64_t kWritebackKickLen = 8 << 20;

 private:
  AtomicFileWriter(std::string final_path, std::string tmp_path, UniqueFd fd);
  // NoteWritten counts `len` new bytes and starts writeback once kWritebackKickLen piled up.
  Status NoteWritten(uint64_t len);
  std::string final_path_;
  std::string tmp_path_;
  UniqueFd fd_;
  bool committed_ = false;
  uint64_t unkicked_len_ = 0;   // bytes written since writeback was last started
  bool kick_writeback_ = true;  // false once the file system refused sync_file_range
};

}  // namespace ctfs

#endif  // CTFS_BASE_FILE_IO_H_
