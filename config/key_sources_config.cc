// SPDX-License-Identifier: Apache-2.0
// The `keys:` section of a mount config: key sources (README "Key providers").
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "config/config_parser.h"

namespace ctfs::config::internal {

namespace {

// A key file must be a readable regular file now (the key resolver parses it later).
std::string CheckReadableFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return std::strerror(errno);
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  ::close(fd);
  return regular ? "" : "not a regular file";
}

}  // namespace

Status Parser::ParseKeys(const Entry& e, MountConfig& out) const {
  CTFS_RETURN_IF_ERROR(CheckTag(e.value, e.key_mark));
  std::vector<YAML::Node> sources;
  if (e.value.IsMap()) {
    sources.push_back(e.value);  // one key source without the list brackets
  } else if (e.value.IsSequence() && e.value.size() > 0) {
    for (auto it = e.value.begin(); it != e.value.end(); ++it) sources.push_back(*it);
  } else {
    return Error(ValueMark(e),
                 "keys: expected a list of key sources ({file: PATH}, {credential: NAME}, {exec: "
                 "[...]}, {pkcs11: URI}), got " +
                     (e.value.IsSequence() ? "an empty list" : Describe(e.value)));
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    const std::string name = "keys[" + std::to_string(i) + "]";
    CTFS_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                          Entries(sources[i], e.value.Mark(), name, name,
                                  {"file", "passphrase_file", "credential", "exec", "pkcs11",
                                   "timeout_s"}));
    if (entries.empty()) {
      return Error(sources[i].Mark(),
                   name + ": a key source needs one of file: PATH, credential: NAME, exec: [...], "
                          "pkcs11: URI");
    }
    KeySourceConfig k;
    k.pos = Pos(ValueMark(entries[0]));
    const Entry* kind = nullptr;
    const Entry* passphrase = nullptr;
    const Entry* timeout = nullptr;
    for (const Entry& f : entries) {
      if (f.key == "passphrase_file") {
        passphrase = &f;
        continue;
      }
      if (f.key == "timeout_s") {
        timeout = &f;
        continue;
      }
      if (kind != nullptr) {
        return Error(f.key_mark, name + ": give only one of file, credential, exec, pkcs11 (" +
                                     kind->key +
                                     " is given already)");
      }
      kind = &f;
    }
    if (kind == nullptr) {
      return Error(sources[i].Mark(),
                   name + ": a key source needs one of file: PATH, credential: NAME, exec: [...], "
                          "pkcs11: URI");
    }
    if (passphrase != nullptr && kind->key != "file") {
      return Error(passphrase->key_mark, name + ": passphrase_file goes with file: only");
    }
    if (timeout != nullptr && kind->key != "exec") {
      return Error(timeout->key_mark, name + ": timeout_s goes with exec: only");
    }
    if (kind->key == "file") {
      CTFS_ASSIGN_OR_RETURN(k.file, Path(*kind));
      const std::string why = CheckReadableFile(k.file);
      if (!why.empty()) return Error(ValueMark(*kind), "key file " + k.file + ": " + why);
      if (passphrase != nullptr) {
        CTFS_ASSIGN_OR_RETURN(k.passphrase_file, Path(*passphrase));
        const std::string pwhy = CheckReadableFile(k.passphrase_file);
        if (!pwhy.empty()) {
          return Error(ValueMark(*passphrase),
                       "passphrase file " + k.passphrase_file + ": " + pwhy);
        }
      }
    } else if (kind->key == "credential") {
      CTFS_ASSIGN_OR_RETURN(k.credential, String(*kind));
      const std::string& c = k.credential;
      if (c == "." || c == ".." || c.find('/') != std::string::npos) {
        return Error(ValueMark(*kind), name + ".credential: " + Quote(c) +
                                           " must be a plain file name (no '/', not . or ..)");
      }
      // Checked now only where the service manager has set the directory; otherwise the mount
      // reports it (check-config may run outside the unit).
      const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
      if (dir != nullptr && dir[0] != '\0') {
        const std::string why = CheckReadableFile(std::string(dir) + "/" + c);
        if (!why.empty()) {
          return Error(ValueMark(*kind),
                       "credential " + Quote(c) + " ($CREDENTIALS_DIRECTORY=" + dir + "): " + why);
        }
      }
    } else if (kind->key == "pkcs11") {
      // The URI's grammar is checked where it is used (keys/pkcs11_uri.h; check-config runs it).
      CTFS_ASSIGN_OR_RETURN(k.pkcs11, String(*kind));
      if (!k.pkcs11.starts_with("pkcs11:")) {
        return Error(ValueMark(*kind),
                     name + ".pkcs11: expected a PKCS#11 URI (pkcs11:token=...;object=..."
                            "?module-path=...&pin-source=file:...), got " + Quote(k.pkcs11));
      }
    } else {
      if (!kind->value.IsSequence()) {
        return Error(
            ValueMark(*kind),
            name + ".exec: expected a list [/path/helper, ARG...], got " + Describe(kind->value));
      }
      CTFS_ASSIGN_OR_RETURN(std::vector<Item> items, List(*kind));
      for (Item& item : items) k.exec.push_back(std::move(item.text));
      std::filesystem::path helper(k.exec[0]);
      if (helper.is_relative()) helper = base_dir_ / helper;
      k.exec[0] = helper.lexically_normal().string();
      if (::access(k.exec[0].c_str(), X_OK) != 0 || CheckReadableFile(k.exec[0]) != "") {
        return Error(items[0].mark, "exec helper " + k.exec[0] + ": not an executable file");
      }
      if (timeout != nullptr) {
        CTFS_ASSIGN_OR_RETURN(k.timeout_s, Unsigned(*timeout, 1, 3600));
      }
    }
    out.keys.push_back(std::move(k));
  }
  return Status::Ok();
}

}  // namespace ctfs::config::internal
