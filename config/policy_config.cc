// SPDX-License-Identifier: Apache-2.0
// The `policy:` section of a mount config: rules, subjects, objects (README "Access policy").
#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <optional>
#include <utility>

#include "config/config_parser.h"

namespace ctfs::config::internal {

namespace {

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

}  // namespace

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
      return Error(nodes[i].Mark(), "policy.rules[" + std::to_string(i) +
                                        "]: duplicate rule name " + Quote(rule.name) +
                                        " (first used on line " +
                                        std::to_string(first->second) + ")");
    }
    policy.rules.push_back(std::move(rule));
  }
  return policy;
}

}  // namespace ctfs::config::internal
