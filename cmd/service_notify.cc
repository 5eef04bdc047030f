// SPDX-License-Identifier: Apache-2.0
#include "cmd/service_notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace ctfs::cmd {
namespace {

// A STATUS= value is one line: a newline would start another assignment.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

void NotifyService(const std::string& state) {
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
  // unset_environment = 0: the daemon notifies again later (STATUS=, STOPPING=1).
  const int rc = sd_notify(0, state.c_str());
  if (rc < 0) {
    spdlog::debug("sd_notify failed: {}", std::strerror(-rc));
  } else {
    spdlog::debug("sd_notify: {}", OneLine(state));
  }
}

void NotifyReady(const std::string& status) {
  NotifyService("READY=1\nMAINPID=" + std::to_string(::getpid()) + "\nSTATUS=" + OneLine(status));
}

void NotifyStatus(const std::string& status) { NotifyService("STATUS=" + OneLine(status)); }

}  // namespace ctfs::cmd
