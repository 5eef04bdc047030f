// SPDX-License-Identifier: Apache-2.0
// Tests of the `ctfs status` document: every field survives a round trip, totals are the sums
// over files, a path that is not UTF-8 is written (replaced) instead of throwing, and what is
// not a version-1 object is refused.
#include "format/mount_status.h"

#include <gtest/gtest.h>

#include <string>

namespace ctfs::format {
namespace {

MountStatus Sample() {
  MountStatus s;
  s.pid = 4321;
  s.uid = 0;
  s.source = "/srv/enc";
  s.mountpoint = "/run/ctfs/llama";
  s.started_unix = 1700000000;
  s.uptime_s = 12.5;
  s.rss_bytes = 123456789;
  s.revoked = true;
  s.files = {{"a.safetensors", "encrypted", 3, 1, 1000, 2000},
             {"config.json", "plain", 2, 0, 50, 0}};
  s.cache_capacity_bytes = 256u << 20;
  s.cache_cached_bytes = 4096;
  s.cache_peak_bytes = 8192;
  s.cache_hits = 7;
  s.cache_misses = 5;
  s.cache_waits = 1;
  s.cache_wait_ms = 2;
  s.prefetch_budget_bytes = 64u << 20;
  s.prefetch_jobs = 9;
  s.policy_mode = "enforce";
  s.policy_rules = 4;
  s.policy_loaded_unix = 1700000100;
  s.policy_reloads = 2;
  s.policy_last_reload_error = "bad rule";
  s.keys = {{"llama-enc", "exec helper /usr/libexec/h", 1800000000, "lost"}};
  return s;
}

TEST(MountStatusTest, RoundTripKeepsEveryField) {
  const MountStatus in = Sample();
  const std::string json = MountStatusToJson(in);
  auto out = ParseMountStatus(json);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->pid, 4321);
  EXPECT_EQ(out->source, in.source);
  EXPECT_EQ(out->mountpoint, in.mountpoint);
  EXPECT_EQ(out->started_unix, in.started_unix);
  EXPECT_DOUBLE_EQ(out->uptime_s, 12.5);
  EXPECT_EQ(out->rss_bytes, in.rss_bytes);
  EXPECT_TRUE(out->revoked);
  ASSERT_EQ(out->files.size(), 2u);
  EXPECT_EQ(out->files[0].path, "a.safetensors");
  EXPECT_EQ(out->files[0].kind, "encrypted");
  EXPECT_EQ(out->files[0].opens, 3u);
  EXPECT_EQ(out->files[0].denials, 1u);
  EXPECT_EQ(out->files[0].bytes_read, 1000u);
  EXPECT_EQ(out->files[0].bytes_decrypted, 2000u);
  EXPECT_EQ(out->files[1].kind, "plain");
  EXPECT_EQ(out->cache_capacity_bytes, in.cache_capacity_bytes);
  EXPECT_EQ(out->cache_hits, 7u);
  EXPECT_EQ(out->cache_misses, 5u);
  EXPECT_EQ(out->cache_peak_bytes, 8192u);
  EXPECT_EQ(out->prefetch_jobs, 9u);
  EXPECT_EQ(out->policy_mode, "enforce");
  EXPECT_EQ(out->policy_rules, 4u);
  EXPECT_EQ(out->policy_reloads, 2u);
  EXPECT_EQ(out->policy_last_reload_error, "bad rule");
  ASSERT_EQ(out->keys.size(), 1u);
  EXPECT_EQ(out->keys[0].kid, "llama-enc");
  EXPECT_EQ(out->keys[0].provider, "exec helper /usr/libexec/h");
  EXPECT_EQ(out->keys[0].exp_unix, 1800000000);
  EXPECT_EQ(out->keys[0].state, "lost");
}

TEST(MountStatusTest, TotalsAreSumsOverFiles) {
  const std::string json = MountStatusToJson(Sample());
  EXPECT_NE(json.find("\"totals\":{\"bytes_decrypted\":2000,\"bytes_read\":1050,\"denials\":1,"
                      "\"opens\":5}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"files_served\":2"), std::string::npos) << json;
}

TEST(MountStatusTest, NonUtf8PathIsReplacedNotThrown) {
  MountStatus s = Sample();
  s.files[0].path = std::string("bad\xff\xfe.safetensors");
  std::string json;
  ASSERT_NO_THROW(json = MountStatusToJson(s));
  auto out = ParseMountStatus(json);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(out->files[0].path, "bad\xef\xbf\xbd\xef\xbf\xbd.safetensors");
}

TEST(MountStatusTest, RejectsWhatIsNotAVersion1Object) {
  EXPECT_FALSE(ParseMountStatus("").ok());
  EXPECT_FALSE(ParseMountStatus("[1]").ok());
  EXPECT_FALSE(ParseMountStatus("{\"pid\": 1}").ok());
  EXPECT_FALSE(ParseMountStatus("{\"version\": 2}").ok());
  EXPECT_FALSE(ParseMountStatus("error: permission denied\n").ok());
  auto wrong_types = ParseMountStatus("{\"version\":1,\"pid\":\"x\",\"files\":[1,{\"opens\":-1}]}");
  ASSERT_TRUE(wrong_types.ok());  // wrong types keep the defaults, never throw
  EXPECT_EQ(wrong_types->pid, 0);
  ASSERT_EQ(wrong_types->files.size(), 1u);
  EXPECT_EQ(wrong_types->files[0].opens, 0u);
}

}  // namespace
}  // namespace ctfs::format
