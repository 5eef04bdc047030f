// SPDX-License-Identifier: Apache-2.0
// Drains the OpenSSL error queue into a human-readable Status message (no key bytes).
#include "crypto/openssl_error.h"

#include <openssl/err.h>

#include <string>
#include <utility>

namespace ctfs::crypto {
namespace {

// At most this many queued errors are rendered; the rest are dropped with the queue.
constexpr int kMaxRenderedErrors = 4;

}  // namespace

Status OpenSslError(std::string_view what) {
  std::string message(what);
  message += ": ";
  int rendered = 0;
  unsigned long err;  // NOLINT(runtime/int): OpenSSL's type.
  while ((err = ERR_get_error()) != 0) {
    if (rendered >= kMaxRenderedErrors) continue;
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (rendered > 0) message += "; ";
    message += buf;
    ++rendered;
  }
  if (rendered == 0) message += "no OpenSSL error queued";
  return InternalError(std::move(message));
}

void ClearOpenSslErrors() { ERR_clear_error(); }

}  // namespace ctfs::crypto
