// SPDX-License-Identifier: Apache-2.0
#include "cmd/mount_table.h"

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

}  // namespace

pid_t MountEntry::daemon_pid() const {
  const std::string prefix = "ctfs:";
  if (source.compare(0, prefix.size(), prefix) != 0) return 0;
  const char* digits = source.c_str() + prefix.size();
  char* end = nullptr;
  long pid = std::strtol(digits, &end, 10);
  if (end == digits || *end != '\0' || pid <= 0 || pid > (1L << 22)) return 0;
  return static_cast<pid_t>(pid);
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
