// SPDX-License-Identifier: Apache-2.0
#include "fs/write_behind.h"

#include <utility>

#include "base/check.h"
#include "fs/copy_alignment.h"

namespace ctfs::fs {

WriteBehind::WriteBehind(size_t num_buffers, size_t buffer_len, WriteFn write)
    : buffer_len_(buffer_len), write_(std::move(write)), buffers_(num_buffers) {
  CTFS_CHECK(num_buffers >= 1 && buffer_len >= 1);
  free_.reserve(num_buffers);
  thread_ = std::thread([this] { Run(); });
}

WriteBehind::~WriteBehind() { Stop(/*drop_queued=*/true); }

void WriteBehind::Stop(bool drop_queued) {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    drop_queued_ = drop_queued;
  }
  work_cv_.notify_one();
  thread_.join();
}

Result<WriteBehind::Buffer> WriteBehind::Acquire(size_t lead) {
  CTFS_CHECK(lead < kCopyPageLen);
  size_t index;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_) return FailedPreconditionError("write-behind: Acquire after Finish");
    if (free_.empty() && created_ == buffers_.size() && with_writer_ == 0 && error_.ok()) {
      return InternalError("write-behind: every buffer is held by the producer (bug)");
    }
    free_cv_.wait(lock,
                  [&] { return !error_.ok() || !free_.empty() || created_ < buffers_.size(); });
    if (!error_.ok()) return error_;
    if (!free_.empty()) {
      index = free_.back();
      free_.pop_back();
      buffers_[index]->set_span(lead, buffer_len_);
      return Buffer{index, buffers_[index]->span()};
    }
    index = created_++;
  }
  // A new slot: only this thread touches it until it is submitted (under mu_).
  Result<ChunkBuffer> mapped = ChunkBuffer::Map(buffer_len_ + kCopyPageLen);
  if (!mapped.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    --created_;  // LIFO: no later slot was created meanwhile (one producer thread)
    return mapped.status();
  }
  buffers_[index] = std::make_unique<ChunkBuffer>(std::move(*mapped));
  buffers_[index]->set_span(lead, buffer_len_);
  return Buffer{index, buffers_[index]->span()};
}

Status WriteBehind::Submit(const Buffer& buf, size_t len, uint64_t out_off) {
  CTFS_CHECK(buf.index < buffers_.size() && len <= buf.bytes.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok()) {
      free_.push_back(buf.index);
      return error_;
    }
    queue_.push_back(Block{buf.index, buf.bytes.data(), len, out_off});
    ++with_writer_;
  }
  work_cv_.notify_one();
  return Status::Ok();
}

Status WriteBehind::Finish() {
  Stop(/*drop_queued=*/false);
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void WriteBehind::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopped and drained
    Block b = queue_.front();
    queue_.pop_front();
    if (error_.ok() && !drop_queued_) {
      lock.unlock();
      Status s = write_(ByteSpan(b.data, b.len), b.out_off);
      lock.lock();
      if (!s.ok() && error_.ok()) error_ = std::move(s);
    }
    --with_writer_;
    free_.push_back(b.index);
    free_cv_.notify_one();
  }
}

}  // namespace ctfs::fs
