// SPDX-License-Identifier: Apache-2.0
#include "cmd/control_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ctfs::cmd {
namespace {

constexpr size_t kMaxRequestLen = 256;
constexpr int kIoTimeoutMs = 2000;

std::string DirOf(uid_t uid) {
  if (uid == 0) return "/run/ctfs/ctl";
  return "/run/user/" + std::to_string(uid) + "/ctfs-ctl";
}

// EnsurePrivateDir makes `dir` (mode 0700) if missing and checks it is a real directory of
// this user that nobody else can write to or enter (a socket in it is then safe from others).
Status EnsurePrivateDir(const std::string& dir) {
  const std::string parent = dir.substr(0, dir.rfind('/'));
  if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoError(errno, parent);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError(errno, dir);
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) return ErrnoError(errno, dir);
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
    return PermissionDeniedError(dir + ": not a directory owned by uid " +
                                 std::to_string(::geteuid()));
  }
  if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0) return ErrnoError(errno, dir);
  return Status::Ok();
}

Result<sockaddr_un> AddressOf(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return InvalidArgumentError(path + ": path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

void SetTimeouts(int fd) {
  timeval tv{kIoTimeoutMs / 1000, (kIoTimeoutMs % 1000) * 1000};
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string ControlSocketPath(pid_t pid, uid_t uid) {
  return DirOf(uid) + "/" + std::to_string(pid) + ".sock";
}

Result<std::unique_ptr<ControlServer>> ControlServer::Start(Handler handler) {
  std::unique_ptr<ControlServer> s(new ControlServer());
  s->handler_ = std::move(handler);
  s->path_ = ControlSocketPath(::getpid(), ::geteuid());
  CTFS_RETURN_IF_ERROR(EnsurePrivateDir(DirOf(::geteuid())));
  CTFS_ASSIGN_OR_RETURN(sockaddr_un addr, AddressOf(s->path_));
  s->listen_fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s->listen_fd_.valid()) return ErrnoError(errno, "control socket");
  // Our pid: a file already there was left by a dead daemon that had this pid.
  if (::unlink(s->path_.c_str()) != 0 && errno != ENOENT) return ErrnoError(errno, s->path_);
  if (::bind(s->listen_fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoError(errno, s->path_);
  }
  // The directory keeps others out already; the mode says so on the socket too.
  if (::chmod(s->path_.c_str(), 0600) != 0 || ::listen(s->listen_fd_.get(), 8) != 0) {
    const int err = errno;
    ::unlink(s->path_.c_str());
    return ErrnoError(err, s->path_);
  }
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC) != 0) {
    const int err = errno;
    ::unlink(s->path_.c_str());
    return ErrnoError(err, "pipe");
  }
  s->wake_read_ = UniqueFd(wake[0]);
  s->wake_write_ = UniqueFd(wake[1]);
  ControlServer* raw = s.get();
  s->thread_ = std::thread([raw] { raw->Run(); });
  return s;
}

ControlServer::~ControlServer() {
  if (thread_.joinable()) {
    const char c = 'q';
    (void)!::write(wake_write_.get(), &c, 1);
    thread_.join();
  }
  if (!path_.empty()) ::unlink(path_.c_str());
}

void ControlServer::Run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & (POLLIN | POLLHUP)) != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    Serve(conn.get());
  }
}

void ControlServer::Serve(int conn) {
  SetTimeouts(conn);
  std::string request;
  char buf[kMaxRequestLen];
  while (request.find('\n') == std::string::npos && request.size() < kMaxRequestLen) {
    ssize_t n = ::recv(conn, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    request.append(buf, static_cast<size_t>(n));
  }
  request = request.substr(0, request.find('\n'));
  // Checked after reading the request: closing with unread data would reset the connection
  // before the client reads the refusal.
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) return;
  if (peer.uid != 0 && peer.uid != ::getuid()) {
    spdlog::warn("control socket: refused uid {} (pid {}): only root and uid {} may ask",
                 peer.uid, peer.pid, ::getuid());
    WriteAll(conn, "error: permission denied: only root and uid " + std::to_string(::getuid()) +
                       " may ask this daemon\n");
    return;
  }
  std::string answer;
  try {
    answer = handler_(request);
  } catch (const std::exception& e) {  // e.g. bad_alloc: answer, never end the daemon
    answer = std::string("error: internal: ") + e.what() + "\n";
  }
  WriteAll(conn, answer);
}

Result<std::string> AskDaemon(const std::string& path, const std::string& request) {
  CTFS_ASSIGN_OR_RETURN(sockaddr_un addr, AddressOf(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError(errno, "socket");
  SetTimeouts(fd.get());
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ECONNREFUSED) {
      return NotFoundError(path + ": no control socket (is the daemon running?)");
    }
    if (err == EACCES || err == EPERM) {
      return PermissionDeniedError(path + ": permission denied (only root and the user who "
                                          "mounted may ask the daemon)");
    }
    return ErrnoError(err, path);
  }
  if (!WriteAll(fd.get(), request + "\n")) return ErrnoError(errno, path);
  std::string answer;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return UnavailableError(path + ": the daemon did not answer in time");
    }
    if (n < 0) return ErrnoError(errno, path);
    if (n == 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  if (answer.rfind("error: ", 0) == 0) {
    std::string msg = answer.substr(7);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (msg.rfind("permission denied", 0) == 0) return PermissionDeniedError(msg);
    return UnavailableError(msg);
  }
  if (answer.empty()) return UnavailableError(path + ": the daemon closed without answering");
  return answer;
}

}  // namespace ctfs::cmd
