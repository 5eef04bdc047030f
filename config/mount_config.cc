// SPDX-License-Identifier: Apache-2.0
// The YAML schema of a mount config (README "Configuration file"): the document, its top-level
// keys and the small sections (log, metrics, key_lease, audit); `keys:` and `policy:` are parsed
// in key_sources_config.cc and policy_config.cc, typed scalars in config_parser.cc. yaml-cpp
// gives untyped scalars; every type, range and name is checked, and every yaml-cpp exception is
// turned into a Status before it leaves ParseMountConfig.
#include "config/mount_config.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <exception>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/file_io.h"
#include "config/config_parser.h"

namespace ctfs::config {
namespace {

// A config file is a few kilobytes; the cap bounds what a hostile file can make the parser do.
constexpr size_t kMaxConfigLen = size_t{1} << 20;

}  // namespace

namespace internal {
namespace {

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

}  // namespace

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

}  // namespace internal

using internal::Parser;

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
