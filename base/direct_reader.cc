// SPDX-License-Identifier: Apache-2.0
#include "base/direct_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "base/checked_math.h"
#include "base/huge_mapping.h"

namespace ctfs {
namespace {

constexpr size_t kPageLen = 4096;
constexpr size_t kFallbackAlign = 4096;  // what any block device and file system accepts
constexpr size_t kStagingGranule = 1 << 20;

uint64_t AlignDown(uint64_t v, uint64_t align) { return v - v % align; }

}  // namespace

StagingBuffer::StagingBuffer(StagingBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), capacity_(std::exchange(other.capacity_, 0)) {}

StagingBuffer& StagingBuffer::operator=(StagingBuffer&& other) noexcept {
  if (this != &other) {
    this->~StagingBuffer();
    data_ = std::exchange(other.data_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

StagingBuffer::~StagingBuffer() {
  if (data_ != nullptr) ::munmap(data_, capacity_);
  data_ = nullptr;
  capacity_ = 0;
}

Status StagingBuffer::Reserve(size_t len) {
  if (len <= capacity_) return Status::Ok();
  // Reads of a huge page or more go 2-4x faster into huge pages (huge_mapping.h); shorter ones
  // would commit a whole huge page each for little gain, so they stay on small pages.
  const bool huge = len >= kHugePageLen;
  const size_t granule = huge ? kHugePageLen : kStagingGranule;
  auto rounded = CheckedAdd(len, granule - 1);
  if (!rounded) return InvalidArgumentError("staging buffer too large");
  const size_t capacity = static_cast<size_t>(AlignDown(*rounded, granule));
  uint8_t* data = nullptr;
  if (huge) {
    CTFS_ASSIGN_OR_RETURN(data, MapHugeAligned(capacity, "staging buffer"));
    // A run's read is a little longer than a whole number of huge pages (tags, alignment):
    // keep that tail on small pages rather than commit one more huge page for a few KiB.
    const size_t huge_len = static_cast<size_t>(AlignDown(len, kHugePageLen));
    if (huge_len < capacity) (void)::madvise(data + huge_len, capacity - huge_len, MADV_NOHUGEPAGE);
  } else {
    void* p = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      return ErrnoError(errno, "mmap of a " + std::to_string(capacity) + "-byte staging buffer");
    }
    data = static_cast<uint8_t*>(p);
  }
  this->~StagingBuffer();
  data_ = data;
  capacity_ = capacity;
  return Status::Ok();
}

Result<DirectReader> DirectReader::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  return FromFd(fd, errno, path);
}

Result<DirectReader> DirectReader::OpenFrom(int fd, const std::string& path) {
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  const int direct_fd = ::open(proc.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  return FromFd(direct_fd, errno, path);
}

Result<DirectReader> DirectReader::FromFd(int fd, int err, const std::string& path) {
  if (fd < 0) {
    if (err == EINVAL) return FailedPreconditionError(path + ": no direct I/O on this file system");
    return ErrnoError(err, "open " + path + " for direct I/O");
  }
  UniqueFd owned(fd);
  size_t offset_align = kFallbackAlign;
  struct statx stx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
      (stx.stx_mask & STATX_DIOALIGN) != 0) {
    if (stx.stx_dio_offset_align == 0 || stx.stx_dio_mem_align > kPageLen) {
      return FailedPreconditionError(path + ": no direct I/O on this file");
    }
    offset_align = stx.stx_dio_offset_align;
  }
  return DirectReader(path, std::move(owned), offset_align);
}

Result<ByteSpan> DirectReader::Read(uint64_t off, size_t len, StagingBuffer& staging) const {
  auto end = CheckedAdd(off, len);
  auto padded_end = end ? CheckedAdd(*end, offset_align_ - 1) : std::nullopt;
  if (!padded_end) return InvalidArgumentError(path_ + ": read range overflows");
  const uint64_t aligned_off = AlignDown(off, offset_align_);
  const size_t aligned_len =
      static_cast<size_t>(AlignDown(*padded_end, offset_align_) - aligned_off);
  CTFS_RETURN_IF_ERROR(staging.Reserve(aligned_len));
  const size_t want = static_cast<size_t>(*end - aligned_off);  // what the caller needs
  size_t got = 0;
  while (got < want) {
    ssize_t n = ::pread(fd_.get(), staging.data() + got, aligned_len - got,
                        static_cast<off_t>(aligned_off + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "direct read " + path_);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
    if (got % offset_align_ != 0) break;  // a short, unaligned read: end of file
  }
  if (got < want) {
    return DataLossError(path_ + ": file is truncated (wanted " + std::to_string(len) +
                         " bytes at offset " + std::to_string(off) + ")");
  }
  return ByteSpan(staging.data() + (off - aligned_off), len);
}

}  // namespace ctfs
