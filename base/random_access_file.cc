// SPDX-License-Identifier: Apache-2.0
#include "base/random_access_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/file_io.h"

namespace ctfs {

Result<std::unique_ptr<PosixFile>> PosixFile::Open(const std::string& path) {
  CTFS_ASSIGN_OR_RETURN(UniqueFd fd, OpenReadOnly(path));
  CTFS_RETURN_IF_ERROR(FileSize(fd.get(), path).status());  // a regular file
  return std::make_unique<PosixFile>(std::move(fd), path);
}

Result<size_t> PosixFile::Pread(MutableByteSpan dst, uint64_t off) const {
  for (;;) {
    ssize_t n = ::pread(fd_.get(), dst.data(), dst.size(), static_cast<off_t>(off));
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return ErrnoError(errno, "read " + path_);
  }
}

Result<uint64_t> PosixFile::Size() const { return FileSize(fd_.get(), path_); }

Result<DirectReader> PosixFile::OpenDirect() const { return DirectReader::OpenFrom(fd_.get(), path_); }

void PosixFile::AdviseRandom() const { (void)::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_RANDOM); }

Status PreadExact(const RandomAccessFile& file, MutableByteSpan dst, uint64_t off) {
  size_t done = 0;
  while (done < dst.size()) {
    CTFS_ASSIGN_OR_RETURN(size_t n, file.Pread(dst.subspan(done), off + done));
    if (n == 0) {
      return DataLossError(file.path() + ": file is truncated (wanted " +
                           std::to_string(dst.size()) + " bytes at offset " + std::to_string(off) +
                           ")");
    }
    done += n;
  }
  return Status::Ok();
}

}  // namespace ctfs
