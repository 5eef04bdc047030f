// SPDX-License-Identifier: Apache-2.0
// Internal to config/: the YAML parser of a mount config, shared by the files that parse its
// sections (config_parser.cc: typed scalars and lists; key_sources_config.cc: `keys:`;
// policy_config.cc: `policy:`; mount_config.cc: the document and the other sections).
// yaml-cpp types appear here, so only config/ may include this header.
#ifndef CTFS_CONFIG_CONFIG_PARSER_H_
#define CTFS_CONFIG_CONFIG_PARSER_H_

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/glob.h"
#include "base/result.h"
#include "base/status.h"
#include "config/mount_config.h"

namespace ctfs::config::internal {

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
std::string Quote(std::string_view s);
// Describe names what a node is, for "expected X, got Y" messages.
std::string Describe(const YAML::Node& n);
std::string Join(const std::vector<std::string_view>& v);
// Decimal: a plain run of decimal digits (no sign, no 0x, no exponent); UINT64_MAX if it does
// not fit 64 bits; nullopt if it is not such a run.
std::optional<uint64_t> Decimal(std::string_view s);

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

}  // namespace ctfs::config::internal

#endif  // CTFS_CONFIG_CONFIG_PARSER_H_
