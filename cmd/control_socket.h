// SPDX-License-Identifier: Apache-2.0
// The control socket of a mount daemon (`ctfs status`, `ctfs revoke`): an AF_UNIX stream
// socket, mode 0600, in a directory only the daemon's user can enter:
//   root daemons:  /run/ctfs/ctl/<daemon pid>.sock   (/run/ctfs/ctl is mode 0700, root's)
//   other users:   /run/user/<uid>/ctfs-ctl/<daemon pid>.sock
// The client finds the daemon of a mountpoint from the mount table (source "ctfs:<pid>") and
// derives the path from its pid and uid. A stale file left by a killed daemon with the same pid
// is replaced at bind. The server also checks each peer's credentials (SO_PEERCRED): only root
// and the daemon's own uid are answered.
//
// Protocol: one request line, one answer, then the server closes. Requests:
//   "status\n" -> a JSON document (starting with '{');
//   "revoke\n" -> "revoking\n": the daemon revokes and unmounts as on SIGTERM (`ctfs revoke`).
// Any failure is "error: <message>\n".
#ifndef CTFS_CMD_CONTROL_SOCKET_H_
#define CTFS_CMD_CONTROL_SOCKET_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/result.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace ctfs::cmd {

// ControlSocketPath: where the daemon `pid` running as `uid` listens.
std::string ControlSocketPath(pid_t pid, uid_t uid);

// ControlServer answers requests on its own thread until destroyed; the destructor stops the
// thread, closes the socket and removes its file.
class ControlServer {
 public:
  // Handler: request line (without '\n') -> answer. Runs on the server's thread.
  using Handler = std::function<std::string(const std::string& request)>;

  // Start creates the directory if needed (refusing one that others could write to), binds
  // ControlSocketPath(getpid(), geteuid()) with mode 0600, and starts the thread.
  static Result<std::unique_ptr<ControlServer>> Start(Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const { return path_; }

 private:
  ControlServer() = default;
  void Run();
  void Serve(int conn);

  std::string path_;
  Handler handler_;
  UniqueFd listen_fd_;
  UniqueFd wake_read_, wake_write_;  // a byte on the pipe stops Run()
  std::thread thread_;
};

// AskDaemon sends `request` to the socket at `path` and returns the answer. NotFound: no
// socket there; PermissionDenied: the socket or the daemon refused this user; Unavailable:
// no answer in time.
Result<std::string> AskDaemon(const std::string& path, const std::string& request);

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_CONTROL_SOCKET_H_
