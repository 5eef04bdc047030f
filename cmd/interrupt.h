// SPDX-License-Identifier: Apache-2.0
// Interrupted commands leave no partial output. `ctfs encrypt` and `ctfs decrypt` build their
// output in a staging directory ("<DST>.ctfs-tmp-XXXXXX", StagedDirectory / StagedFile in
// cmd/common.h), which registers itself here while it exists. Under an InterruptWatch, SIGINT,
// SIGTERM and SIGHUP make a watcher thread remove every registered staging directory, print
// "ctfs: interrupted by SIGINT: removed the partial output ..." and _exit(128 + N).
//
// Why a thread and not a handler: removing a tree is not async-signal-safe. The signals are
// blocked in every thread (the mask is set before any thread starts, and threads inherit it)
// and read from a signalfd by the watcher, which runs ordinary code.
//
// Ordering: creating, committing and discarding a staging directory happen under OutputLock(),
// and the watcher takes that lock before removing anything and never releases it. So it never
// sees a half-made or half-committed output, and once it holds the lock no committed output can
// be moved onto DST any more. Workers still writing meanwhile get ENOENT when the staging tree
// disappears (a file created in the short window before it does is caught by removing again);
// whatever they return, the main thread never gets to report it: it stops the watch before it
// prints anything, and that waits for the watcher, which exits the process.
#ifndef CTFS_CMD_INTERRUPT_H_
#define CTFS_CMD_INTERRUPT_H_

#include <signal.h>

#include <mutex>
#include <string>
#include <thread>

#include "base/result.h"

namespace ctfs::cmd {

// Held while a staging directory is created, committed or removed.
std::mutex& OutputLock();
// RegisterPartialOutput / UnregisterPartialOutput: REQUIRES OutputLock() held.
void RegisterPartialOutput(const std::string& path);
void UnregisterPartialOutput(const std::string& path);
// InterruptRequested: a watched signal arrived; do not start new work.
bool InterruptRequested();

// InterruptWatch: see the file comment. One at a time per process. Signals whose disposition
// is SIG_IGN when it starts (e.g. SIGHUP under nohup) stay ignored.
class InterruptWatch {
 public:
  // Start must run before the process starts any thread.
  static Result<InterruptWatch> Start();
  InterruptWatch(InterruptWatch&& o) noexcept;
  InterruptWatch(const InterruptWatch&) = delete;
  InterruptWatch& operator=(const InterruptWatch&) = delete;
  ~InterruptWatch() { Stop(); }

  // Stop ends the watch and restores the signal mask. If a signal is being handled it does not
  // return: the watcher exits the process. A signal that arrives after Stop() gets its default
  // action (the work is then complete and nothing partial is left).
  void Stop();

 private:
  InterruptWatch() = default;
  int signal_fd_ = -1;
  int stop_fd_ = -1;
  std::thread watcher_;
  bool active_ = false;
  sigset_t old_mask_ = {};
};

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_INTERRUPT_H_
