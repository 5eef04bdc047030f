// SPDX-License-Identifier: Apache-2.0
// Passphrases and passphrase-protected key files (envelope: format/encrypted_jwks.h; scrypt +
// AES-256-GCM: crypto/passphrase_seal.h). A passphrase lives only in SecretBytes.
#ifndef CTFS_KEYS_PASSPHRASE_H_
#define CTFS_KEYS_PASSPHRASE_H_

#include <string>
#include <string_view>

#include "base/result.h"
#include "base/secret_bytes.h"
#include "crypto/passphrase_seal.h"

namespace ctfs::keys {

// ReadPassphraseFile reads a passphrase file with the key-file checks (regular file, not
// group/world-writable, owned by the caller or root, at most 4 KiB) and strips one trailing
// "\n" (or "\r\n"). An empty passphrase is InvalidArgument.
Result<SecretBytes> ReadPassphraseFile(const std::string& path);

// StdinIsTerminal: whether a passphrase can be prompted for (stdin is a TTY).
bool StdinIsTerminal();

// PromptPassphrase writes `prompt` to stderr and reads one line from stdin with echo off.
// FailedPrecondition if stdin is not a terminal; InvalidArgument if the line is empty.
Result<SecretBytes> PromptPassphrase(const std::string& prompt);

// SealKeyText seals a JWK / JWK Set text into an envelope (the file's whole content, without
// a trailing newline), with a fresh random salt and nonce.
Result<std::string> SealKeyText(const SecretBytes& text, const SecretBytes& passphrase,
                                const crypto::ScryptParams& params = crypto::kDefaultScryptParams);

// OpenKeyText opens an envelope. `what` names the file in errors. A wrong passphrase or a
// damaged/tampered envelope: DataLoss("wrong passphrase or damaged key file WHAT").
Result<SecretBytes> OpenKeyText(std::string_view envelope, const SecretBytes& passphrase,
                                const std::string& what);

}  // namespace ctfs::keys

#endif  // CTFS_KEYS_PASSPHRASE_H_
