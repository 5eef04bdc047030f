// SPDX-License-Identifier: Apache-2.0
// The fault matrix: the backing file of a mounted model fails (EIO), comes back short, looks
// truncated, or returns changed bytes at chosen offsets, through the I/O seam
// (ServeOptions::wrap_file, tests/testing/faulty_file.h). Every read goes the way the FUSE
// layer sends it (zero-copy spans, else a copied read), with decrypt-ahead running. Expected:
// reads touching an affected chunk fail, every other read returns exactly the plaintext, and
// no read ever returns wrong bytes. Each case prints one line of the matrix.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "fs/served_tree.h"
#include "tests/testing/faulty_file.h"
#include "tests/unit/fs/served_tree_fixture.h"

namespace ctfs::fs {
namespace {

using ctfs::testing::Fault;
using ctfs::testing::FaultName;
using ctfs::testing::FaultPlan;
using ctfs::testing::FaultyFile;

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// ReadLikeFuse reads as fs/fuse/ops.cc does: spans into decrypted chunks where possible, else a
// copied read.
Result<std::string> ReadLikeFuse(const ServedTree& tree, const OpenHandle& h, uint64_t off,
                                 size_t len) {
  ChunkSpans spans;
  CTFS_ASSIGN_OR_RETURN(bool direct, tree.ReadSpans(h, off, len, spans));
  std::string out;
  if (direct) {
    for (ByteSpan s : spans.spans) out += AsStringView(s);
    return out;
  }
  Bytes buf(len);
  CTFS_ASSIGN_OR_RETURN(size_t n, tree.Read(h, off, buf));
  return std::string(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
}

class FaultInjectionTest : public ServedTreeTest {
 protected:
  // A tree over src/ whose model.safetensors and config.json are read through FaultyFile.
  std::unique_ptr<ServedTree> MakeFaultyTree() {
    ServeOptions opt;
    opt.wrap_file = [plan = plan_](std::unique_ptr<RandomAccessFile> f)
        -> std::unique_ptr<RandomAccessFile> {
      if (EndsWith(f->path(), "/model.safetensors") || EndsWith(f->path(), "/config.json")) {
        return std::make_unique<FaultyFile>(std::move(f), plan);
      }
      return f;
    };
    return MakeTree(opt);
  }

  // Where the data region starts in the encrypted model file.
  uint64_t CipherDataStart() {
    const std::string raw = ctfs::testing::ReadFile(dir_.File("src/model.safetensors"));
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>(raw[static_cast<size_t>(i)]);
    return 8 + n;
  }

  // The plain range of the chunk holding data offset `data_off` (fixture layout, all
  // encrypted, 4096-byte chunks).
  std::pair<uint64_t, uint64_t> ChunkOf(uint64_t data_off) {
    const uint64_t begins[] = {0, 5000, kT2Begin, kT2Begin + 70000, kT2Begin + 70000};
    const uint64_t ends[] = {5000, 5003, kT2Begin + 70000, kT2Begin + 70000, kDataLen};
    for (size_t t = 0; t < 5; ++t) {
      if (data_off < begins[t] || data_off >= ends[t]) continue;
      const uint64_t lo = begins[t] + (data_off - begins[t]) / kChunk * kChunk;
      return {PrefixLen() + lo, PrefixLen() + std::min(ends[t], lo + kChunk)};
    }
    ADD_FAILURE() << "no tensor at data offset " << data_off;
    return {0, 0};
  }

  std::shared_ptr<FaultPlan> plan_ = std::make_shared<FaultPlan>();
};

struct Case {
  Fault fault;
  uint64_t data_off;  // where in the data region of the encrypted file
  const char* where;
};

TEST_F(FaultInjectionTest, EncryptedModelAnswersErrorsOnlyForAffectedChunks) {
  const uint64_t data_start = CipherDataStart();
  const Case cases[] = {
      {Fault::kEio, 4096 + 10, "t0 chunk 1"},      {Fault::kEio, kT2Begin + 5 * kChunk, "t2 chunk 5"},
      {Fault::kShort, 100, "t0 chunk 0"},          {Fault::kShort, kT2Begin + 9000, "t2 chunk 2"},
      {Fault::kEof, kT2Begin + 30000, "t2 chunk 7"}, {Fault::kEof, kDataLen - 1, "t4, last byte"},
      {Fault::kFlip, 4999, "t0 last byte"},        {Fault::kFlip, kT2Begin + 69999, "t2 last byte"},
      {Fault::kFlip, 5001, "t1 (3-byte tensor)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(FaultName(c.fault)) + " at " + c.where);
    plan_->Set({});
    auto tree = MakeFaultyTree();  // a fresh tree: nothing cached
    ASSERT_NE(tree, nullptr);
    plan_->Set({{data_start + c.data_off, 1, c.fault}});
    const uint64_t hits_before = plan_->hits();
    // Which plain bytes may fail: none (short reads are retried), the chunk holding the fault,
    // or (a truncated file) everything from that chunk on.
    std::pair<uint64_t, uint64_t> bad = {0, 0};
    if (c.fault != Fault::kShort) bad = ChunkOf(c.data_off);
    if (c.fault == Fault::kEof) bad.second = plain_.size();
    size_t ok_reads = 0, failed_reads = 0;
    for (size_t piece : {size_t{65536}, size_t{4096}, size_t{1000}}) {
      auto h = tree->Open(Ino(*tree, "model.safetensors"));
      ASSERT_TRUE(h.ok()) << h.status().ToString();
      for (uint64_t off = 0; off < plain_.size(); off += piece) {
        const uint64_t end = std::min<uint64_t>(off + piece, plain_.size());
        const bool touches_bad = off < bad.second && end > bad.first;
        auto r = ReadLikeFuse(*tree, *h, off, piece);
        if (r.ok()) {
          ++ok_reads;
          ASSERT_EQ(*r, plain_.substr(off, piece)) << "wrong bytes at " << off;
          EXPECT_FALSE(touches_bad) << "a read of [" << off << ", " << end
                                    << ") touching the damaged chunk succeeded";
        } else {
          ++failed_reads;
          EXPECT_TRUE(touches_bad) << "[" << off << ", " << end << "): " << r.status().ToString();
          EXPECT_NE(r.status().message().find("model.safetensors"), std::string::npos)
              << r.status().message();
        }
      }
    }
    EXPECT_GT(plan_->hits(), hits_before) << "the fault was never reached";
    if (c.fault != Fault::kShort) {
      EXPECT_GT(failed_reads, 0u);
    }
    std::printf("fault matrix: %-13s at %-20s (encrypted): %3zu reads right, %3zu failed, "
                "0 wrong\n",
                FaultName(c.fault), c.where, ok_reads, failed_reads);
  }
}

TEST_F(FaultInjectionTest, PassthroughFileIsServedAsStored) {
  const std::string config = "{\"a\":1}";
  const Fault faults[] = {Fault::kEio, Fault::kShort, Fault::kEof, Fault::kFlip};
  for (Fault f : faults) {
    SCOPED_TRACE(FaultName(f));
    plan_->Set({});
    auto tree = MakeFaultyTree();
    ASSERT_NE(tree, nullptr);
    plan_->Set({{3, 1, f}});
    auto h = tree->Open(Ino(*tree, "config.json"));
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    auto r = ReadLikeFuse(*tree, *h, 0, 4096);
    const char* outcome = "";
    switch (f) {
      case Fault::kEio:
      case Fault::kEof:
        EXPECT_FALSE(r.ok());
        outcome = "read fails (EIO)";
        break;
      case Fault::kShort:
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_EQ(*r, config);
        outcome = "right bytes";
        break;
      case Fault::kFlip: {
        // A file stored in plain carries no integrity: its bytes are served as they are now.
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        std::string flipped = config;
        flipped[3] ^= 1;
        EXPECT_EQ(*r, flipped);
        outcome = "changed bytes served (plain files carry no integrity)";
        break;
      }
    }
    std::printf("fault matrix: %-13s in config.json (passthrough): %s\n", FaultName(f), outcome);
  }
}

TEST_F(FaultInjectionTest, FaultAtMountTimeRefusesTheFile) {
  // A header that cannot be read: the mount is refused naming the file, or with
  // allow_bad_files that file answers EIO and the rest is served.
  plan_->Set({{0, 8, Fault::kEio}});
  ServeOptions opt;
  opt.wrap_file = [plan = plan_](std::unique_ptr<RandomAccessFile> f)
      -> std::unique_ptr<RandomAccessFile> {
    return std::make_unique<FaultyFile>(std::move(f), plan);
  };
  auto resolver = Resolver();
  auto refused = ServedTree::Create(dir_.File("src"), resolver, opt, nullptr);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("model.safetensors"), std::string::npos)
      << refused.status().message();
  opt.allow_bad_files = true;
  auto tree = ServedTree::Create(dir_.File("src"), resolver, opt, nullptr);
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ((*tree)->Open(Ino(**tree, "model.safetensors")).status().code(),
            StatusCode::kDataLoss);
  std::printf("fault matrix: EIO in the header at mount: mount refused naming the file; with "
              "--allow-bad-files the file answers EIO\n");
}

}  // namespace
}  // namespace ctfs::fs
