// SPDX-License-Identifier: Apache-2.0
#include "fs/caller_info.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "crypto/sha256.h"
#include "tests/testing/temp_dir.h"

namespace ctfs::fs {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CallerId Self() {
  return {static_cast<uint32_t>(::getuid()), static_cast<uint32_t>(::getgid()),
          static_cast<int32_t>(::syscall(SYS_gettid))};
}

TEST(CallerReaderTest, DescribesTheCallingThread) {
  CallerReader::Options opt;
  opt.machine_id = "0123456789abcdef0123456789abcdef";
  CallerReader reader(opt);
  auto s = reader.Read(Self(), /*hash_exe=*/true);
  ASSERT_TRUE(s.ok()) << s.status().message();
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe);
  ASSERT_GT(n, 0);
  EXPECT_EQ(s->exe, std::string(exe, static_cast<size_t>(n)));
  const std::string image = Slurp(s->exe);
  EXPECT_EQ(s->exe_sha256,
            crypto::Sha256Hex(ByteSpan(reinterpret_cast<const uint8_t*>(image.data()),
                                       image.size())));
  std::string comm = Slurp("/proc/thread-self/comm");
  comm.pop_back();
  EXPECT_EQ(s->comm, comm);
  const std::string cgroup = Slurp("/proc/self/cgroup");
  const size_t at = cgroup.find("0::");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(s->cgroup, cgroup.substr(at + 3, cgroup.find('\n', at) - at - 3));
  EXPECT_EQ(s->machine_id, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(s->uid, ::getuid());
  EXPECT_EQ(s->pid, Self().pid);
  gid_t groups[256];
  int ng = ::getgroups(256, groups);
  ASSERT_GE(ng, 0);
  EXPECT_EQ(s->groups.size(), static_cast<size_t>(ng));
}

TEST(CallerReaderTest, HashesAnExecutableOnceAndReusesTheSubject) {
  CallerReader reader({});
  ASSERT_TRUE(reader.Read(Self(), true).ok());
  ASSERT_TRUE(reader.Read(Self(), true).ok());
  EXPECT_EQ(reader.exe_hashes(), 1u);
  // Without a hash requested, none is computed for a fresh reader.
  CallerReader plain({});
  auto s = plain.Read(Self(), false);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->exe_sha256.empty());
  EXPECT_EQ(plain.exe_hashes(), 0u);
}

TEST(CallerReaderTest, AnExitedCallerIsDenied) {
  pid_t child = ::fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  CallerReader reader({});
  auto s = reader.Read({0, 0, child}, false);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.status().message().find(std::to_string(child)), std::string::npos);
}

TEST(CallerReaderTest, AnInvisibleCallerIsDenied) {
  CallerReader reader({});
  auto s = reader.Read({0, 0, 0}, false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("not visible"), std::string::npos);
}

TEST(CallerReaderTest, AProcWithoutACgroupV2LineIsDenied) {
  testing::TempDir dir;
  const std::string task = dir.path() + "/42";
  ASSERT_EQ(::mkdir(task.c_str(), 0755), 0);
  std::ofstream(task + "/status") << "Name:\tx\nGroups:\t1 2\n";
  std::ofstream(task + "/comm") << "x\n";
  std::ofstream(task + "/cgroup") << "1:cpu:/\n";
  ASSERT_EQ(::symlink("/bin/true", (task + "/exe").c_str()), 0);
  std::ofstream(task + "/stat") << "42 (x) S\n";
  CallerReader::Options opt;
  opt.proc_root = dir.path();
  CallerReader reader(opt);
  auto s = reader.Read({0, 0, 42}, false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("no cgroup v2"), std::string::npos);
  std::ofstream(task + "/cgroup") << "0::/a/b\n";
  auto ok = reader.Read({0, 0, 42}, false);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->cgroup, "/a/b");
  EXPECT_EQ(ok->groups, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(ok->exe, "/bin/true");
}

TEST(MachineIdTest, ReadsAndValidates) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/good") << "0123456789abcdef0123456789abcdef\n";
  std::ofstream(dir.path() + "/bad") << "xyz\n";
  auto good = ReadMachineId(dir.path() + "/good");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, "0123456789abcdef0123456789abcdef");
  EXPECT_FALSE(ReadMachineId(dir.path() + "/bad").ok());
  EXPECT_FALSE(ReadMachineId(dir.path() + "/missing").ok());
}

}  // namespace
}  // namespace ctfs::fs
