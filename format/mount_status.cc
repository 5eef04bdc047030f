// SPDX-License-Identifier: Apache-2.0
#include "format/mount_status.h"

#include <nlohmann/json.hpp>

namespace ctfs::format {
namespace {

using nlohmann::json;

// Get: `obj[key]` if it is present and of T's JSON type, else `fallback`. Type-checked first,
// so no nlohmann exception is thrown.
template <typename T>
T Get(const json& obj, const char* key, T fallback) {
  auto it = obj.find(key);
  if (it == obj.end()) return fallback;
  if constexpr (std::is_same_v<T, std::string>) {
    return it->is_string() ? it->get<std::string>() : fallback;
  } else if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->get<bool>() : fallback;
  } else if constexpr (std::is_floating_point_v<T>) {
    return it->is_number() ? it->get<T>() : fallback;
  } else if constexpr (std::is_unsigned_v<T>) {
    return it->is_number_unsigned() ? it->get<T>() : fallback;
  } else {
    return it->is_number_integer() ? it->get<T>() : fallback;
  }
}

const json& Sub(const json& obj, const char* key) {
  static const json kEmpty = json::object();
  auto it = obj.find(key);
  return it != obj.end() && it->is_object() ? *it : kEmpty;
}

}  // namespace

std::string MountStatusToJson(const MountStatus& s) {
  json files = json::array();
  uint64_t opens = 0, denials = 0, bytes_read = 0, bytes_decrypted = 0;
  for (const FileStatus& f : s.files) {
    files.push_back({{"path", f.path},
                     {"kind", f.kind},
                     {"opens", f.opens},
                     {"denials", f.denials},
                     {"bytes_read", f.bytes_read},
                     {"bytes_decrypted", f.bytes_decrypted}});
    opens += f.opens;
    denials += f.denials;
    bytes_read += f.bytes_read;
    bytes_decrypted += f.bytes_decrypted;
  }
  json keys = json::array();
  for (const KeyLeaseStatus& k : s.keys) {
    keys.push_back({{"kid", k.kid},
                    {"provider", k.provider},
                    {"exp_unix", k.exp_unix},
                    {"state", k.state}});
  }
  json doc = {
      {"version", 1},
      {"pid", s.pid},
      {"uid", s.uid},
      {"source", s.source},
      {"mountpoint", s.mountpoint},
      {"started_unix", s.started_unix},
      {"uptime_s", s.uptime_s},
      {"rss_bytes", s.rss_bytes},
      {"revoked", s.revoked},
      {"files_served", s.files.size()},
      {"totals",
       {{"opens", opens},
        {"denials", denials},
        {"bytes_read", bytes_read},
        {"bytes_decrypted", bytes_decrypted}}},
      {"files", std::move(files)},
      {"cache",
       {{"capacity_bytes", s.cache_capacity_bytes},
        {"cached_bytes", s.cache_cached_bytes},
        {"peak_cached_bytes", s.cache_peak_bytes},
        {"hits", s.cache_hits},
        {"misses", s.cache_misses},
        {"waits", s.cache_waits},
        {"wait_ms", s.cache_wait_ms}}},
      {"prefetch", {{"budget_bytes", s.prefetch_budget_bytes}, {"jobs_completed", s.prefetch_jobs}}},
      {"policy",
       {{"mode", s.policy_mode},
        {"rules", s.policy_rules},
        {"loaded_unix", s.policy_loaded_unix},
        {"reloads", s.policy_reloads},
        {"last_reload_error", s.policy_last_reload_error}}},
      {"keys", std::move(keys)},
  };
  // replace: a path that is not UTF-8 must not make dump() throw.
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<MountStatus> ParseMountStatus(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgumentError("status document: not a JSON object");
  }
  if (Get<int64_t>(doc, "version", 0) != 1) {
    return InvalidArgumentError("status document: unknown version");
  }
  MountStatus s;
  s.pid = Get<int64_t>(doc, "pid", 0);
  s.uid = Get<int64_t>(doc, "uid", 0);
  s.source = Get<std::string>(doc, "source", "");
  s.mountpoint = Get<std::string>(doc, "mountpoint", "");
  s.started_unix = Get<int64_t>(doc, "started_unix", 0);
  s.uptime_s = Get<double>(doc, "uptime_s", 0);
  s.rss_bytes = Get<uint64_t>(doc, "rss_bytes", 0);
  s.revoked = Get<bool>(doc, "revoked", false);
  auto files = doc.find("files");
  if (files != doc.end() && files->is_array()) {
    for (const json& f : *files) {
      if (!f.is_object()) continue;
      s.files.push_back({Get<std::string>(f, "path", ""), Get<std::string>(f, "kind", ""),
                         Get<uint64_t>(f, "opens", 0), Get<uint64_t>(f, "denials", 0),
                         Get<uint64_t>(f, "bytes_read", 0), Get<uint64_t>(f, "bytes_decrypted", 0)});
    }
  }
  const json& cache = Sub(doc, "cache");
  s.cache_capacity_bytes = Get<uint64_t>(cache, "capacity_bytes", 0);
  s.cache_cached_bytes = Get<uint64_t>(cache, "cached_bytes", 0);
  s.cache_peak_bytes = Get<uint64_t>(cache, "peak_cached_bytes", 0);
  s.cache_hits = Get<uint64_t>(cache, "hits", 0);
  s.cache_misses = Get<uint64_t>(cache, "misses", 0);
  s.cache_waits = Get<uint64_t>(cache, "waits", 0);
  s.cache_wait_ms = Get<uint64_t>(cache, "wait_ms", 0);
  const json& prefetch = Sub(doc, "prefetch");
  s.prefetch_budget_bytes = Get<uint64_t>(prefetch, "budget_bytes", 0);
  s.prefetch_jobs = Get<uint64_t>(prefetch, "jobs_completed", 0);
  const json& policy = Sub(doc, "policy");
  s.policy_mode = Get<std::string>(policy, "mode", "none");
  s.policy_rules = Get<uint64_t>(policy, "rules", 0);
  s.policy_loaded_unix = Get<int64_t>(policy, "loaded_unix", 0);
  s.policy_reloads = Get<uint64_t>(policy, "reloads", 0);
  s.policy_last_reload_error = Get<std::string>(policy, "last_reload_error", "");
  auto keys = doc.find("keys");
  if (keys != doc.end() && keys->is_array()) {
    for (const json& k : *keys) {
      if (!k.is_object()) continue;
      s.keys.push_back({Get<std::string>(k, "kid", ""), Get<std::string>(k, "provider", ""),
                        Get<int64_t>(k, "exp_unix", 0), Get<std::string>(k, "state", "")});
    }
  }
  return s;
}

}  // namespace ctfs::format
