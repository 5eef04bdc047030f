// SPDX-License-Identifier: Apache-2.0
// FaultyFile: a RandomAccessFile (base/random_access_file.h) that injects faults into reads of
// chosen byte ranges of the file it wraps: the fault-injection half of the I/O seam (leveldb's
// FaultInjectionTestEnv in spirit). Faults come from a shared FaultPlan, so a test can arm them
// after the mount has read the headers. No direct reads: every byte goes through Pread.
#ifndef CTFS_TESTS_TESTING_FAULTY_FILE_H_
#define CTFS_TESTS_TESTING_FAULTY_FILE_H_

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/random_access_file.h"

namespace ctfs::testing {

enum class Fault {
  kEio,    // a read touching the range fails with EIO
  kShort,  // a read touching the range returns one byte (correct): callers must retry
  kEof,    // the file seems to end where the range starts (a truncated file; `len` is ignored)
  kFlip,   // bytes in the range come back with their lowest bit flipped (changed contents)
};

inline const char* FaultName(Fault f) {
  switch (f) {
    case Fault::kEio:
      return "EIO";
    case Fault::kShort:
      return "short reads";
    case Fault::kEof:
      return "truncated";
    case Fault::kFlip:
      return "changed bytes";
  }
  return "?";
}

// FaultPlan: the faults of one file, as [off, off + len) ranges of its bytes. Thread-safe.
class FaultPlan {
 public:
  struct Rule {
    uint64_t off = 0;
    uint64_t len = 0;
    Fault fault = Fault::kEio;
  };
  void Set(std::vector<Rule> rules) {
    std::lock_guard<std::mutex> lock(mu_);
    rules_ = std::move(rules);
  }
  std::vector<Rule> rules() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rules_;
  }
  // Hits: reads that a rule changed.
  uint64_t hits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return hits_;
  }
  void CountHit() {
    std::lock_guard<std::mutex> lock(mu_);
    ++hits_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Rule> rules_;
  uint64_t hits_ = 0;
};

class FaultyFile final : public RandomAccessFile {
 public:
  FaultyFile(std::unique_ptr<RandomAccessFile> inner, std::shared_ptr<FaultPlan> plan)
      : inner_(std::move(inner)), plan_(std::move(plan)) {}

  Result<size_t> Pread(MutableByteSpan dst, uint64_t off) const override {
    const uint64_t end = off + dst.size();
    for (const FaultPlan::Rule& r : plan_->rules()) {
      const uint64_t r_end = r.fault == Fault::kEof ? UINT64_MAX : r.off + r.len;
      if (dst.empty() || off >= r_end || end <= r.off) continue;
      plan_->CountHit();
      switch (r.fault) {
        case Fault::kEio:
          return ErrnoError(EIO, "read " + path() + " (injected)");
        case Fault::kShort:
          return inner_->Pread(dst.first(1), off);
        case Fault::kEof:
          if (off >= r.off) return size_t{0};
          return inner_->Pread(dst.first(static_cast<size_t>(r.off - off)), off);
        case Fault::kFlip: {
          CTFS_ASSIGN_OR_RETURN(size_t n, inner_->Pread(dst, off));
          const uint64_t lo = std::max(off, r.off), hi = std::min(off + n, r_end);
          for (uint64_t p = lo; p < hi; ++p) dst[p - off] ^= 1;
          return n;
        }
      }
    }
    return inner_->Pread(dst, off);
  }
  Result<uint64_t> Size() const override { return inner_->Size(); }
  Result<DirectReader> OpenDirect() const override {
    return FailedPreconditionError(path() + ": fault injection reads through Pread only");
  }
  void AdviseRandom() const override {}
  const std::string& path() const override { return inner_->path(); }

 private:
  std::unique_ptr<RandomAccessFile> inner_;
  std::shared_ptr<FaultPlan> plan_;
};

}  // namespace ctfs::testing

#endif  // CTFS_TESTS_TESTING_FAULTY_FILE_H_
