// SPDX-License-Identifier: Apache-2.0
// Passphrase input (file or terminal) and the seal/open of passphrase-protected key files.
#include "keys/passphrase.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/file_io.h"
#include "base/unique_fd.h"
#include "crypto/random.h"
#include "format/encrypted_jwks.h"
#include "keys/key_resolver.h"

namespace ctfs::keys {
namespace {

constexpr size_t kMaxPassphraseLen = 4096;

// StripNewline returns `s` without one trailing "\n" or "\r\n".
SecretBytes StripNewline(SecretBytes s) {
  size_t n = s.size();
  if (n > 0 && s.data()[n - 1] == '\n') {
    --n;
    if (n > 0 && s.data()[n - 1] == '\r') --n;
  }
  if (n == s.size()) return s;
  return SecretBytes::CopyFrom(s.span().first(n));
}

ByteSpan AsSpan(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

Result<SecretBytes> ReadPassphraseFile(const std::string& path) {
  const std::string what = "passphrase file " + path;
  int raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (raw_fd < 0) return ErrnoError(errno, what);
  UniqueFd fd(raw_fd);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, what + ": stat");
  CTFS_RETURN_IF_ERROR(CheckSecretFileStat(st, "passphrase file", path));
  if (static_cast<uint64_t>(st.st_size) > kMaxPassphraseLen) {
    return InvalidArgumentError(what + ": too large (limit " + std::to_string(kMaxPassphraseLen) +
                                " bytes)");
  }
  SecretBytes text(static_cast<size_t>(st.st_size));
  CTFS_RETURN_IF_ERROR(PreadExact(fd.get(), text.mutable_span(), 0, path));
  SecretBytes pass = StripNewline(std::move(text));
  if (pass.empty()) return InvalidArgumentError(what + ": empty passphrase");
  return pass;
}

bool StdinIsTerminal() { return ::isatty(STDIN_FILENO) == 1; }

Result<SecretBytes> PromptPassphrase(const std::string& prompt) {
  if (!StdinIsTerminal()) {
    return FailedPreconditionError("cannot prompt for a passphrase: stdin is not a terminal");
  }
  termios old_tio{};
  if (::tcgetattr(STDIN_FILENO, &old_tio) != 0) return ErrnoError(errno, "passphrase prompt");
  termios tio = old_tio;
  tio.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tio.c_lflag |= ECHONL;
  std::fprintf(stderr, "%s", prompt.c_str());
  std::fflush(stderr);
  if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio) != 0)
    return ErrnoError(errno, "passphrase prompt");
  SecretBytes buf(kMaxPassphraseLen + 1);
  size_t len = 0;
  Status st = Status::Ok();
  while (len < buf.size()) {
    char c = 0;
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = ErrnoError(errno, "passphrase prompt");
      break;
    }
    if (n == 0 || c == '\n') break;
    buf.data()[len++] = static_cast<uint8_t>(c);
  }
  (void)::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old_tio);
  CTFS_RETURN_IF_ERROR(st);
  if (len > kMaxPassphraseLen) return InvalidArgumentError("passphrase too long");
  if (len == 0) return InvalidArgumentError("empty passphrase");
  return SecretBytes::CopyFrom(buf.span().first(len));
}

Result<std::string> SealKeyText(const SecretBytes& text, const SecretBytes& passphrase,
                                const crypto::ScryptParams& params) {
  format::EncryptedJwks env;
  env.scrypt_n = params.n;
  env.scrypt_r = params.r;
  env.scrypt_p = params.p;
  env.salt.resize(crypto::kPassphraseSaltLen);
  env.nonce.resize(crypto::kPassphraseNonceLen);
  CTFS_RETURN_IF_ERROR(crypto::RandomBytes(env.salt));
  CTFS_RETURN_IF_ERROR(crypto::RandomBytes(env.nonce));
  CTFS_ASSIGN_OR_RETURN(SecretBytes key, crypto::ScryptDerive(passphrase.span(), env.salt, params));
  const std::string aad = format::EncryptedJwksAad(env);
  CTFS_ASSIGN_OR_RETURN(env.ciphertext,
                        crypto::PassphraseSeal(key, env.nonce, AsSpan(aad), text.span()));
  return format::SerializeEncryptedJwks(env);
}

Result<SecretBytes> OpenKeyText(std::string_view envelope, const SecretBytes& passphrase,
                                const std::string& what) {
  Result<format::EncryptedJwks> env = format::ParseEncryptedJwks(envelope);
  if (!env.ok()) return env.status().WithContext(what);
  const crypto::ScryptParams params{env->scrypt_n, env->scrypt_r, env->scrypt_p};
  Result<SecretBytes> key = crypto::ScryptDerive(passphrase.span(), env->salt, params);
  if (!key.ok()) return key.status().WithContext(what);
  const std::string aad = format::EncryptedJwksAad(*env);
  Result<SecretBytes> text = crypto::PassphraseOpen(*key, env->nonce, AsSpan(aad), env->ciphertext);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kDataLoss) {
      return DataLossError("wrong passphrase or damaged key file " + what);
    }
    return text.status().WithContext(what);
  }
  return text;
}

}  // namespace ctfs::keys
