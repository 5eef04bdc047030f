// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the subcommands: error printing, a TTY progress bar, directory walking
// and atomic directory output.
#ifndef CTFS_CMD_COMMON_H_
#define CTFS_CMD_COMMON_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "fs/progress.h"

namespace ctfs::cmd {

// Fail prints "ctfs: error: <message>" to stderr and returns the status's exit code.
int Fail(const Status& s);

// ExitWith returns kExitOk for OK, otherwise Fail(s).
int ExitWith(const Status& s);

// HumanBytes formats a byte count as "1.5 GiB".
std::string HumanBytes(uint64_t n);

// ProgressBar draws "[#####     ]  45%  1.2 GiB / 2.6 GiB  350 MiB/s  name" on stderr when
// stderr is a terminal (and --quiet was not given); otherwise it draws nothing.
class ProgressBar {
 public:
  ProgressBar(uint64_t total_bytes, bool enabled);
  ~ProgressBar();
  void SetLabel(const std::string& label);
  void Add(uint64_t bytes);
  fs::ProgressFn Fn() {
    return [this](uint64_t n) { Add(n); };
  }
  // Finish clears the bar line.
  void Finish();

 private:
  void Draw(bool force);
  std::mutex mu_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool enabled_;
  bool drawn_ = false;
  std::string label_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

bool IsDirectory(const std::string& path);
bool PathExists(const std::string& path);
Result<uint64_t> FileSizeOf(const std::string& path);

// ListTree returns the regular files below `dir` as paths relative to it, sorted, and fails
// on symlinks and special files (they are not copied silently).
Result<std::vector<std::string>> ListTree(const std::string& dir);

// IsSafetensorsName: the file name ends in ".safetensors".
bool IsSafetensorsName(const std::string& path);

// StagedDirectory builds a directory output in "<dst>.ctfs-tmp-XXXXXX" and moves it onto
// `dst` in Commit(); without Commit() the staging tree is removed. With `force`, an existing
// `dst` is replaced only once the new tree is complete. While it exists the staging tree is
// registered as a partial output (cmd/interrupt.h): an interrupting signal removes it.
class StagedDirectory {
 public:
  static Result<StagedDirectory> Create(const std::string& dst, bool force);
  StagedDirectory(StagedDirectory&&) noexcept;
  StagedDirectory(const StagedDirectory&) = delete;
  ~StagedDirectory();
  const std::string& path() const { return tmp_; }
  // MakeParents creates the parent directories of relative path `rel` inside the stage.
  Status MakeParents(const std::string& rel);
  Status Commit();

 private:
  friend class StagedFile;
  // CommitFile moves `file` (inside the stage) onto `dst` and removes the stage.
  Status CommitFile(const std::string& file);
  StagedDirectory(std::string dst, std::string tmp, bool force)
      : dst_(std::move(dst)), tmp_(std::move(tmp)), force_(force) {}
  std::string dst_, tmp_;
  bool force_ = false;
  bool done_ = false;
};

// StagedFile is the same for a single output file: it is written at path(), inside a staging
// directory "<dst>.ctfs-tmp-XXXXXX", and Commit() renames it onto `dst` (replacing it only with
// `force`) and removes the staging directory. Without Commit() everything is removed.
class StagedFile {
 public:
  static Result<StagedFile> Create(const std::string& dst, bool force);
  const std::string& path() const { return file_; }
  Status Commit();

 private:
  StagedFile(StagedDirectory dir, std::string file)
      : dir_(std::move(dir)), file_(std::move(file)) {}
  StagedDirectory dir_;
  std::string file_;
};

// CheckOutputPath: `dst` must not exist unless `force` (AlreadyExists); its parent directory
// must exist.
Status CheckOutputPath(const std::string& dst, bool force);

// CopyFileExact copies `src` to `dst` byte for byte (atomic write, same mode).
Status CopyFileExact(const std::string& src, const std::string& dst);

// TransformTree mirrors directory `src` into a staged `dst` (see StagedDirectory): every
// *.safetensors file goes through `model_fn(from, to, bar)`, every other file is copied
// unchanged. Prints "<verb> N safetensors file(s), copied M other file(s)" unless quiet.
// Fails if `src` holds no *.safetensors file. Nothing is left at `dst` on failure. No file is
// started once an interrupt was requested (cmd/interrupt.h).
// Up to two files are transformed at once, so `model_fn` must be thread-safe (it gets the
// shared, thread-safe `bar`); the error returned is that of the first failed file.
using ModelFileFn =
    std::function<Status(const std::string& from, const std::string& to, ProgressBar& bar)>;
// `src_label` names the source in that line if `src` is a staging copy ("" = `src`).
Status TransformTree(const std::string& src, const std::string& dst, bool force, bool quiet,
                     const char* verb, const ModelFileFn& model_fn,
                     const std::string& src_label = "");

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_COMMON_H_
