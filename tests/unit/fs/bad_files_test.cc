// SPDX-License-Identifier: Apache-2.0
// Damaged and misplaced files in the source tree are never served as if they were plain: every
// *.safetensors must validate, a file using a reserved CryptoTensors name must be a complete
// CryptoTensors file, and a CryptoTensors file must be named *.safetensors. Each case refuses
// the mount naming the file and the rule, or, with allow_bad_files, answers EIO for that file
// while the rest is served.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "fs/served_tree.h"
#include "fs/source_file_class.h"
#include "tests/unit/fs/served_tree_fixture.h"

namespace ctfs::fs {
namespace {

using ctfs::testing::ReadFile;
using ctfs::testing::WriteFile;

// Split: a safetensors file's header JSON and data region.
struct Split {
  std::string json, data;
};
Split SplitFile(const std::string& raw) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>(raw[static_cast<size_t>(i)]);
  return {raw.substr(8, n), raw.substr(8 + n)};
}
std::string Join(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(n >> (8 * i));
  return out + json + data;
}
// RemoveMember removes `"key":"<string>",` from JSON text (the value has escaped quotes only).
std::string RemoveMember(std::string json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\":\"");
  if (at == std::string::npos) return json;
  size_t end = at + key.size() + 4;
  while (end < json.size() && !(json[end] == '"' && json[end - 1] != '\\')) ++end;
  if (end + 1 < json.size() && json[end + 1] == ',') ++end;
  json.erase(at, end + 1 - at);
  return json;
}
std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

struct BadCase {
  std::string name;     // file name in the source directory
  std::string content;  // its bytes
  std::string rule;     // a phrase the error must contain
};

class BadFilesTest : public ServedTreeTest {
 protected:
  std::vector<BadCase> Cases() {
    const std::string enc = ReadFile(dir_.File("src/model.safetensors"));
    const Split e = SplitFile(enc), p = SplitFile(plain_);
    std::vector<BadCase> cases;
    cases.push_back({"cut.safetensors", enc.substr(0, 8 + e.json.size() / 2), "truncated"});
    cases.push_back({"dupkey.safetensors",
                     Join(Replace(e.json, "\"format\":\"pt\"", "\"format\":\"pt\",\"format\":\"pt\""),
                          e.data),
                     "damaged CryptoTensors file"});
    cases.push_back({"overlap.safetensors",
                     Join(Replace(e.json, "\"data_offsets\":[5000,5003]", "\"data_offsets\":[0,3]"),
                          e.data),
                     "not a valid"});
    cases.push_back({"stripped.safetensors", Join(RemoveMember(e.json, "__encryption__"), e.data),
                     "no __encryption__"});
    cases.push_back({"signed-plain.safetensors",
                     Join(Replace(p.json, "\"format\":\"pt\"",
                                  "\"format\":\"pt\",\"__signature__\":\"x\""),
                          p.data),
                     "reserved name __signature__"});
    // Unsigned and malformed: found by the open_file fuzzer; used to abort the whole scan, so
    // --allow-bad-files could not serve the rest.
    cases.push_back({"badplainheader.safetensors",
                     Join(Replace(e.json, "\"format\":\"pt\"",
                                  "\"format\":\"pt\",\"__ctfs_plain_header__\":\"!!!!\""),
                          e.data),
                     "__ctfs_plain_header__"});
    cases.push_back({"text.safetensors", "hello, not a model\n", "not a safetensors file"});
    cases.push_back({"empty.safetensors", "", "not a safetensors file"});
    cases.push_back({"model.bin", enc, "not named *.safetensors"});
    return cases;
  }

  // InCase makes source directory `case` holding config.json and `c`.
  std::string InCase(const BadCase& c) {
    const std::string dir = dir_.File("case-" + c.name);
    std::filesystem::create_directories(dir);
    WriteFile(dir + "/config.json", "{\"a\":1}");
    WriteFile(dir + "/" + c.name, c.content);
    return dir;
  }
};

TEST_F(BadFilesTest, EachRefusesTheMountNamingFileAndRule) {
  auto resolver = Resolver();
  for (const BadCase& c : Cases()) {
    SCOPED_TRACE(c.name);
    auto t = ServedTree::Create(InCase(c), resolver, {}, nullptr);
    ASSERT_FALSE(t.ok()) << "mounted with a bad " << c.name;
    EXPECT_NE(t.status().message().find(c.name), std::string::npos) << t.status().message();
    EXPECT_NE(t.status().message().find(c.rule), std::string::npos) << t.status().message();
  }
}

TEST_F(BadFilesTest, AllowBadFilesAnswersEioForThemAndServesTheRest) {
  auto resolver = Resolver();
  for (const BadCase& c : Cases()) {
    SCOPED_TRACE(c.name);
    ServeOptions opt;
    opt.allow_bad_files = true;
    std::vector<std::string> warnings;
    auto t = ServedTree::Create(InCase(c), resolver, opt, &warnings);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find(c.name), std::string::npos) << warnings[0];
    const TreeNode* bad = (*t)->tree().Lookup(kRootIno, c.name);
    ASSERT_NE(bad, nullptr) << "a refused file is still listed";
    EXPECT_EQ(bad->kind, TreeNode::Kind::kRefused);
    EXPECT_EQ(bad->size, 0u) << "nothing of a refused file is readable";
    EXPECT_EQ((*t)->Open(bad->ino).status().code(), StatusCode::kDataLoss);
    EXPECT_TRUE((*t)->Open((*t)->tree().Lookup(kRootIno, "config.json")->ino).ok());
  }
}

TEST_F(BadFilesTest, ManyRefusedFilesAreCounted) {
  const std::string dir = dir_.File("many");
  std::filesystem::create_directories(dir);
  for (int i = 0; i < 3; ++i) WriteFile(dir + "/bad" + std::to_string(i) + ".safetensors", "x");
  auto resolver = Resolver();
  auto t = ServedTree::Create(dir, resolver, {}, nullptr);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("2 more file(s) refused: bad1.safetensors bad2.safetensors"),
            std::string::npos)
      << t.status().message();
}

TEST_F(BadFilesTest, PlainFilesUnderOtherNamesPassThrough) {
  const std::string dir = dir_.File("other-names");
  std::filesystem::create_directories(dir);
  WriteFile(dir + "/model.st", plain_);  // a plain safetensors file under another name
  WriteFile(dir + "/tokenizer.json", "{\"__encryption__\": \"just a word in a JSON file\"}");
  // A valid (empty) safetensors header: N = 8, "{}" and padding.
  WriteFile(dir + "/blob.bin", std::string("\x08\x00\x00\x00\x00\x00\x00\x00{}      ", 16));
  auto resolver = Resolver();
  auto t = ServedTree::Create(dir, resolver, {}, nullptr);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  for (const char* name : {"model.st", "tokenizer.json", "blob.bin"}) {
    const TreeNode* n = (*t)->tree().Lookup(kRootIno, name);
    ASSERT_NE(n, nullptr) << name;
    EXPECT_EQ(n->kind, TreeNode::Kind::kPassthrough) << name;
  }
}

TEST_F(BadFilesTest, SymlinksAndSpecialFilesAreNotShown) {
  const std::string dir = dir_.File("specials");
  std::filesystem::create_directories(dir + "/d");
  WriteFile(dir + "/config.json", "{}");
  ASSERT_EQ(::symlink("/etc/passwd", (dir + "/passwd").c_str()), 0);
  ASSERT_EQ(::symlink(dir_.File("src").c_str(), (dir + "/srclink").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir + "/fifo.safetensors").c_str(), 0644), 0);
  std::vector<std::string> skipped;
  auto resolver = Resolver();
  auto t = ServedTree::Create(dir, resolver, {}, &skipped);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const ModelTree& mt = (*t)->tree();
  EXPECT_NE(mt.Lookup(kRootIno, "config.json"), nullptr);
  EXPECT_NE(mt.Lookup(kRootIno, "d"), nullptr);
  for (const char* name : {"passwd", "srclink", "fifo.safetensors"}) {
    EXPECT_EQ(mt.Lookup(kRootIno, name), nullptr) << name;
  }
  EXPECT_EQ(skipped.size(), 3u);
  EXPECT_EQ(mt.FileCount(), 1u);
}

TEST_F(BadFilesTest, PassthroughFileSwappedAfterTheMountIsRefusedAtOpen) {
  auto tree = MakeTree({});
  ASSERT_NE(tree, nullptr);
  const uint64_t ino = Ino(*tree, "config.json");
  ASSERT_TRUE(tree->Open(ino).ok());
  const std::string path = dir_.File("src/config.json");
  WriteFile(dir_.File("secret"), "root:x:0:0");
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_EQ(::symlink(dir_.File("secret").c_str(), path.c_str()), 0);
  auto h = tree->Open(ino);
  ASSERT_FALSE(h.ok()) << "opened config.json through a symlink swapped in after the mount";
  EXPECT_EQ(h.status().code(), StatusCode::kDataLoss);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0);
  EXPECT_EQ(tree->Open(ino).status().code(), StatusCode::kDataLoss) << "a FIFO";
}

TEST_F(BadFilesTest, EncryptedFileSwappedAfterTheMountKeepsServingTheVerifiedOne) {
  // The daemon holds the verified file open: a replacement at the path changes nothing served.
  auto tree = MakeTree({});
  ASSERT_NE(tree, nullptr);
  WriteFile(dir_.File("evil.safetensors"), plain_);
  std::filesystem::rename(dir_.File("evil.safetensors"), dir_.File("src/model.safetensors"));
  EXPECT_EQ(ReadAll(*tree, Ino(*tree, "model.safetensors"), 4096), plain_);
}

TEST_F(BadFilesTest, EmptyReadsReadNothing) {
  // A zero-length read (the kernel sends none, a caller might) must not touch the buffer: its
  // data() may be null (UBSan checks the memcpy in the ASan build).
  auto tree = MakeTree({});
  ASSERT_NE(tree, nullptr);
  for (const char* name : {"model.safetensors", "config.json"}) {
    auto h = tree->Open(Ino(*tree, name));
    ASSERT_TRUE(h.ok());
    auto n = tree->Read(*h, 0, MutableByteSpan());
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_EQ(*n, 0u) << name;
  }
}

TEST_F(BadFilesTest, HandleStaysSafeAfterRevoke) {
  // An open handle outlives Revoke() (the kernel releases it later): using and destroying it
  // afterwards must touch nothing Revoke() freed (ASan checks this build).
  auto tree = MakeTree({});
  ASSERT_NE(tree, nullptr);
  auto enc = tree->Open(Ino(*tree, "model.safetensors"));
  auto pass = tree->Open(Ino(*tree, "config.json"));
  ASSERT_TRUE(enc.ok() && pass.ok());
  tree->Revoke();
  Bytes buf(64);
  ChunkSpans spans;
  for (const OpenHandle* h : {&*enc, &*pass}) {
    EXPECT_EQ(tree->Read(*h, 0, buf).status().code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(tree->ReadSpans(*h, 0, 64, spans).status().code(), StatusCode::kPermissionDenied);
    EXPECT_EQ(tree->CopyLead(*h, 0), 0u);
    EXPECT_EQ(tree->WithFile(*h, [](const PlainFile&) {}).code(), StatusCode::kPermissionDenied);
  }
  EXPECT_TRUE(enc->encrypted());
  EXPECT_FALSE(pass->encrypted());
}

}  // namespace
}  // namespace ctfs::fs
