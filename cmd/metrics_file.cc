// SPDX-License-Identifier: Apache-2.0
#include "cmd/metrics_file.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/file_io.h"

namespace ctfs::cmd {

MetricsFile::MetricsFile(std::string path, std::chrono::seconds interval, Render render)
    : path_(std::move(path)), interval_(interval), render_(std::move(render)) {}

Result<std::unique_ptr<MetricsFile>> MetricsFile::Start(std::string path,
                                                        std::chrono::seconds interval,
                                                        Render render) {
  std::unique_ptr<MetricsFile> m(new MetricsFile(std::move(path), interval, std::move(render)));
  CTFS_RETURN_IF_ERROR(m->WriteOnce());
  MetricsFile* raw = m.get();
  m->thread_ = std::thread([raw] { raw->Run(); });
  return m;
}

MetricsFile::~MetricsFile() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  ::unlink(path_.c_str());
}

Status MetricsFile::WriteOnce() const {
  const std::string text = render_();
  // 0644: node_exporter runs as its own user; the figures hold paths and counts, no secrets.
  CTFS_ASSIGN_OR_RETURN(AtomicFileWriter w, AtomicFileWriter::Create(path_, 0644));
  CTFS_RETURN_IF_ERROR(w.Write(AsBytes(text)));
  return w.Commit();
}

void MetricsFile::Run() {
  bool reported = false;
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, interval_, [this] { return stop_; })) {
    lock.unlock();
    Status st = WriteOnce();
    if (!st.ok() && !reported) {
      spdlog::warn("metrics file: {} (reported once; retried every {} s)", st.message(),
                   interval_.count());
    }
    reported = reported || !st.ok();
    lock.lock();
  }
}

}  // namespace ctfs::cmd
