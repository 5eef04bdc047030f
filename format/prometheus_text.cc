// SPDX-License-Identifier: Apache-2.0
#include "format/prometheus_text.h"

#include <cinttypes>
#include <cstdio>

namespace ctfs::format {
namespace {

// Utf8SeqLen: the length of the valid UTF-8 sequence at s[i], 0 if there is none.
size_t Utf8SeqLen(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t len = 0;
  uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

class Writer {
 public:
  explicit Writer(const MountStatus& s)
      : base_labels_("mountpoint=\"" + PrometheusLabelValue(s.mountpoint) + "\"") {}

  // Family starts a metric family: its HELP and TYPE lines.
  void Family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void Sample(const char* name, uint64_t v, const std::string& extra_labels = "") {
    Line(name, extra_labels, std::to_string(v));
  }
  void SampleDouble(const char* name, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    Line(name, "", buf);
  }
  void Gauge(const char* name, const char* help, uint64_t v) {
    Family(name, "gauge", help);
    Sample(name, v);
  }
  void Counter(const char* name, const char* help, uint64_t v) {
    Family(name, "counter", help);
    Sample(name, v);
  }
  std::string Take() { return std::move(out_); }

 private:
  void Line(const char* name, const std::string& extra_labels, const std::string& value) {
    out_ += name;
    out_ += '{';
    out_ += base_labels_;
    if (!extra_labels.empty()) {
      out_ += ',';
      out_ += extra_labels;
    }
    out_ += "} ";
    out_ += value;
    out_ += '\n';
  }
  const std::string base_labels_;
  std::string out_;
};

}  // namespace

std::string PrometheusLabelValue(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size();) {
    const size_t len = Utf8SeqLen(raw, i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    const char c = raw[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.append(raw.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string MountStatusToPrometheus(const MountStatus& s) {
  Writer w(s);
  w.Gauge("ctfs_up", "1 while the mount daemon serves (0 once access is revoked).",
          s.revoked ? 0 : 1);
  w.Gauge("ctfs_start_time_seconds", "When the daemon started (Unix time).",
          static_cast<uint64_t>(s.started_unix < 0 ? 0 : s.started_unix));
  w.Family("ctfs_uptime_seconds", "gauge", "Seconds since the daemon started.");
  w.SampleDouble("ctfs_uptime_seconds", s.uptime_s);
  w.Gauge("ctfs_resident_memory_bytes", "Resident set size of the daemon.", s.rss_bytes);
  w.Gauge("ctfs_files_served", "Files the mount serves.", s.files.size());

  struct PerFile {
    const char* name;
    const char* help;
    uint64_t FileStatus::*field;
  };
  static constexpr PerFile kPerFile[] = {
      {"ctfs_file_opens_total", "Opens of a file that were allowed.", &FileStatus::opens},
      {"ctfs_file_denials_total", "Opens of a file that were denied.", &FileStatus::denials},
      {"ctfs_file_read_bytes_total", "Bytes read from a file through the mount.",
       &FileStatus::bytes_read},
      {"ctfs_file_decrypted_bytes_total", "Bytes of a file decrypted.",
       &FileStatus::bytes_decrypted},
  };
  for (const PerFile& m : kPerFile) {
    w.Family(m.name, "counter", m.help);
    for (const FileStatus& f : s.files) {
      w.Sample(m.name, f.*m.field,
               "path=\"" + PrometheusLabelValue(f.path) + "\",kind=\"" +
                   PrometheusLabelValue(f.kind) + "\"");
    }
  }
  w.Gauge("ctfs_cache_capacity_bytes", "Capacity of the plaintext chunk cache.",
          s.cache_capacity_bytes);
  w.Gauge("ctfs_cache_bytes", "Plaintext bytes held in the chunk cache now.", s.cache_cached_bytes);
  w.Gauge("ctfs_cache_peak_bytes", "Most plaintext bytes the chunk cache held.",
          s.cache_peak_bytes);
  w.Counter("ctfs_cache_hits_total", "Chunk cache hits.", s.cache_hits);
  w.Counter("ctfs_cache_misses_total", "Chunk cache misses (chunks decrypted).", s.cache_misses);
  w.Counter("ctfs_cache_waits_total", "Reads that waited for a chunk another read was loading.",
            s.cache_waits);
  w.Gauge("ctfs_prefetch_budget_bytes", "Prefetch budget.", s.prefetch_budget_bytes);
  w.Counter("ctfs_prefetch_jobs_total", "Prefetch jobs completed.", s.prefetch_jobs);
  w.Family("ctfs_policy_info", "gauge", "The access policy mode (label), value 1.");
  w.Sample("ctfs_policy_info", 1, "mode=\"" + PrometheusLabelValue(s.policy_mode) + "\"");
  w.Gauge("ctfs_policy_rules", "Rules of the access policy in force.", s.policy_rules);
  w.Gauge("ctfs_policy_loaded_time_seconds", "When the policy in force was loaded (Unix time).",
          static_cast<uint64_t>(s.policy_loaded_unix < 0 ? 0 : s.policy_loaded_unix));
  w.Counter("ctfs_policy_reloads_total", "Policy reloads that took effect.", s.policy_reloads);
  if (!s.keys.empty()) {  // key leases (README "Key leases")
    auto labels = [](const KeyLeaseStatus& k) {
      return "kid=\"" + PrometheusLabelValue(k.kid) + "\",provider=\"" +
             PrometheusLabelValue(k.provider) + "\"";
    };
    w.Family("ctfs_key_lease_expiry_time_seconds", "gauge",
             "When a leased key expires unless refreshed (Unix time).");
    for (const KeyLeaseStatus& k : s.keys) {
      w.Sample("ctfs_key_lease_expiry_time_seconds",
               static_cast<uint64_t>(k.exp_unix < 0 ? 0 : k.exp_unix), labels(k));
    }
    w.Family("ctfs_key_lease_lost", "gauge",
             "1 while a leased key is lost (encrypted files answer EACCES), else 0.");
    for (const KeyLeaseStatus& k : s.keys) {
      w.Sample("ctfs_key_lease_lost", k.state == "lost" ? 1 : 0, labels(k));
    }
  }
  return w.Take();
}

}  // namespace ctfs::format
