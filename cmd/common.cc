// SPDX-License-Identifier: Apache-2.0
#include "cmd/common.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <thread>

#include "base/file_io.h"
#include "cmd/exit_codes.h"
#include "cmd/interrupt.h"
#include "fs/chunk_buffer_pool.h"

namespace ctfs::cmd {

namespace stdfs = std::filesystem;

int Fail(const Status& s) {
  std::fprintf(stderr, "ctfs: error: %s\n", s.message().c_str());
  return ExitCodeFor(s);
}

int ExitWith(const Status& s) { return s.ok() ? kExitOk : Fail(s); }

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

ProgressBar::ProgressBar(uint64_t total_bytes, bool enabled)
    : total_(total_bytes), enabled_(enabled && isatty(STDERR_FILENO) == 1) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::SetLabel(const std::string& label) {
  std::lock_guard<std::mutex> lock(mu_);
  label_ = label;
  Draw(true);
}

void ProgressBar::Add(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += bytes;
  Draw(false);
}

void ProgressBar::Draw(bool force) {
  if (!enabled_ || InterruptRequested()) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  double frac = total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(done_) / total_);
  int filled = static_cast<int>(frac * 30);
  double secs = std::chrono::duration<double>(now - start_).count();
  uint64_t rate = secs > 0 ? static_cast<uint64_t>(done_ / secs) : 0;
  std::string bar(filled, '#');
  bar.resize(30, ' ');
  std::string label = label_.size() > 40 ? "..." + label_.substr(label_.size() - 37) : label_;
  std::fprintf(stderr, "\r[%s] %3d%%  %s / %s  %s/s  %s\033[K", bar.c_str(),
               static_cast<int>(frac * 100), HumanBytes(done_).c_str(), HumanBytes(total_).c_str(),
               HumanBytes(rate).c_str(), label.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Result<uint64_t> FileSizeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoError(errno, "stat " + path);
  return static_cast<uint64_t>(st.st_size);
}

Result<std::vector<std::string>> ListTree(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  stdfs::recursive_directory_iterator it(dir, ec), end;
  if (ec) return ErrnoError(ec.value(), "list " + dir);
  for (; it != end; it.increment(ec)) {
    if (ec) return ErrnoError(ec.value(), "list " + dir);
    const stdfs::directory_entry& e = *it;
    auto st = e.symlink_status(ec);
    if (ec) return ErrnoError(ec.value(), "stat " + e.path().string());
    if (stdfs::is_directory(st)) continue;
    if (!stdfs::is_regular_file(st)) {
      return InvalidArgumentError(e.path().string() +
                                  ": not a regular file (symlinks and special files are not "
                                  "copied; replace it with the file it points to)");
    }
    out.push_back(stdfs::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool IsSafetensorsName(const std::string& path) {
  const std::string ext = ".safetensors";
  return path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
}

Status CheckOutputPath(const std::string& dst, bool force) {
  if (PathExists(dst) && !force) {
    return AlreadyExistsError(dst + ": already exists (use --force to replace it)");
  }
  stdfs::path parent = stdfs::absolute(dst).parent_path();
  if (!IsDirectory(parent.string())) {
    return NotFoundError(parent.string() + ": output directory does not exist");
  }
  return Status::Ok();
}

Result<StagedDirectory> StagedDirectory::Create(const std::string& dst, bool force) {
  CTFS_RETURN_IF_ERROR(CheckOutputPath(dst, force));
  std::string tmpl = stdfs::absolute(dst).lexically_normal().string();
  while (tmpl.size() > 1 && tmpl.back() == '/') tmpl.pop_back();
  tmpl += ".ctfs-tmp-XXXXXX";
  std::lock_guard<std::mutex> lock(OutputLock());
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoError(errno, "create staging directory");
  RegisterPartialOutput(tmpl);
  return StagedDirectory(dst, tmpl, force);
}

StagedDirectory::StagedDirectory(StagedDirectory&& o) noexcept
    : dst_(std::move(o.dst_)), tmp_(std::move(o.tmp_)), force_(o.force_), done_(o.done_) {
  o.done_ = true;
}

StagedDirectory::~StagedDirectory() {
  if (!done_) {
    std::lock_guard<std::mutex> lock(OutputLock());
    std::error_code ec;
    stdfs::remove_all(tmp_, ec);
    UnregisterPartialOutput(tmp_);
  }
}

Status StagedDirectory::MakeParents(const std::string& rel) {
  std::error_code ec;
  stdfs::create_directories((stdfs::path(tmp_) / rel).parent_path(), ec);
  if (ec) return ErrnoError(ec.value(), "create directories for " + rel);
  return Status::Ok();
}

Status StagedDirectory::Commit() {
  std::lock_guard<std::mutex> lock(OutputLock());
  std::error_code ec;
  std::string old;
  if (PathExists(dst_)) {
    if (!force_) return AlreadyExistsError(dst_ + ": already exists (use --force to replace it)");
    old = tmp_ + ".old";
    stdfs::rename(dst_, old, ec);
    if (ec) return ErrnoError(ec.value(), "move aside " + dst_);
  }
  stdfs::rename(tmp_, dst_, ec);
  if (ec) {
    if (!old.empty()) stdfs::rename(old, dst_, ec);  // put the previous output back
    return ErrnoError(ec.value(), "rename " + tmp_ + " -> " + dst_);
  }
  ::chmod(dst_.c_str(), 0755);
  done_ = true;
  UnregisterPartialOutput(tmp_);
  if (!old.empty()) stdfs::remove_all(old, ec);
  return Status::Ok();
}

Status StagedDirectory::CommitFile(const std::string& file) {
  std::lock_guard<std::mutex> lock(OutputLock());
  if (!force_ && PathExists(dst_)) {
    return AlreadyExistsError(dst_ + ": already exists (use --force to replace it)");
  }
  if (::rename(file.c_str(), dst_.c_str()) != 0) {
    return ErrnoError(errno, "rename " + file + " -> " + dst_);
  }
  done_ = true;
  UnregisterPartialOutput(tmp_);
  std::error_code ec;
  stdfs::remove_all(tmp_, ec);
  return Status::Ok();
}

Result<StagedFile> StagedFile::Create(const std::string& dst, bool force) {
  std::string name = stdfs::path(dst).filename().string();
  if (name.empty() || name == "." || name == "..") {
    return InvalidArgumentError(dst + ": not a file name");
  }
  CTFS_ASSIGN_OR_RETURN(StagedDirectory dir, StagedDirectory::Create(dst, force));
  std::string file = dir.path() + "/" + name;
  return StagedFile(std::move(dir), std::move(file));
}

Status StagedFile::Commit() { return dir_.CommitFile(file_); }

Status CopyFileExact(const std::string& src, const std::string& dst) {
  CTFS_ASSIGN_OR_RETURN(UniqueFd in, OpenReadOnly(src));
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return ErrnoError(errno, "stat " + src);
  CTFS_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Create(dst, st.st_mode & 0777));
  // Page-aligned (glibc maps a 1 MiB heap block on its own, 16 bytes past a page): the pread
  // into it and the write out of it copy page to page, not at a slow distance
  // (fs/copy_alignment.h).
  fs::ReusedBuffer storage;
  CTFS_ASSIGN_OR_RETURN(MutableByteSpan buf, storage.Span(1 << 20));
  uint64_t off = 0;
  while (off < static_cast<uint64_t>(st.st_size)) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(buf.size(), st.st_size - off));
    CTFS_RETURN_IF_ERROR(PreadExact(in.get(), buf.first(len), off, src));
    CTFS_RETURN_IF_ERROR(out.Write(buf.first(len)));
    off += len;
  }
  return out.Commit();
}

namespace {

// Files transformed at once: one file's final fsync (AtomicFileWriter::Commit) overlaps the next
// file's reading, encryption and writing.
constexpr size_t kParallelFiles = 2;

Status TransformOne(const std::string& from, const std::string& to, const std::string& rel,
                    const ModelFileFn& model_fn, ProgressBar& bar) {
  bar.SetLabel(rel);
  if (IsSafetensorsName(rel)) return model_fn(from, to, bar);
  CTFS_RETURN_IF_ERROR(CopyFileExact(from, to));
  CTFS_ASSIGN_OR_RETURN(uint64_t size, FileSizeOf(from));
  bar.Add(size);
  return Status::Ok();
}

}  // namespace

Status TransformTree(const std::string& src, const std::string& dst, bool force, bool quiet,
                     const char* verb, const ModelFileFn& model_fn, const std::string& src_label) {
  CTFS_ASSIGN_OR_RETURN(std::vector<std::string> files, ListTree(src));
  uint64_t total = 0;
  size_t n_models = 0;
  for (const std::string& rel : files) {
    CTFS_ASSIGN_OR_RETURN(uint64_t size, FileSizeOf(src + "/" + rel));
    total += size;
    n_models += IsSafetensorsName(rel) ? 1 : 0;
  }
  if (n_models == 0) return InvalidArgumentError(src + ": no *.safetensors file in it");
  CTFS_ASSIGN_OR_RETURN(StagedDirectory stage, StagedDirectory::Create(dst, force));
  for (const std::string& rel : files) CTFS_RETURN_IF_ERROR(stage.MakeParents(rel));
  ProgressBar bar(total, !quiet);

  // Workers take files in order; after a failure no new file is started, and the error of the
  // first failed file (in listing order) is returned once every worker has stopped.
  std::atomic<size_t> next{0};
  std::mutex mu;
  size_t failed_index = files.size();  // GUARDED_BY(mu)
  Status failure;                      // GUARDED_BY(mu)
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < files.size();) {
      if (InterruptRequested()) return;  // the interrupt watcher removes the stage and exits
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!failure.ok()) return;
      }
      const std::string& rel = files[k];
      Status s = TransformOne(src + "/" + rel, stage.path() + "/" + rel, rel, model_fn, bar);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (k < failed_index) {
          failed_index = k;
          failure = std::move(s);
        }
        return;
      }
    }
  };
  std::vector<std::thread> helpers;
  for (size_t i = 1; i < std::min(kParallelFiles, files.size()); ++i) helpers.emplace_back(work);
  work();
  for (std::thread& t : helpers) t.join();
  CTFS_RETURN_IF_ERROR(failure);

  CTFS_RETURN_IF_ERROR(stage.Commit());
  bar.Finish();
  if (!quiet) {
    std::printf("%s %zu safetensors file(s), copied %zu other file(s): %s -> %s\n", verb, n_models,
                files.size() - n_models, (src_label.empty() ? src : src_label).c_str(),
                dst.c_str());
  }
  return Status::Ok();
}

}  // namespace ctfs::cmd
