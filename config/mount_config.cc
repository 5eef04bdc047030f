// SPDX-License-Identifier: Apache-2.0
// The YAML schema of a mount config (README "Configuration file"). yaml-cpp gives untyped
// scalars; every type, range and name is checked here, and every yaml-cpp exception is turned
// into a Status before it leaves this file.
#include "config/mount_config.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/file_io.h"
#include "base/glob.h"
#include "config/rfc3339.h"

namespace ctfs::config {
namespace {

// A config file is a few kilobytes; the cap bounds what a hostile file can make the parser do.
constexpr size_t kMaxConfigLen = size_t{1} << 20;

// Entry: one key of a mapping, where it was written, and its value.
struct Entry {
  std::string key;
  std::string name;  // dotted path for messages, e.g. "policy.rules[1].subject.group"
  YAML::Mark key_mark;
  YAML::Node value;
};

// Item: one element of a list-valued key.
struct Item {
  std::string text;
  YAML::Mark mark;
};

// Quote renders user text for a message: at most 80 bytes, control bytes escaped.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 80) out += "...";
  return out + "\"";
}

std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return Quote(n.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}

std::string Join(const std::vector<std::string_view>& v) {
  std::string out;
  for (std::string_view s : v) out += (out.empty() ? "" : ", ") + std::string(s);
  return out;
}

class Parser {
 public:
  explicit Parser(const std::string& path) : path_(path) {
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(path, ec);
    base_dir_ = ec ? std::filesystem::path("/") : abs.parent_path();
  }

  Result<MountConfig> Parse(std::string_view yaml);

 private:
  Status Error(const YAML::Mark& m, const std::string& msg) const {
    const int line = m.line >= 0 ? m.line + 1 : 0;
    const int column = m.column >= 0 ? m.column + 1 : 0;
    return InvalidArgumentError(path_ + ":" + std::to_string(line) + ":" +
                                std::to_string(column) + ": " + msg);
  }
  // Where a value's error points: the value, or its key when it is empty (yaml-cpp places an
  // empty value at the start of the next line).
  static YAML::Mark ValueMark(const Entry& e) {
    return e.value.IsNull() ? e.key_mark : e.value.Mark();
  }
  static SourcePos Pos(const YAML::Mark& m) { return {m.line + 1, m.column + 1}; }

  Status CheckTag(const YAML::Node& n, const YAML::Mark& fallback) const;
  Result<std::vector<Entry>> Entries(const YAML::Node& map, const YAML::Mark& where,
                                     const std::string& prefix, const std::string& what,
                                     const std::vector<std::string_view>& known) const;
  Result<std::string> String(const Entry& e) const;
  Result<std::string> Path(const Entry& e) const;
  Result<bool> Bool(const Entry& e) const;
  Result<uint64_t> Unsigned(const Entry& e, uint64_t lo, uint64_t hi) const;
  Result<std::string> OneOf(const Entry& e, const std::vector<std::string_view>& values) const;
  Result<std::vector<Item>> List(const Entry& e) const;
  Result<std::vector<std::string>> Globs(const Entry& e, Glob::Kind kind) const;
  Result<std::vector<std::string>> Hex(const Entry& e, size_t digits) const;
  Result<int64_t> Time(const Entry& e) const;

  Status ParseKeys(const Entry& e, MountConfig& out) const;
  Status ParseLog(const Entry& e, LogConfig& out) const;
  Status ParseMetrics(const Entry& e, MetricsConfig& out) const;
  Status ParseAudit(const Entry& e, AuditConfig& out) const;
  Status ParseKeyLease(const Entry& e, KeyLeaseConfig& out) const;
  Result<PolicyConfig> ParsePolicy(const Entry& e) const;
  Result<RuleConfig> ParseRule(const YAML::Node& n, const std::string& prefix) const;
  Status ParseSubject(const Entry& e, SubjectConfig& out) const;
  Status ParseObject(const Entry& e, ObjectConfig& out) const;

  std::string path_;
  std::filesystem::path base_dir_;
};

Status Parser::CheckTag(const YAML::Node& n, const YAML::Mark& fallback) const {
  const std::string& tag = n.Tag();
  // "?": no tag (plain), "!": quoted scalar, "": null. Explicit tags would only change how a
  // scalar is typed, which this schema decides itself.
  if (tag.empty() || tag == "?" || tag == "!") return Status::Ok();
  return Error(n.IsNull() ? fallback : n.Mark(),
               "YAML tags are not supported here (" + Quote(tag) + "): remove the tag");
}

Result<std::vector<Entry>> Parser::Entries(const YAML::Node& map, const YAML::Mark& where,
                                           const std::string& prefix, const std::string& what,
                                           const std::vector<std::string_view>& known) const {
  CTFS_RETURN_IF_ERROR(CheckTag(map, where));
  if (!map.IsMap()) {
    return Error(map.IsNull() ? where : map.Mark(),
                 what + ": expected a mapping (key: value), got " + Describe(map));
  }
  std::vector<Entry> out;
  std::map<std::string, int> seen;  // key -> line (1-based)
  for (auto it = map.begin(); it != map.end(); ++it) {
    // A copy, not a reference: the iterator's operator-> hands out a temporary proxy, so a
    // reference to its member dangles at the end of this statement.
    const YAML::Node k = it->first;
    CTFS_RETURN_IF_ERROR(CheckTag(k, k.Mark()));
    if (!k.IsScalar()) {
      return Error(k.IsNull() ? where : k.Mark(),
                   what + ": keys must be plain names, got " + Describe(k));
    }
    const std::string key = k.Scalar();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Error(k.Mark(),
                   "unknown key " + Quote(key) + " in " + what + " (known keys: " + Join(known) +
                       ")");
    }
    auto [first, inserted] = seen.emplace(key, k.Mark().line + 1);
    if (!inserted) {
      return Error(k.Mark(), "duplicate key " + Quote(key) + " in " + what +
                                 " (first given on line " + std::to_string(first->second) + ")");
    }
    out.push_back({key, prefix.empty() ? key : prefix + "." + key, k.Mark(), it->second});
  }
  return out;
}

Result<std::string> Parser::String(const Entry& e) const {
  CTFS_RETURN_IF_ERROR(CheckTag(e.value, e.key_mark));
  if (!e.value.IsScalar()) {
    return Error(ValueMark(e), e.name + ": expected a string, got " + Describe(e.value));
  }
  const std::string& s = e.value.Scalar();
  if (s.empty()) return Error(ValueMark(e), e.name + ": must not be empty");
  if (s.find('\0') != std::string::npos) {
    return Error(ValueMark(e), e.name + ": contains a NUL byte");
  }
  return s;
}

Result<std::string> Parser::Path(const Entry& e) const {
  CTFS_ASSIGN_OR_RETURN(std::string s, String(e));
  std::filesystem::path p(s);
  if (p.is_relative()) p = base_dir_ / p;
  return p.lexically_normal().string();
}

Result<bool> Parser::Bool(const Entry& e) const {
  CTFS_RETURN_IF_ERROR(CheckTag(e.value, e.key_mark));
  if (e.value.IsScalar() && e.value.Tag() != "!") {  // a quoted "true" is a string
    const std::string& s = e.value.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  return Error(ValueMark(e), e.name + ": expected true or false, got " + Describe(e.value));
}

// Decimal: a plain run of decimal digits (no sign, no 0x, no exponent) that fits 64 bits.
std::optional<uint64_t> Decimal(std::string_view s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return UINT64_MAX;  // too many digits
  return v;
}

Result<uint64_t> Parser::Unsigned(const Entry& e, uint64_t lo, uint64_t hi) const {
  CTFS_RETURN_IF_ERROR(CheckTag(e.value, e.key_mark));
  const std::string range = std::to_string(lo) + " to " + std::to_string(hi);
  if (e.value.IsScalar() && e.value.Tag() != "!") {  // a quoted "5" is a string
    if (std::optional<uint64_t> v = Decimal(e.value.Scalar())) {
      if (*v >= lo && *v <= hi) return *v;
      return Error(ValueMark(e),
                   e.name + ": " + Quote(e.value.Scalar()) + " is out of range (" + range + ")");
    }
  }
  return Error(ValueMark(e),
               e.name + ": expected a whole number from " + range + ", got " + Describe(e.value));
}

Result<std::string> Parser::OneOf(const Entry& e,
                                  const std::vector<std::string_view>& values) const {
  CTFS_RETURN_IF_ERROR(CheckTag(e.value, e.key_mark));
  if (e.value.IsScalar() &&
      std::find(values.begin(), values.end(), e.value.Scalar()) != values.end()) {
    return e.value.Scalar();
  }
  return Error(ValueMark(e), e.name + ": expected one of " + Join(values) + ", got " +
                                 Describe(e.value));
}

// List: a list of strings, or one string standing for a list of one ("group: mlops").
Result<std::vector<Item>> Parser::List(const Entry& e) const {
  CTFS_RETURN_IF_ERROR(CheckTag(e.value, e.key_mark));
  std::vector<Item> out;
  if (e.value.IsScalar()) {
    CTFS_ASSIGN_OR_RETURN(std::string s, String(e));
    out.push_back({std::move(s), e.value.Mark()});
    return out;
  }
  if (!e.value.IsSequence()) {
    return Error(ValueMark(e),
                 e.name + ": expected a string or a list of strings, got " + Describe(e.value));
  }
  if (e.value.size() == 0) {
    return Error(ValueMark(e), e.name + ": empty list (leave the key out to match anything)");
  }
  size_t i = 0;
  for (auto it = e.value.begin(); it != e.value.end(); ++it, ++i) {
    Entry elem{e.key, e.name + "[" + std::to_string(i) + "]", it->Mark(), *it};
    if (it->IsNull()) elem.key_mark = e.value.Mark();
    CTFS_ASSIGN_OR_RETURN(std::string s, String(elem));
    out.push_back({std::move(s), ValueMark(elem)});
  }
  return out;
}

Result<std::vector<std::string>> Parser::Globs(const Entry& e, Glob::Kind kind) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<Item> items, List(e));
  std::vector<std::string> out;
  for (Item& item : items) {
    Result<Glob> g = Glob::Compile(item.text, kind);
    if (!g.ok()) return Error(item.mark, e.name + ": bad pattern: " + g.status().message());
    out.push_back(std::move(item.text));
  }
  return out;
}

// Hex: hex digests (exe_sha256, machine_id) of exactly `digits` digits, stored lowercase.
Result<std::vector<std::string>> Parser::Hex(const Entry& e, size_t digits) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<Item> items, List(e));
  std::vector<std::string> out;
  for (Item& item : items) {
    std::string s = item.text;
    bool ok = s.size() == digits;
    for (char& c : s) {
      if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) ok = false;
    }
    if (!ok) {
      return Error(item.mark, e.name + ": expected " + std::to_string(digits) +
                                  " hex digits, got " + Quote(item.text));
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<int64_t> Parser::Time(const Entry& e) const {
  CTFS_ASSIGN_OR_RETURN(std::string s, String(e));
  std::optional<int64_t> t = ParseRfc3339(s);
  if (!t) {
    return Error(ValueMark(e), e.name + ": expected an RFC 3339 time with a zone, e.g. "
                               "2027-06-30T00:00:00Z or 2027-06-30T02:00:00+02:00, got " +
                                   Quote(s));
  }
  return *t;
}

// LookupUser / LookupGroup: the id of a name in the passwd / group database.
std::optional<uint32_t> LookupUser(const std::string& name) {
  std::vector<char> buf(16384);
  for (;;) {
    passwd pw{};
    passwd* found = nullptr;
    const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (size_t{1} << 22)) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (rc != 0 || found == nullptr) return std::nullopt;
    return pw.pw_uid;
  }
}

std::optional<uint32_t> LookupGroup(const std::string& name) {
  std::vector<char> buf(16384);
  for (;;) {
    group gr{};
    group* found = nullptr;
    const int rc = ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (size_t{1} << 22)) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (rc != 0 || found == nullptr) return std::nullopt;
    return gr.gr_gid;
  }
}

// A key file must be a readable regular file now (the key resolver parses it later).
std::string CheckReadableFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return std::strerror(errno);
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  ::close(fd);
  return regular ? "" : "not a regular file";
}

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

Status Parser::ParseLog(const Entry& e, LogConfig& out) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                        Entries(e.value, e.key_mark, "log", "log", {"level", "file"}));
  for (const Entry& f : entries) {
    if (f.key == "level") {
      CTFS_ASSIGN_OR_RETURN(
          out.level,
          OneOf(f, {"trace", "debug", "info", "warn", "warning", "error", "critical", "off"}));
    } else {
      CTFS_ASSIGN_OR_RETURN(out.file, Path(f));
    }
  }
  return Status::Ok();
}

Status Parser::ParseMetrics(const Entry& e, MetricsConfig& out) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<Entry> entries, Entries(e.value, e.key_mark, "metrics",
                                                            "metrics", {"file", "interval_s"}));
  for (const Entry& f : entries) {
    if (f.key == "file") {
      CTFS_ASSIGN_OR_RETURN(out.file, Path(f));
    } else {
      CTFS_ASSIGN_OR_RETURN(out.interval_s, Unsigned(f, 1, 3600));
    }
  }
  return Status::Ok();
}

Status Parser::ParseKeyLease(const Entry& e, KeyLeaseConfig& out) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                        Entries(e.value, e.key_mark, "key_lease", "key_lease",
                                {"grace_s", "on_key_loss"}));
  for (const Entry& f : entries) {
    if (f.key == "grace_s") {
      CTFS_ASSIGN_OR_RETURN(out.grace_s, Unsigned(f, 0, 86400));
    } else {
      Result<std::string> m = OneOf(f, {"deny", "unmount"});
      if (!m.ok()) return m.status();
      // (Result, not a local string: GCC 12 warns about an uninitialized one here.)
      out.on_key_loss = m->size() == 4 ? KeyLossMode::kDeny : KeyLossMode::kUnmount;
    }
  }
  return Status::Ok();
}

Status Parser::ParseAudit(const Entry& e, AuditConfig& out) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                        Entries(e.value, e.key_mark, "audit", "audit", {"file", "stderr"}));
  for (const Entry& f : entries) {
    if (f.key == "file") {
      CTFS_ASSIGN_OR_RETURN(out.file, Path(f));
    } else {
      CTFS_ASSIGN_OR_RETURN(out.to_stderr, Bool(f));
    }
  }
  return Status::Ok();
}

Status Parser::ParseSubject(const Entry& e, SubjectConfig& out) const {
  CTFS_ASSIGN_OR_RETURN(
      std::vector<Entry> entries,
      Entries(e.value, e.key_mark, e.name, e.name,
              {"uid", "user", "gid", "group", "exe", "exe_sha256", "comm", "cgroup",
               "machine_id"}));
  for (const Entry& f : entries) {
    if (f.key == "uid" || f.key == "gid") {
      CTFS_ASSIGN_OR_RETURN(std::vector<Item> items, List(f));
      for (const Item& item : items) {
        // (uid_t)-1 is "no id" to the kernel's set*id calls, never a caller's id.
        std::optional<uint64_t> id = Decimal(item.text);
        if (!id || *id > 4294967294u) {
          return Error(item.mark, f.name + ": expected numeric ids (0 to 4294967294), got " +
                                      Quote(item.text) +
                                      (f.key == "uid" ? " (names go under user:)"
                                                      : " (names go under group:)"));
        }
        (f.key == "uid" ? out.uids : out.gids).push_back(static_cast<uint32_t>(*id));
      }
    } else if (f.key == "user" || f.key == "group") {
      CTFS_ASSIGN_OR_RETURN(std::vector<Item> items, List(f));
      for (const Item& item : items) {
        const bool user = f.key == "user";
        std::optional<uint32_t> id = user ? LookupUser(item.text) : LookupGroup(item.text);
        if (!id) {
          return Error(item.mark, f.name + ": unknown " + (user ? "user " : "group ") +
                                      Quote(item.text) + " (not in the " +
                                      (user ? "passwd" : "group") + " database of this host)");
        }
        (user ? out.uids : out.gids).push_back(*id);
      }
    } else if (f.key == "exe") {
      CTFS_ASSIGN_OR_RETURN(out.exe, Globs(f, Glob::Kind::kPath));
    } else if (f.key == "cgroup") {
      CTFS_ASSIGN_OR_RETURN(out.cgroup, Globs(f, Glob::Kind::kPath));
    } else if (f.key == "comm") {
      CTFS_ASSIGN_OR_RETURN(out.comm, Globs(f, Glob::Kind::kName));
    } else if (f.key == "exe_sha256") {
      CTFS_ASSIGN_OR_RETURN(out.exe_sha256, Hex(f, 64));
    } else {
      CTFS_ASSIGN_OR_RETURN(out.machine_id, Hex(f, 32));
    }
  }
  return Status::Ok();
}

Status Parser::ParseObject(const Entry& e, ObjectConfig& out) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                        Entries(e.value, e.key_mark, e.name, e.name, {"path", "tensor"}));
  for (const Entry& f : entries) {
    if (f.key == "path") {
      CTFS_ASSIGN_OR_RETURN(out.path, Globs(f, Glob::Kind::kPath));
    } else {
      CTFS_ASSIGN_OR_RETURN(out.tensor, Globs(f, Glob::Kind::kName));
    }
  }
  return Status::Ok();
}

Result<RuleConfig> Parser::ParseRule(const YAML::Node& n, const std::string& prefix) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                        Entries(n, n.Mark(), prefix, prefix,
                                {"name", "decision", "subject", "object", "not_before",
                                 "not_after", "hide"}));
  RuleConfig rule;
  rule.pos = Pos(n.Mark());
  bool has_name = false, has_decision = false;
  const Entry* not_after = nullptr;
  const Entry* hide = nullptr;
  for (const Entry& f : entries) {
    if (f.key == "hide") {
      CTFS_ASSIGN_OR_RETURN(rule.hide, Bool(f));
      hide = &f;
    } else if (f.key == "name") {
      CTFS_ASSIGN_OR_RETURN(rule.name, String(f));
      if (std::any_of(rule.name.begin(), rule.name.end(), [](char c) {
            return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
          })) {
        return Error(ValueMark(f), f.name + ": control characters are not allowed in names");
      }
      has_name = true;
    } else if (f.key == "decision") {
      CTFS_ASSIGN_OR_RETURN(std::string d, OneOf(f, {"allow", "deny"}));
      rule.allow = d == "allow";
      has_decision = true;
    } else if (f.key == "subject") {
      CTFS_RETURN_IF_ERROR(ParseSubject(f, rule.subject));
    } else if (f.key == "object") {
      CTFS_RETURN_IF_ERROR(ParseObject(f, rule.object));
    } else if (f.key == "not_before") {
      CTFS_ASSIGN_OR_RETURN(rule.not_before_unix, Time(f));
    } else {
      CTFS_ASSIGN_OR_RETURN(rule.not_after_unix, Time(f));
      not_after = &f;
    }
  }
  if (!has_name) return Error(n.Mark(), prefix + ": a rule needs a name");
  if (!has_decision) {
    return Error(n.Mark(), prefix + " (" + Quote(rule.name) + "): a rule needs decision: allow " +
                               "or decision: deny");
  }
  if (rule.hide && rule.allow) {
    return Error(ValueMark(*hide), prefix + " (" + Quote(rule.name) +
                                       "): hide: true applies to deny rules (it hides the files "
                                       "the rule denies)");
  }
  if (rule.not_before_unix && rule.not_after_unix &&
      *rule.not_before_unix >= *rule.not_after_unix) {
    return Error(ValueMark(*not_after),
                 prefix + " (" + Quote(rule.name) +
                     "): not_after is not later than not_before: the rule could never apply");
  }
  return rule;
}

Result<PolicyConfig> Parser::ParsePolicy(const Entry& e) const {
  static const std::string kNoRules =
      "policy: has no rules, which would deny every reader; to allow everyone, add a rule with "
      "decision: allow (or remove policy: to let file modes decide)";
  if (e.value.IsNull()) return Error(e.key_mark, kNoRules);
  CTFS_ASSIGN_OR_RETURN(std::vector<Entry> entries,
                        Entries(e.value, e.key_mark, "policy", "policy", {"mode", "rules"}));
  PolicyConfig policy;
  const Entry* rules = nullptr;
  for (const Entry& f : entries) {
    if (f.key == "mode") {
      CTFS_ASSIGN_OR_RETURN(std::string m, OneOf(f, {"enforce", "permissive"}));
      policy.mode = m == "enforce" ? PolicyConfig::Mode::kEnforce : PolicyConfig::Mode::kPermissive;
    } else {
      rules = &f;
    }
  }
  if (rules == nullptr) return Error(e.key_mark, kNoRules);
  CTFS_RETURN_IF_ERROR(CheckTag(rules->value, rules->key_mark));
  std::vector<YAML::Node> nodes;
  if (rules->value.IsMap()) {
    nodes.push_back(rules->value);
  } else if (rules->value.IsSequence()) {
    for (auto it = rules->value.begin(); it != rules->value.end(); ++it) nodes.push_back(*it);
  } else if (!rules->value.IsNull()) {
    return Error(ValueMark(*rules),
                 "policy.rules: expected a list of rules, got " + Describe(rules->value));
  }
  if (nodes.empty()) return Error(ValueMark(*rules), kNoRules);
  std::map<std::string, int> names;  // name -> line
  for (size_t i = 0; i < nodes.size(); ++i) {
    CTFS_ASSIGN_OR_RETURN(RuleConfig rule,
                          ParseRule(nodes[i], "policy.rules[" + std::to_string(i) + "]"));
    auto [first, inserted] = names.emplace(rule.name, rule.pos.line);
    if (!inserted) {
      return Error(nodes[i].Mark(), "policy.rules[" + std::to_string(i) + "]: duplicate rule name " +
                                        Quote(rule.name) + " (first used on line " +
                                        std::to_string(first->second) + ")");
    }
    policy.rules.push_back(std::move(rule));
  }
  return policy;
}

// Where each document of a stream starts, for counting them. Not YAML::LoadAll: on a stray
// token (a lone ",") yaml-cpp 0.7's parser reports an empty document without consuming the
// token, so LoadAll loops forever, allocating (jbeder/yaml-cpp#1040). A document that starts
// where the one before it started is that case.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;

  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

Result<MountConfig> Parser::Parse(std::string_view yaml) {
  const std::string text(yaml);
  {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    // Two documents are enough to refuse the file; the bound also stops the parser's loop.
    while (starts.marks.size() < 2 && parser.HandleNextDocument(starts)) {
    }
    if (starts.marks.size() == 2) {
      if (starts.marks[1].pos == starts.marks[0].pos) {
        return Error(starts.marks[0], "YAML syntax error: a stray character where a value "
                                      "should start");
      }
      return Error(starts.marks[1], "more than one YAML document: a config file holds one mount");
    }
  }
  const YAML::Node doc = YAML::Load(text);
  if (doc.IsNull()) {
    return Error(YAML::Mark(), "the file is empty: expected a mapping of settings (see "
                               "config/example.yaml)");
  }
  CTFS_ASSIGN_OR_RETURN(
      std::vector<Entry> entries,
      Entries(doc, doc.Mark(), "", "the config",
              {"source", "mountpoint", "keys", "foreground", "quiet", "cache_mb", "threads",
               "decrypt_threads", "prefetch_mb", "prefetch_threads", "read_ahead_kb",
               "direct_io", "allow_other", "allow_bad_files", "log", "metrics", "audit",
               "key_lease", "embedded_policy", "policy"}));
  MountConfig c;
  c.path = path_;
  for (const Entry& f : entries) {
    const std::string& k = f.key;
    // Ranges are those of the matching `ctfs mount` flags (cmd/mount.cc).
    if (k == "source") {
      CTFS_ASSIGN_OR_RETURN(c.source, Path(f));
    } else if (k == "mountpoint") {
      CTFS_ASSIGN_OR_RETURN(c.mountpoint, Path(f));
    } else if (k == "keys") {
      CTFS_RETURN_IF_ERROR(ParseKeys(f, c));
    } else if (k == "foreground") {
      CTFS_ASSIGN_OR_RETURN(c.foreground, Bool(f));
    } else if (k == "quiet") {
      CTFS_ASSIGN_OR_RETURN(c.quiet, Bool(f));
    } else if (k == "cache_mb") {
      CTFS_ASSIGN_OR_RETURN(c.cache_mb, Unsigned(f, 0, uint64_t{1} << 20));
    } else if (k == "threads") {
      CTFS_ASSIGN_OR_RETURN(c.threads, Unsigned(f, 1, 1024));
    } else if (k == "decrypt_threads") {
      CTFS_ASSIGN_OR_RETURN(c.decrypt_threads, Unsigned(f, 0, 256));
    } else if (k == "prefetch_mb") {
      CTFS_ASSIGN_OR_RETURN(c.prefetch_mb, Unsigned(f, 0, uint64_t{1} << 16));
    } else if (k == "prefetch_threads") {
      CTFS_ASSIGN_OR_RETURN(c.prefetch_threads, Unsigned(f, 1, 256));
    } else if (k == "read_ahead_kb") {
      CTFS_ASSIGN_OR_RETURN(c.read_ahead_kb, Unsigned(f, 0, uint64_t{1} << 20));
    } else if (k == "direct_io") {
      CTFS_ASSIGN_OR_RETURN(c.direct_io, Bool(f));
    } else if (k == "allow_other") {
      CTFS_ASSIGN_OR_RETURN(c.allow_other, Bool(f));
    } else if (k == "allow_bad_files") {
      CTFS_ASSIGN_OR_RETURN(c.allow_bad_files, Bool(f));
    } else if (k == "log") {
      CTFS_RETURN_IF_ERROR(ParseLog(f, c.log));
    } else if (k == "metrics") {
      CTFS_RETURN_IF_ERROR(ParseMetrics(f, c.metrics));
    } else if (k == "audit") {
      CTFS_RETURN_IF_ERROR(ParseAudit(f, c.audit));
    } else if (k == "key_lease") {
      CTFS_RETURN_IF_ERROR(ParseKeyLease(f, c.key_lease));
    } else if (k == "embedded_policy") {
      CTFS_ASSIGN_OR_RETURN(std::string m, OneOf(f, {"reference", "operator"}));
      c.embedded_policy =
          m == "reference" ? EmbeddedPolicyMode::kReference : EmbeddedPolicyMode::kOperator;
    } else if (k == "policy") {
      CTFS_ASSIGN_OR_RETURN(c.policy, ParsePolicy(f));
    }
  }
  return c;
}

}  // namespace

Result<MountConfig> ParseMountConfig(std::string_view yaml, const std::string& path) {
  if (yaml.size() > kMaxConfigLen) {
    return InvalidArgumentError(path + ": config file too large (" + std::to_string(yaml.size()) +
                                " bytes; at most " + std::to_string(kMaxConfigLen) + ")");
  }
  Parser parser(path);
  const auto at = [&](const YAML::Mark& m, const std::string& msg) {
    return InvalidArgumentError(path + ":" + std::to_string(m.line + 1) + ":" +
                                std::to_string(m.column + 1) + ": " + msg);
  };
  try {
    return parser.Parse(yaml);
  } catch (const YAML::DeepRecursion& e) {
    return at(e.mark, "YAML nested more than " + std::to_string(e.depth() - 1) + " levels deep");
  } catch (const YAML::ParserException& e) {
    return at(e.mark, "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    return e.mark.is_null() ? InvalidArgumentError(path + ": YAML error: " + e.msg)
                            : at(e.mark, "YAML error: " + e.msg);
  } catch (const std::exception& e) {
    return InvalidArgumentError(path + ": cannot read the config: " + e.what());
  }
}

Result<MountConfig> LoadMountConfig(const std::string& path) {
  Result<std::string> text = ReadWholeFile(path, kMaxConfigLen);
  if (!text.ok()) return text.status();
  return ParseMountConfig(*text, path);
}

}  // namespace ctfs::config
