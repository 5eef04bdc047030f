// SPDX-License-Identifier: Apache-2.0
// The file providers (keys/key_provider.h): plain and passphrase-protected JWK files, and
// systemd credentials (a file in $CREDENTIALS_DIRECTORY). Also MakeKeyProvider, which checks
// a KeySourceSpec and picks the kind.
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "format/encrypted_jwks.h"
#include "keys/key_provider.h"
#include "keys/key_resolver.h"
#include "keys/passphrase.h"
#include "keys/pkcs11_uri.h"

namespace ctfs::keys {
namespace {

constexpr char kCredentialsDirVar[] = "CREDENTIALS_DIRECTORY";

std::string_view TextOf(const SecretBytes& s) {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

class FileKeyProvider final : public KeyProvider {
 public:
  FileKeyProvider(std::string path, std::string passphrase_file)
      : path_(std::move(path)), passphrase_file_(std::move(passphrase_file)) {}

  std::string Describe() const override { return "key file " + path_; }

  Result<ProvidedKeys> Load() const override {
    CTFS_ASSIGN_OR_RETURN(SecretBytes text, ReadSecretFile(path_, "key file"));
    if (format::IsEncryptedJwksText(TextOf(text))) {
      SecretBytes passphrase;
      if (!passphrase_file_.empty()) {
        CTFS_ASSIGN_OR_RETURN(passphrase, ReadPassphraseFile(passphrase_file_));
      } else if (StdinIsTerminal()) {
        CTFS_ASSIGN_OR_RETURN(passphrase, PromptPassphrase("Passphrase for " + path_ + ": "));
      } else {
        return FailedPreconditionError(
            "key file " + path_ +
            " is passphrase-protected: give its passphrase with --passphrase-file FILE "
            "(config: passphrase_file: FILE), or run on a terminal to be prompted");
      }
      CTFS_ASSIGN_OR_RETURN(text, OpenKeyText(TextOf(text), passphrase, path_));
    }
    Result<format::JwkDocument> doc = ParseKeyDocument(text);
    if (!doc.ok()) return doc.status().WithContext(Describe());
    return ProvidedKeys{std::move(doc->keys), doc->exp_unix};
  }

 private:
  std::string path_;
  std::string passphrase_file_;
};

class CredentialKeyProvider final : public KeyProvider {
 public:
  explicit CredentialKeyProvider(std::string name) : name_(std::move(name)) {}

  std::string Describe() const override { return "credential \"" + name_ + "\""; }

  Result<ProvidedKeys> Load() const override {
    CTFS_RETURN_IF_ERROR(CheckCredentialName(name_));
    const char* dir = std::getenv(kCredentialsDirVar);
    if (dir == nullptr || dir[0] == '\0') {
      return FailedPreconditionError(
          Describe() + ": $" + kCredentialsDirVar +
          " is not set (run under systemd with LoadCredential=" + name_ +
          ":... or LoadCredentialEncrypted=, or set it to the directory holding " + name_ + ")");
    }
    const std::string path = std::string(dir) + "/" + name_;
    Result<SecretBytes> text = ReadSecretFile(path, "credential file");
    if (!text.ok()) {
      return text.status().WithContext(Describe() + " ($" + kCredentialsDirVar + "=" + dir + ")");
    }
    Result<format::JwkDocument> doc = ParseKeyDocument(*text);
    if (!doc.ok()) return doc.status().WithContext(Describe() + " (" + path + ")");
    return ProvidedKeys{std::move(doc->keys), doc->exp_unix};
  }

 private:
  std::string name_;
};

}  // namespace

Status CheckCredentialName(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos || name.size() > 255) {
    return InvalidArgumentError("credential name \"" + std::string(name.substr(0, 64)) +
                                "\" must be a plain file name (no '/', not . or ..)");
  }
  return Status::Ok();
}

std::unique_ptr<KeyProvider> MakeFileKeyProvider(std::string path, std::string passphrase_file) {
  return std::make_unique<FileKeyProvider>(std::move(path), std::move(passphrase_file));
}

std::unique_ptr<KeyProvider> MakeCredentialKeyProvider(std::string name) {
  return std::make_unique<CredentialKeyProvider>(std::move(name));
}

Result<std::unique_ptr<KeyProvider>> MakeKeyProvider(const KeySourceSpec& spec) {
  const int kinds = static_cast<int>(!spec.file.empty()) +
                    static_cast<int>(!spec.credential.empty()) +
                    static_cast<int>(!spec.exec.empty()) + static_cast<int>(!spec.pkcs11.empty());
  if (kinds != 1) {
    return InvalidArgumentError("a key source needs exactly one of file, credential, exec, pkcs11");
  }
  if (!spec.passphrase_file.empty() && spec.file.empty()) {
    return InvalidArgumentError("passphrase_file goes with file only");
  }
  if (!spec.file.empty()) return MakeFileKeyProvider(spec.file, spec.passphrase_file);
  if (!spec.pkcs11.empty()) {
    CTFS_RETURN_IF_ERROR(ParsePkcs11Uri(spec.pkcs11).status());
    return MakePkcs11KeyProvider(spec.pkcs11);
  }
  if (!spec.credential.empty()) {
    CTFS_RETURN_IF_ERROR(CheckCredentialName(spec.credential));
    return MakeCredentialKeyProvider(spec.credential);
  }
  if (spec.exec[0].empty() || spec.exec[0][0] != '/') {
    return InvalidArgumentError("exec helper \"" + spec.exec[0].substr(0, 200) +
                                "\": must be an absolute path (no shell, no PATH search)");
  }
  if (!(spec.timeout_s > 0 && spec.timeout_s <= 3600) || std::isnan(spec.timeout_s)) {
    return InvalidArgumentError("exec helper " + spec.exec[0] +
                                ": timeout_s must be more than 0 and at most 3600");
  }
  return MakeExecKeyProvider(spec.exec, spec.timeout_s);
}

}  // namespace ctfs::keys
