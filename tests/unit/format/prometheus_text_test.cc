// SPDX-License-Identifier: Apache-2.0
// Tests of the Prometheus text rendering of `ctfs status` (`ctfs mount --metrics-file`): every
// line is a comment or a well-formed sample carrying the mountpoint label, each family has one
// HELP and one TYPE line before its samples, per-file counters name the file, and label values
// are escaped (backslash, quote, line feed, bytes that are not UTF-8).
#include "format/prometheus_text.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace ctfs::format {
namespace {

MountStatus Sample() {
  MountStatus s;
  s.mountpoint = "/run/ctfs/llama";
  s.started_unix = 1700000000;
  s.uptime_s = 12.5;
  s.rss_bytes = 123456789;
  s.files = {{"a.safetensors", "encrypted", 3, 1, 1000, 2000},
             {"config.json", "plain", 2, 0, 50, 0}};
  s.cache_capacity_bytes = 256u << 20;
  s.cache_hits = 7;
  s.cache_misses = 5;
  s.policy_mode = "enforce";
  s.policy_rules = 4;
  s.policy_reloads = 2;
  return s;
}

// Samples: "name{labels}" -> value, checking the shape of every line on the way.
std::map<std::string, std::string> Samples(const std::string& text) {
  static const std::regex kSample(
      R"(^([a-z_]+)\{(mountpoint="(?:[^"\\]|\\.)*"(?:,[a-z]+="(?:[^"\\]|\\.)*")*)\} )"
      R"(([0-9]+(?:\.[0-9]+)?)$)");
  static const std::regex kComment(R"(^# (HELP|TYPE) ([a-z_]+) .+$)");
  std::map<std::string, std::string> out;
  std::set<std::string> helped, typed;
  std::istringstream in(text);
  std::string line;
  EXPECT_EQ(text.back(), '\n');
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, kComment)) {
      auto& seen = m[1] == "HELP" ? helped : typed;
      EXPECT_TRUE(seen.insert(m[2]).second) << "two " << m[1] << " lines for " << m[2];
      continue;
    }
    EXPECT_TRUE(std::regex_match(line, m, kSample)) << "malformed: " << line;
    if (m.empty()) continue;
    EXPECT_TRUE(helped.count(m[1]) && typed.count(m[1])) << "no HELP/TYPE before " << line;
    const std::string key = m[1].str() + "{" + m[2].str() + "}";
    EXPECT_TRUE(out.emplace(key, m[3]).second) << "duplicate sample " << key;
  }
  return out;
}

TEST(PrometheusText, EveryFigureWithTheMountpointLabel) {
  const auto samples = Samples(MountStatusToPrometheus(Sample()));
  const std::string mp = "mountpoint=\"/run/ctfs/llama\"";
  const auto at = [&](const std::string& name, const std::string& extra = "") {
    auto it = samples.find(name + "{" + mp + (extra.empty() ? "" : "," + extra) + "}");
    return it == samples.end() ? std::string("<missing>") : it->second;
  };
  EXPECT_EQ(at("ctfs_up"), "1");
  EXPECT_EQ(at("ctfs_start_time_seconds"), "1700000000");
  EXPECT_EQ(at("ctfs_uptime_seconds"), "12.500");
  EXPECT_EQ(at("ctfs_resident_memory_bytes"), "123456789");
  EXPECT_EQ(at("ctfs_files_served"), "2");
  const std::string a = "path=\"a.safetensors\",kind=\"encrypted\"";
  const std::string c = "path=\"config.json\",kind=\"plain\"";
  EXPECT_EQ(at("ctfs_file_opens_total", a), "3");
  EXPECT_EQ(at("ctfs_file_denials_total", a), "1");
  EXPECT_EQ(at("ctfs_file_read_bytes_total", a), "1000");
  EXPECT_EQ(at("ctfs_file_decrypted_bytes_total", a), "2000");
  EXPECT_EQ(at("ctfs_file_opens_total", c), "2");
  EXPECT_EQ(at("ctfs_file_decrypted_bytes_total", c), "0");
  EXPECT_EQ(at("ctfs_cache_capacity_bytes"), std::to_string(256u << 20));
  EXPECT_EQ(at("ctfs_cache_hits_total"), "7");
  EXPECT_EQ(at("ctfs_cache_misses_total"), "5");
  EXPECT_EQ(at("ctfs_policy_info", "mode=\"enforce\""), "1");
  EXPECT_EQ(at("ctfs_policy_rules"), "4");
  EXPECT_EQ(at("ctfs_policy_reloads_total"), "2");
  MountStatus revoked = Sample();
  revoked.revoked = true;
  EXPECT_NE(MountStatusToPrometheus(revoked).find("ctfs_up{" + mp + "} 0\n"), std::string::npos);
}

TEST(PrometheusText, KeyLeasesOnlyWhenThereAreSome) {
  const std::string mp = "mountpoint=\"/run/ctfs/llama\"";
  EXPECT_EQ(MountStatusToPrometheus(Sample()).find("ctfs_key_lease"), std::string::npos);
  MountStatus s = Sample();
  s.keys = {{"enc,sign", "exec helper /h", 1800000000, "valid"},
            {"k2", "exec helper /g", 1700000000, "lost"}};
  const auto samples = Samples(MountStatusToPrometheus(s));
  const std::string one = mp + ",kid=\"enc,sign\",provider=\"exec helper /h\"";
  const std::string two = mp + ",kid=\"k2\",provider=\"exec helper /g\"";
  EXPECT_EQ(samples.at("ctfs_key_lease_expiry_time_seconds{" + one + "}"), "1800000000");
  EXPECT_EQ(samples.at("ctfs_key_lease_lost{" + one + "}"), "0");
  EXPECT_EQ(samples.at("ctfs_key_lease_lost{" + two + "}"), "1");
}

TEST(PrometheusText, LabelValuesAreEscaped) {
  EXPECT_EQ(PrometheusLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(PrometheusLabelValue("\xff"
                                 "x\xc3"),
            "\xEF\xBF\xBDx\xEF\xBF\xBD");
  EXPECT_EQ(PrometheusLabelValue("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(PrometheusLabelValue("caf\xc3\xa9 \xf0\x9f\x99\x82"), "caf\xc3\xa9 \xf0\x9f\x99\x82");
  MountStatus s = Sample();
  s.mountpoint = "/run/a\"b";
  s.files = {{"we\"ird\nname\\.safetensors", "encrypted", 1, 0, 0, 0}};
  const auto samples = Samples(MountStatusToPrometheus(s));  // every line still well-formed
  EXPECT_TRUE(
      samples.count("ctfs_file_opens_total{mountpoint=\"/run/a\\\"b\",path=\"we\\\"ird\\n"
                    "name\\\\.safetensors\",kind=\"encrypted\"}"));
}

}  // namespace
}  // namespace ctfs::format
