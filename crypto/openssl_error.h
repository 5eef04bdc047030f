// SPDX-License-Identifier: Apache-2.0
// Turns the calling thread's OpenSSL error queue into a Status. OpenSSL's error strings name
// a library, function and reason; they never contain key or plaintext bytes, so the message
// is safe to log. Private to crypto/.
#ifndef CTFS_CRYPTO_OPENSSL_ERROR_H_
#define CTFS_CRYPTO_OPENSSL_ERROR_H_

#include <string_view>

#include "base/status.h"

namespace ctfs::crypto {

// OpenSslError drains this thread's OpenSSL error queue and returns
// Internal("<what>: <openssl errors>") (or "<what>: no OpenSSL error queued").
Status OpenSslError(std::string_view what);

// ClearOpenSslErrors empties this thread's OpenSSL error queue. Used after an expected
// failure (bad tag, bad signature) so stale entries do not leak into a later error message.
void ClearOpenSslErrors();

}  // namespace ctfs::crypto

#endif  // CTFS_CRYPTO_OPENSSL_ERROR_H_
