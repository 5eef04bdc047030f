// SPDX-License-Identifier: Apache-2.0
// UniqueFd: move-only owner of a POSIX file descriptor; closes it on destruction.
#ifndef CTFS_BASE_UNIQUE_FD_H_
#define CTFS_BASE_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace ctfs {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

}  // namespace ctfs

#endif  // CTFS_BASE_UNIQUE_FD_H_
