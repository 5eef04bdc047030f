// SPDX-License-Identifier: Apache-2.0
// Opening files of a tree that changes underneath: no symlink followed at any component, no
// escape from the root, no blocking on a FIFO, no opening of devices, and a snapshot identity
// that notices a replaced, resized or modified file.
#include "base/safe_open.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <string>

#include "tests/testing/temp_dir.h"

namespace ctfs {
namespace {

using ctfs::testing::ReadFile;
using ctfs::testing::TempDir;
using ctfs::testing::WriteFile;

class SafeOpenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.File("root/sub"));
    WriteFile(dir_.File("root/config.json"), "{\"a\":1}");
    WriteFile(dir_.File("root/sub/f.txt"), "inner");
    WriteFile(dir_.File("secret"), "outside the root");
    root_fd_ = UniqueFd(::open(dir_.File("root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_fd_.valid());
  }

  FileIdentity IdentityOf(const std::string& rel) {
    struct stat st;
    EXPECT_EQ(::stat(dir_.File("root/" + rel).c_str(), &st), 0);
    return FileIdentity::Of(st);
  }

  static std::string Contents(int fd) {
    std::string out(256, '\0');
    ssize_t n = ::pread(fd, out.data(), out.size(), 0);
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  }

  TempDir dir_;
  UniqueFd root_fd_;
};

TEST_F(SafeOpenTest, OpensFilesBeneathTheRoot) {
  auto fd = OpenBeneath(root_fd_.get(), "sub/f.txt", O_RDONLY);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  EXPECT_EQ(Contents(fd->get()), "inner");
  auto snap = OpenSnapshotFile(root_fd_.get(), "config.json", IdentityOf("config.json"), "cfg");
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ(Contents(snap->get()), "{\"a\":1}");
}

TEST_F(SafeOpenTest, RefusesSymlinksAtAnyComponentAndEscapes) {
  ASSERT_EQ(::symlink(dir_.File("secret").c_str(), dir_.File("root/link").c_str()), 0);
  ASSERT_EQ(::symlink(dir_.path().c_str(), dir_.File("root/dirlink").c_str()), 0);
  for (const char* rel : {"link", "dirlink/secret", "../secret", "sub/../../secret"}) {
    SCOPED_TRACE(rel);
    EXPECT_FALSE(OpenBeneath(root_fd_.get(), rel, O_RDONLY).ok());
  }
  EXPECT_FALSE(OpenBeneath(root_fd_.get(), dir_.File("secret"), O_RDONLY).ok()) << "absolute";
}

TEST_F(SafeOpenTest, SnapshotFileSwappedForSymlinkIsRefused) {
  // The config.json attack: the source file becomes a symlink to a file the reader must not see.
  const FileIdentity id = IdentityOf("config.json");
  ASSERT_EQ(::unlink(dir_.File("root/config.json").c_str()), 0);
  ASSERT_EQ(::symlink(dir_.File("secret").c_str(), dir_.File("root/config.json").c_str()), 0);
  auto fd = OpenSnapshotFile(root_fd_.get(), "config.json", id, "config.json");
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(fd.status().message().find("changed since the mount"), std::string::npos)
      << fd.status().message();
}

TEST_F(SafeOpenTest, SnapshotFileSwappedForSpecialFilesNeverBlocks) {
  const FileIdentity id = IdentityOf("config.json");
  const std::string path = dir_.File("root/config.json");
  auto swap_and_open = [&](const std::function<bool()>& make) {
    ::unlink(path.c_str());
    if (!make()) return std::string("skipped");
    const auto t0 = std::chrono::steady_clock::now();
    auto fd = OpenSnapshotFile(root_fd_.get(), "config.json", id, "config.json");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    EXPECT_FALSE(fd.ok());
    return fd.ok() ? std::string("opened") : fd.status().message();
  };
  EXPECT_NE(swap_and_open([&] { return ::mkfifo(path.c_str(), 0644) == 0; }).find("a FIFO"),
            std::string::npos);
  EXPECT_NE(swap_and_open([&] { return ::mkdir(path.c_str(), 0755) == 0; }).find("a directory"),
            std::string::npos);
  ::rmdir(path.c_str());
  const std::string sock = swap_and_open([&] {
    int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return false;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    const bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(s);
    return ok;
  });
  if (sock != "skipped") {
    EXPECT_NE(sock.find("a socket"), std::string::npos) << sock;
  }
  // A device node (root only): refused from its fstat, never opened.
  const std::string dev = swap_and_open(
      [&] { return ::mknod(path.c_str(), S_IFCHR | 0644, makedev(1, 3)) == 0; });
  if (dev != "skipped") {
    EXPECT_NE(dev.find("a character device"), std::string::npos) << dev;
  }
}

TEST_F(SafeOpenTest, SnapshotNoticesReplacedResizedModifiedAndGoneFiles) {
  const FileIdentity id = IdentityOf("config.json");
  const std::string path = dir_.File("root/config.json");
  auto open = [&] { return OpenSnapshotFile(root_fd_.get(), "config.json", id, "config.json"); };
  // Replaced by another file (rename over it): another inode.
  WriteFile(dir_.File("root/new.json"), "{\"a\":2}");
  ASSERT_EQ(::rename(dir_.File("root/new.json").c_str(), path.c_str()), 0);
  EXPECT_NE(open().status().message().find("replaced"), std::string::npos);
  // Grown and truncated in place (same inode): the size differs from the snapshot.
  ASSERT_EQ(::unlink(path.c_str()), 0);
  WriteFile(path, "{\"a\":1}");
  const FileIdentity id2 = IdentityOf("config.json");
  ASSERT_EQ(::truncate(path.c_str(), 3), 0);
  auto truncated = OpenSnapshotFile(root_fd_.get(), "config.json", id2, "config.json");
  EXPECT_NE(truncated.status().message().find("size changed"), std::string::npos);
  ASSERT_EQ(::truncate(path.c_str(), 100), 0);
  EXPECT_NE(OpenSnapshotFile(root_fd_.get(), "config.json", id2, "config.json")
                .status()
                .message()
                .find("size changed"),
            std::string::npos);
  // Same size, new modification time.
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(id2.size)), 0);
  struct timespec times[2] = {{0, UTIME_OMIT}, {id2.mtime.tv_sec + 10, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  EXPECT_NE(OpenSnapshotFile(root_fd_.get(), "config.json", id2, "config.json")
                .status()
                .message()
                .find("modified"),
            std::string::npos);
  // Gone.
  ASSERT_EQ(::unlink(path.c_str()), 0);
  EXPECT_EQ(OpenSnapshotFile(root_fd_.get(), "config.json", id2, "config.json").status().code(),
            StatusCode::kNotFound);
}

TEST_F(SafeOpenTest, ParentDirectorySwappedForSymlinkIsRefused) {
  const FileIdentity id = IdentityOf("sub/f.txt");
  std::filesystem::rename(dir_.File("root/sub"), dir_.File("elsewhere"));
  ASSERT_EQ(::symlink(dir_.File("elsewhere").c_str(), dir_.File("root/sub").c_str()), 0);
  auto fd = OpenSnapshotFile(root_fd_.get(), "sub/f.txt", id, "sub/f.txt");
  ASSERT_FALSE(fd.ok()) << "followed a symlinked parent directory";
  EXPECT_EQ(fd.status().code(), StatusCode::kDataLoss);
}

TEST_F(SafeOpenTest, OpenRegularAtRefusesEverythingElse) {
  ASSERT_EQ(::mkfifo(dir_.File("root/fifo").c_str(), 0644), 0);
  ASSERT_EQ(::symlink("config.json", dir_.File("root/link").c_str()), 0);
  EXPECT_TRUE(OpenRegularAt(root_fd_.get(), "config.json", "config.json").ok());
  for (const char* name : {"fifo", "link", "sub"}) {
    auto f = OpenRegularAt(root_fd_.get(), name, name);
    ASSERT_FALSE(f.ok()) << name;
    EXPECT_NE(f.status().message().find("not a regular file"), std::string::npos)
        << f.status().message();
  }
}

TEST(FileIdentity, DescribeChange) {
  struct stat st = {};
  st.st_mode = S_IFREG | 0644;
  st.st_dev = 1;
  st.st_ino = 2;
  st.st_size = 3;
  st.st_mtim = {4, 5};
  const FileIdentity id = FileIdentity::Of(st);
  EXPECT_EQ(DescribeChange(id, st), "");
  struct stat other = st;
  other.st_ino = 9;
  EXPECT_NE(DescribeChange(id, other), "");
  other = st;
  other.st_dev = 9;
  EXPECT_NE(DescribeChange(id, other), "");
  other = st;
  other.st_mtim.tv_nsec = 6;
  EXPECT_NE(DescribeChange(id, other), "");
  other = st;
  other.st_mode = S_IFIFO | 0644;
  EXPECT_EQ(DescribeChange(id, other), "it is a FIFO now");
}

}  // namespace
}  // namespace ctfs
