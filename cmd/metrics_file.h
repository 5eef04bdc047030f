// SPDX-License-Identifier: Apache-2.0
// MetricsFile: rewrites a Prometheus text file (`ctfs mount --metrics-file`) every interval from
// a thread of its own, atomically (a temporary sibling renamed over it, so node_exporter's
// textfile collector never reads half a file), and removes it when destroyed: a mount that has
// ended reports nothing rather than its last figures.
#ifndef CTFS_CMD_METRICS_FILE_H_
#define CTFS_CMD_METRICS_FILE_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/result.h"

namespace ctfs::cmd {

class MetricsFile {
 public:
  using Render = std::function<std::string()>;

  // Start writes the file once (an error here, e.g. a missing folder, is returned) and then
  // every `interval` until destroyed; later write errors are logged once, not fatal.
  static Result<std::unique_ptr<MetricsFile>> Start(std::string path, std::chrono::seconds interval,
                                                    Render render);
  ~MetricsFile();
  MetricsFile(const MetricsFile&) = delete;
  MetricsFile& operator=(const MetricsFile&) = delete;

 private:
  MetricsFile(std::string path, std::chrono::seconds interval, Render render);
  Status WriteOnce() const;
  void Run();

  const std::string path_;
  const std::chrono::seconds interval_;
  const Render render_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_METRICS_FILE_H_
