// SPDX-License-Identifier: Apache-2.0
#include "cmd/mount_table.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace ctfs::cmd {
namespace {

bool IsOctal(char c) { return c >= '0' && c <= '7'; }

// Mount points in mountinfo escape space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' &&
        IsOctal(s[i + 2]) && IsOctal(s[i + 3])) {
      out +=
          static_cast<char>(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// ParseSource splits "ctfs:<pid>[@<pidns inode>]"; false if the source has another form.
bool ParseSource(const std::string& source, pid_t* pid, uint64_t* pidns) {
  const std::string prefix = "ctfs:";
  if (source.compare(0, prefix.size(), prefix) != 0) return false;
  const char* digits = source.c_str() + prefix.size();
  if (*digits < '0' || *digits > '9') return false;
  char* end = nullptr;
  errno = 0;
  const long p = std::strtol(digits, &end, 10);
  if (errno != 0 || p <= 0 || p > (1L << 22)) return false;
  uint64_t ns = 0;
  if (*end == '@') {
    const char* ns_digits = end + 1;
    if (*ns_digits < '0' || *ns_digits > '9') return false;
    errno = 0;
    const unsigned long long n = std::strtoull(ns_digits, &end, 10);
    if (errno != 0 || n == 0) return false;
    ns = n;
  }
  if (*end != '\0') return false;
  *pid = static_cast<pid_t>(p);
  *pidns = ns;
  return true;
}

}  // namespace

pid_t MountEntry::daemon_pid() const {
  pid_t pid = 0;
  uint64_t ns = 0;
  return ParseSource(source, &pid, &ns) ? pid : 0;
}

uint64_t MountEntry::daemon_pidns() const {
  pid_t pid = 0;
  uint64_t ns = 0;
  return ParseSource(source, &pid, &ns) ? ns : 0;
}

std::optional<MountEntry> ParseMountinfoLine(const std::string& line) {
  // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
  std::istringstream ls(line);
  std::string id, parent, dev, root, mnt, field;
  if (!(ls >> id >> parent >> dev >> root >> mnt)) return std::nullopt;
  while (ls >> field && field != "-") {
  }
  if (field != "-") return std::nullopt;
  MountEntry e;
  if (!(ls >> e.fstype >> e.source)) return std::nullopt;
  e.mountpoint = Unescape(mnt);
  e.source = Unescape(e.source);
  return e;
}

std::optional<MountEntry> FindMountAt(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::optional<MountEntry> found;
  while (std::getline(in, line)) {
    std::optional<MountEntry> e = ParseMountinfoLine(line);
    if (e && e->mountpoint == path) found = std::move(e);  // later lines are mounted on top
  }
  return found;
}

}  // namespace ctfs::cmd
