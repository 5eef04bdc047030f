// SPDX-License-Identifier: Apache-2.0
#include "base/file_io.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace ctfs {

Result<UniqueFd> OpenReadOnly(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open " + path);
  return UniqueFd(fd);
}

Result<uint64_t> FileSize(int fd, const std::string& path_for_errors) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError(errno, "stat " + path_for_errors);
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError(path_for_errors + ": not a regular file");
  return static_cast<uint64_t>(st.st_size);
}

Status PreadExact(int fd, MutableByteSpan dst, uint64_t off, const std::string& path_for_errors) {
  size_t done = 0;
  while (done < dst.size()) {
    ssize_t n = ::pread(fd, dst.data() + done, dst.size() - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read " + path_for_errors);
    }
    if (n == 0) {
      return DataLossError(path_for_errors + ": file is truncated (wanted " +
                           std::to_string(dst.size()) + " bytes at offset " + std::to_string(off) +
                           ")");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<std::string> ReadWholeFile(const std::string& path, size_t max_len) {
  CTFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenReadOnly(path));
  CTFS_ASSIGN_OR_RETURN(uint64_t size, FileSize(fd.get(), path));
  if (size > max_len) {
    return InvalidArgumentError(path + ": file too large (" + std::to_string(size) + " bytes)");
  }
  std::string out(size, '\0');
  CTFS_RETURN_IF_ERROR(PreadExact(
      fd.get(), MutableByteSpan(reinterpret_cast<uint8_t*>(out.data()), out.size()), 0, path));
  return out;
}

AtomicFileWriter::AtomicFileWriter(std::string final_path, std::string tmp_path, UniqueFd fd)
    : final_path_(std::move(final_path)), tmp_path_(std::move(tmp_path)), fd_(std::move(fd)) {}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& o) noexcept
    : final_path_(std::move(o.final_path_)),
      tmp_path_(std::move(o.tmp_path_)),
      fd_(std::move(o.fd_)),
      committed_(o.committed_),
      unkicked_len_(o.unkicked_len_),
      kick_writeback_(o.kick_writeback_) {
  o.committed_ = true;  // the moved-from object must not unlink anything
}

Result<AtomicFileWriter> AtomicFileWriter::Create(const std::string& final_path, mode_t mode) {
  std::string tmpl = final_path + ".ctfs-tmp-XXXXXX";
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "create temporary file for " + final_path);
  UniqueFd owned(fd);
  if (::fchmod(fd, mode) != 0) {
    int err = errno;
    ::unlink(tmpl.c_str());
    return ErrnoError(err, "chmod " + tmpl);
  }
  return AtomicFileWriter(final_path, tmpl, std::move(owned));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_ && !tmp_path_.empty()) {
    fd_.Reset();
    ::unlink(tmp_path_.c_str());
  }
}

Status AtomicFileWriter::Write(ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write " + tmp_path_);
    }
    done += static_cast<size_t>(n);
  }
  return NoteWritten(data.size());
}

Status AtomicFileWriter::PwriteAll(ByteSpan data, uint64_t off) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd_.get(), data.data() + done, data.size() - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write " + tmp_path_);
    }
    done += static_cast<size_t>(n);
  }
  return NoteWritten(data.size());
}

Status AtomicFileWriter::NoteWritten(uint64_t len) {
  unkicked_len_ += len;
  if (!kick_writeback_ || unkicked_len_ < kWritebackKickLen) return Status::Ok();
  unkicked_len_ = 0;
  // Whole file (nbytes 0 = to the end): pages already under writeback are skipped.
  if (::sync_file_range(fd_.get(), 0, 0, SYNC_FILE_RANGE_WRITE) == 0) return Status::Ok();
  if (errno == EIO || errno == ENOSPC || errno == ENOMEM) {
    return ErrnoError(errno, "write back " + tmp_path_);
  }
  kick_writeback_ = false;  // e.g. EINVAL/ESPIPE: not supported here; Commit() still fsyncs
  return Status::Ok();
}

Status AtomicFileWriter::Truncate(uint64_t len) {
  if (::ftruncate(fd_.get(), static_cast<off_t>(len)) != 0) {
    return ErrnoError(errno, "truncate " + tmp_path_);
  }
  return Status::Ok();
}

Status AtomicFileWriter::Commit() {
  if (::fsync(fd_.get()) != 0) return ErrnoError(errno, "fsync " + tmp_path_);
  int fd = fd_.Release();
  if (::close(fd) != 0) return ErrnoError(errno, "close " + tmp_path_);
  if (::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) {
    return ErrnoError(errno, "rename " + tmp_path_ + " -> " + final_path_);
  }
  committed_ = true;
  return Status::Ok();
}

}  // namespace ctfs
