// SPDX-License-Identifier: Apache-2.0
// KeyResolver and its helpers: loading JWK / JWK Set files with a permission check (owner and
// write bits, checked with fstat on the opened descriptor so the check and the read concern
// the same file), mapping file:// jku URLs to local paths, and picking a key out of the
// configured sources in the order --key files, file:// jku, CRYPTOTENSOR_KEYS
// (cryptotensors-format.md §4.2-4.3). Every buffer that held key JSON is wiped after parsing;
// error messages name kids, URLs and paths, never key bytes.
#include "keys/key_resolver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#include "base/file_io.h"
#include "base/secret_bytes.h"
#include "base/unique_fd.h"
#include "crypto/sha256.h"
#include "crypto/signature.h"
#include "format/encrypted_jwks.h"

namespace ctfs::keys {
namespace {

constexpr size_t kMaxJwkFileLen = size_t{1} << 20;  // 1 MiB
constexpr char kEnvVar[] = "CRYPTOTENSOR_KEYS";
// Kids and jku URLs come from file headers (hostile input): cap what goes into a message.
constexpr size_t kMaxQuotedLen = 200;

// Quote renders an untrusted string for a message: in double quotes, non-printable bytes and
// quotes escaped, truncated to kMaxQuotedLen bytes.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  size_t n = s.size() < kMaxQuotedLen ? s.size() : kMaxQuotedLen;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (s.size() > n) out += "...";
  return out;
}

std::string CountKeys(size_t n) { return std::to_string(n) + (n == 1 ? " key" : " keys"); }

// CompleteKeys derives x for okp keys that only carry the private seed d, so every okp key a
// caller gets can verify.
Status CompleteKeys(std::vector<format::Jwk>* keys) {
  for (size_t i = 0; i < keys->size(); ++i) {
    format::Jwk& key = (*keys)[i];
    if (key.kty != "okp" || !key.x.empty() || key.d.empty()) continue;
    auto pub = crypto::Ed25519PublicKeyFromSeed(key.d);
    if (!pub.ok()) {
      return pub.status().WithContext("key " + (key.kid ? Quote(*key.kid) : std::to_string(i)) +
                                      ": deriving the public key");
    }
    key.x.assign(pub->begin(), pub->end());
  }
  return Status::Ok();
}

// ParseKeys parses a JWK document and completes its okp keys.
Result<std::vector<format::Jwk>> ParseKeys(std::string_view json) {
  CTFS_ASSIGN_OR_RETURN(std::vector<format::Jwk> keys, format::ParseJwkDocument(json));
  CTFS_RETURN_IF_ERROR(CompleteKeys(&keys));
  return keys;
}

// SelectKey implements select_jwk (§4.3): among the keys of type `kty`, the one whose kid
// equals `kid`; without a kid, the first of that type. nullptr if none.
const format::Jwk* SelectKey(const std::vector<format::Jwk>& keys, const std::string& kty,
                             const std::optional<std::string>& kid) {
  for (const format::Jwk& key : keys) {
    if (key.kty != kty) continue;
    if (!kid.has_value()) return &key;
    if (key.kid.has_value() && *key.kid == *kid) return &key;
  }
  return nullptr;
}

}  // namespace

Status CheckSecretFileStat(const struct stat& st, std::string_view kind, const std::string& path) {
  const std::string what = std::string(kind) + " " + path;
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError(what + ": not a regular file");
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDeniedError(what + " is group- or world-writable (mode " + mode +
                                 "); refusing it (chmod go-w)");
  }
  uid_t euid = ::geteuid();
  if (st.st_uid != euid && st.st_uid != 0) {
    return PermissionDeniedError(what + " is owned by uid " + std::to_string(st.st_uid) +
                                 ", not by uid " + std::to_string(euid) + " or root; refusing it");
  }
  return Status::Ok();
}

Result<SecretBytes> ReadSecretFile(const std::string& path, std::string_view kind) {
  const std::string what = std::string(kind) + " " + path;
  // O_NONBLOCK: opening a FIFO must not hang; it is refused as not regular right after.
  int raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (raw_fd < 0) return ErrnoError(errno, what);
  UniqueFd fd(raw_fd);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, what + ": stat");
  CTFS_RETURN_IF_ERROR(CheckSecretFileStat(st, kind, path));
  if (static_cast<uint64_t>(st.st_size) > kMaxJwkFileLen) {
    return InvalidArgumentError(what + ": too large (" + std::to_string(st.st_size) +
                                " bytes, limit " + std::to_string(kMaxJwkFileLen) + ")");
  }
  // The file's text goes straight into locked, wiped memory.
  SecretBytes text(static_cast<size_t>(st.st_size));
  CTFS_RETURN_IF_ERROR(PreadExact(fd.get(), text.mutable_span(), 0, path));
  return text;
}

Result<std::vector<format::Jwk>> ParseKeyText(const SecretBytes& text) {
  return ParseKeys(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
}

Result<format::JwkDocument> ParseKeyDocument(const SecretBytes& text) {
  CTFS_ASSIGN_OR_RETURN(format::JwkDocument doc,
                        format::ParseJwkDocumentWithExp(std::string_view(
                            reinterpret_cast<const char*>(text.data()), text.size())));
  CTFS_RETURN_IF_ERROR(CompleteKeys(&doc.keys));
  return doc;
}

std::string KeyDigest(const std::vector<format::Jwk>& keys) {
  size_t len = 0;
  for (const format::Jwk& key : keys) {
    len += key.kty.size() + key.kid.value_or("").size() + key.k.size() + key.d.size() +
           key.x.size() + (key.token ? key.token->Describe().size() : 0) + 6 * 8;
  }
  SecretBytes buf(len);
  size_t at = 0;
  // Each field with its length first, so that no two key sets give the same bytes.
  auto put = [&](ByteSpan field) {
    uint64_t n = field.size();
    for (int b = 0; b < 8; ++b) buf.data()[at++] = static_cast<uint8_t>(n >> (8 * b));
    for (uint8_t c : field) buf.data()[at++] = c;
  };
  auto str = [](const std::string& s) {
    return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  for (const format::Jwk& key : keys) {
    const std::string kid = key.kid.value_or("");
    put(str(key.kty));
    put(str(kid));
    put(key.k.span());
    put(key.d.span());
    put(ByteSpan(key.x.data(), key.x.size()));
    put(str(key.token ? key.token->Describe() : std::string()));
  }
  return crypto::Sha256Hex(buf.span().first(at));
}

Result<std::vector<format::Jwk>> LoadJwkFile(const std::string& path) {
  CTFS_ASSIGN_OR_RETURN(SecretBytes json, ReadSecretFile(path, "key file"));
  auto keys = ParseKeyText(json);
  if (!keys.ok()) {
    if (format::IsEncryptedJwksText(
            std::string_view(reinterpret_cast<const char*>(json.data()), json.size()))) {
      return FailedPreconditionError(
          "key file " + path +
          " is passphrase-protected: give its passphrase with --passphrase-file FILE (config: "
          "passphrase_file: FILE), or run on a terminal to be prompted");
    }
    return keys.status().WithContext("key file " + path);
  }
  return keys;
}

std::optional<std::string> FileUrlToPath(const std::string& jku) {
  constexpr std::string_view kScheme = "file://";
  if (jku.size() < kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = jku[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return std::nullopt;
  }
  std::string_view rest = std::string_view(jku).substr(kScheme.size());
  if (rest.starts_with('/')) return std::string(rest);
  if (rest == "~" || rest.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    // Only an absolute HOME gives an absolute path; anything else resolves to nothing, like a
    // relative jku.
    if (home == nullptr || home[0] != '/') return std::nullopt;
    std::string out(home);
    out.append(rest.substr(1));
    return out;
  }
  // Relative path ("file://keys.jwk", "file://~user/x", "file://host/x"): the reference's
  // default file provider has no search paths, so these resolve to nothing.
  return std::nullopt;
}

Result<KeyResolver> KeyResolver::Create(const KeySourceOptions& options) {
  KeyResolver resolver;
  resolver.use_jku_ = options.use_jku;
  resolver.only_key_files_ = options.sources.empty();
  std::vector<std::unique_ptr<KeyProvider>> providers;
  for (const std::string& path : options.key_files) {
    providers.push_back(MakeFileKeyProvider(path, options.passphrase_file));
  }
  for (const KeySourceSpec& spec : options.sources) {
    CTFS_ASSIGN_OR_RETURN(std::unique_ptr<KeyProvider> p, MakeKeyProvider(spec));
    providers.push_back(std::move(p));
  }
  for (size_t i = 0; i < providers.size(); ++i) {
    const std::unique_ptr<KeyProvider>& p = providers[i];
    CTFS_ASSIGN_OR_RETURN(ProvidedKeys got, p->Load());
    if (got.withdrawn) {
      return PermissionDeniedError(p->Describe() + ": the key is withdrawn (exit status " +
                                   std::to_string(kExitKeyWithdrawn) + ")");
    }
    ProviderInfo info;
    info.description = p->Describe();
    info.exp_unix = got.exp_unix;
    if (i >= options.key_files.size()) {
      info.source_index = static_cast<int>(i - options.key_files.size());
    }
    for (const format::Jwk& key : got.keys) info.kids.push_back(key.kid.value_or(""));
    info.key_digest = KeyDigest(got.keys);
    for (format::Jwk& key : got.keys) resolver.explicit_keys_.push_back(std::move(key));
    resolver.providers_.push_back(std::move(info));
  }
  if (options.use_env) {
    // Parsing reads the value in place, so no copy of the key JSON is made here; the daemon
    // wipes the value itself once this returns (WipeKeysFromEnvironment).
    const char* value = std::getenv(kEnvVar);
    if (value != nullptr && value[0] != '\0') {
      auto keys = ParseKeys(value);
      if (keys.ok()) {
        resolver.env_keys_ = std::move(keys).value();
      } else {
        resolver.env_error_ = keys.status().message();
      }
    }
  }
  return resolver;
}

void WipeKeysFromEnvironment() {
  char* value = std::getenv(kEnvVar);
  if (value != nullptr) WipeMemory(value, std::strlen(value));
}

Result<format::Jwk> KeyResolver::FindKey(const std::string& kty,
                                         const std::optional<std::string>& kid,
                                         const std::optional<std::string>& jku) const {
  if (kty != "oct" && kty != "okp") {
    return InvalidArgumentError("unsupported key type " + Quote(kty) +
                                " (expected \"oct\" or \"okp\")");
  }
  // 1. --key files.
  if (const format::Jwk* key = SelectKey(explicit_keys_, kty, kid)) return key->Clone();

  std::string searched = std::string(only_key_files_ ? "--key files (" : "key providers (") +
                         CountKeys(explicit_keys_.size()) + ")";
  std::string errors;

  // 2. The descriptor's file:// jku, re-read on each lookup.
  if (jku.has_value()) {
    if (!use_jku_) {
      searched += ", jku " + Quote(*jku) + " (not followed: disabled)";
    } else if (std::optional<std::string> path = FileUrlToPath(*jku)) {
      auto keys = LoadJwkFile(*path);
      if (keys.ok()) {
        if (const format::Jwk* key = SelectKey(*keys, kty, kid)) return key->Clone();
        searched += ", jku " + Quote(*jku) + " (" + CountKeys(keys->size()) + ")";
      } else {
        searched += ", jku " + Quote(*jku);
        errors += "; jku " + Quote(*jku) + ": " + keys.status().message();
      }
    } else {
      searched += ", jku " + Quote(*jku) + " (not followed: only file:///abs and file://~/ URLs)";
    }
  }

  // 3. CRYPTOTENSOR_KEYS, as snapshotted by Create.
  if (const format::Jwk* key = SelectKey(env_keys_, kty, kid)) return key->Clone();
  if (!env_error_.empty()) {
    searched += std::string(", ") + kEnvVar;
    errors += std::string("; ") + kEnvVar + ": " + env_error_;
  } else if (!env_keys_.empty()) {
    searched += std::string(", ") + kEnvVar + " (" + CountKeys(env_keys_.size()) + ")";
  } else {
    searched += std::string(", ") + kEnvVar + " (unset or not used)";
  }

  std::string what = "no " + kty + " key ";
  what += kid.has_value() ? "with kid " + Quote(*kid) : std::string("(descriptor has no kid)");
  return NotFoundError(what + " in " + searched + errors);
}

}  // namespace ctfs::keys
