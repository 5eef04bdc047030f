// SPDX-License-Identifier: Apache-2.0
// Where served chunks lie in memory (fs/copy_alignment.h): for a model whose tensors start 1,
// 16 and 63 bytes past a page in the plain view, every span ReadSpans hands to the FUSE reply
// must sit at a copy distance outside the slow window from where its bytes land in the page
// cache; and EncryptedFile::AuthUnitLead must keep the pread of each unit's ciphertext out of
// it too. Copied replies (tensors stored in plain) get a buffer placed by CopyLead, which must
// keep the pread of those tensors out of the window as well.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fs/chunk_buffer_pool.h"
#include "fs/copy_alignment.h"
#include "fs/encrypted_file.h"
#include "tests/unit/fs/served_tree_fixture.h"

namespace ctfs::fs {
namespace {

constexpr uint64_t kPage = kCopyPageLen;

class ServedTreeAlignmentTest : public ServedTreeTest {
 protected:
  // Builds aligned/model.safetensors: a filler tensor, then tensors whose plain-view starts
  // lie kTargets bytes past a page (each spans several 4096-byte chunks, so every chunk of a
  // tensor does too), then one more.
  void SetUp() override {
    ServedTreeTest::SetUp();
    // Sizes of 12288-16383 bytes keep every number in the header at 5 digits, so the header
    // length does not change while they are adjusted.
    std::vector<uint64_t> sizes(kTargets.size() + 1, 12288);
    format::SafetensorsHeader h;
    for (int round = 0; round < 2; ++round) {
      h = Header(sizes);
      uint64_t start = format::BuildHeaderPrefix(format::SerializeHeaderJson(h)).size();
      for (size_t i = 0; i < kTargets.size(); ++i) {  // sizes[i] places tensor i + 1
        sizes[i] = 12288 + (kTargets[i] + kPage - (start + 12288) % kPage) % kPage;
        start += sizes[i];
      }
    }
    h = Header(sizes);
    std::mt19937_64 rng(7);
    std::string data(h.data_len, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    Bytes prefix = format::BuildHeaderPrefix(format::SerializeHeaderJson(h));
    aligned_plain_ = std::string(prefix.begin(), prefix.end()) + data;
    // Guard the layout the test is about.
    for (size_t i = 0; i < kTargets.size(); ++i) {
      ASSERT_EQ((prefix.size() + h.tensors[i + 1].begin) % kPage, kTargets[i])
          << "tensor " << i + 1;
    }
    ctfs::testing::WriteFile(dir_.File("aligned_plain.safetensors"), aligned_plain_);
    std::filesystem::create_directories(dir_.File("aligned"));
    EncryptOptions opt;
    opt.chunk_size = 4096;
    ASSERT_TRUE(EncryptFile(dir_.File("aligned_plain.safetensors"),
                            dir_.File("aligned/model.safetensors"), enc_, sign_, opt, nullptr)
                    .ok());
  }

  static format::SafetensorsHeader Header(const std::vector<uint64_t>& sizes) {
    format::SafetensorsHeader h;
    uint64_t off = 0;
    for (uint64_t n : sizes) {
      h.tensors.push_back(
          {"t" + std::to_string(h.tensors.size()), format::Dtype::kU8, {n}, off, off + n});
      off += n;
    }
    h.data_len = off;
    return h;
  }

  static constexpr std::array<uint64_t, 5> kTargets = {16, 1, 63, 2000, 0};
  std::string aligned_plain_;
};

TEST_F(ServedTreeAlignmentTest, RepliesNeverCopyAtASlowDistance) {
  for (bool prefetch : {false, true}) {
    SCOPED_TRACE(prefetch ? "with decrypt-ahead" : "misses only");
    auto tree = MakeTree(
        prefetch ? PrefetchOptions(64 << 10, 2, 256u << 20, 16 << 10) : PrefetchOptionsNone(),
        "aligned");
    ASSERT_NE(tree, nullptr);
    auto h = tree->Open(Ino(*tree, "model.safetensors"));
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    const uint64_t size = aligned_plain_.size();
    size_t spans_seen = 0;
    // As the kernel asks: page-aligned reads (of up to 16 KiB), in order.
    for (uint64_t off = 0; off < size; off += 4 * kPage) {
      ChunkSpans spans;
      auto r = tree->ReadSpans(*h, off, 4 * kPage, spans);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (!*r) continue;       // the header: copied, not spans
      uint64_t dst_off = off;  // where the span's first byte lands in the page cache
      for (ByteSpan s : spans.spans) {
        const uint64_t src = reinterpret_cast<uintptr_t>(s.data());
        EXPECT_FALSE(SlowCopyDistance(dst_off - src))
            << "span for plain offset " << dst_off << " is " << (dst_off - src) % kPage
            << " bytes behind its page-cache position";
        ASSERT_EQ(AsStringView(s), std::string_view(aligned_plain_).substr(dst_off, s.size()));
        dst_off += s.size();
        ++spans_seen;
      }
    }
    EXPECT_GT(spans_seen, 20u);
  }
}

TEST_F(ServedTreeAlignmentTest, UnitLeadsKeepThePreadFastToo) {
  auto resolver = Resolver();
  auto f = EncryptedFile::Open(dir_.File("aligned/model.safetensors"), resolver);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const EncryptedFile& ef = **f;
  const uint64_t served_data = ef.plain_prefix().size();
  const uint64_t cipher_data = ef.header().data_start();
  ASSERT_NE(served_data % kPage, cipher_data % kPage) << "the test needs the two to differ";
  size_t led = 0;
  for (size_t t = 0; t < ef.header().tensors.size(); ++t) {
    for (uint64_t u = 0; u < ef.NumAuthUnits(t); ++u) {
      const uint64_t unit_off = ef.header().tensors[t].begin + u * 4096;
      const uint64_t served_off = served_data + unit_off, cipher_off = cipher_data + unit_off;
      for (bool direct : {false, true}) {
        const size_t lead = ef.AuthUnitLead(t, u, direct);
        EXPECT_EQ(lead, ChunkLead(served_off,
                                  direct ? std::nullopt : std::optional<uint64_t>(cipher_off)));
        EXPECT_FALSE(SlowCopyDistance(served_off - lead)) << t << "/" << u;
        if (!direct) {
          EXPECT_FALSE(SlowCopyDistance(lead - cipher_off)) << t << "/" << u;
        }
        led += lead != 0;
      }
    }
  }
  EXPECT_GT(led, 0u) << "the layout must need leads";
}

// A partly encrypted model (tensor "e..." encrypted, the rest stored in plain) whose encrypted
// header is longer than the plain one by an amount that puts every pread of a plain tensor
// into a buffer at lead 0 in the slow window. The encrypted tensor's name, which only the
// encrypted header holds twice, sets that difference.
class CopiedReplyAlignmentTest : public ServedTreeTest {
 protected:
  void SetUp() override {
    ServedTreeTest::SetUp();
    std::filesystem::create_directories(dir_.File("partial"));
    ctfs::testing::WriteFile(dir_.File("partial/config.json"), "{}");
    size_t name_len = 1;
    for (int round = 0; round < 2; ++round) {
      ASSERT_NO_FATAL_FAILURE(Build(name_len));
      // Aim at a distance of 32: stored_minus_served = -32 modulo a page. Each character of
      // the name adds one byte to the difference (header padding moves it by up to 7).
      const uint64_t now = stored_minus_served_ % kPage;
      name_len += (kPage - 32 - now + kPage) % kPage;
      if (SlowCopyDistance(0 - stored_minus_served_)) break;
    }
    ASSERT_TRUE(SlowCopyDistance(0 - stored_minus_served_))
        << "the layout must put a lead-0 pread in the slow window (difference "
        << stored_minus_served_ % kPage << ")";
  }

  void Build(size_t name_len) {
    const std::string enc_name = "e" + std::string(name_len - 1, 'a');
    format::SafetensorsHeader h;
    uint64_t off = 0;
    for (auto [name, n] : std::vector<std::pair<std::string, uint64_t>>{
             {"p0", 20000}, {enc_name, 9000}, {"p1", 30001}, {"p2", 5000}}) {
      h.tensors.push_back({name, format::Dtype::kU8, {n}, off, off + n});
      off += n;
    }
    h.data_len = off;
    std::mt19937_64 rng(11);
    std::string data(off, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    Bytes prefix = format::BuildHeaderPrefix(format::SerializeHeaderJson(h));
    partial_plain_ = std::string(prefix.begin(), prefix.end()) + data;
    ctfs::testing::WriteFile(dir_.File("partial_plain.safetensors"), partial_plain_);
    EncryptOptions opt;
    opt.chunk_size = 4096;
    opt.tensor_globs = {enc_name};
    ASSERT_TRUE(EncryptFile(dir_.File("partial_plain.safetensors"),
                            dir_.File("partial/model.safetensors"), enc_, sign_, opt, nullptr)
                    .ok());
    auto resolver = Resolver();
    auto f = EncryptedFile::Open(dir_.File("partial/model.safetensors"), resolver);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_EQ((*f)->plain_file_len(), partial_plain_.size());
    served_data_ = (*f)->plain_prefix().size();
    stored_minus_served_ = (*f)->header().data_start() - served_data_;
    plain_tensors_.clear();
    for (size_t i = 0; i < (*f)->header().tensors.size(); ++i) {
      if ((*f)->IsTensorEncrypted(i)) continue;
      const auto& t = (*f)->header().tensors[i];
      plain_tensors_.push_back({served_data_ + t.begin, served_data_ + t.end});
    }
  }

  std::string partial_plain_;  // the plain file the mount must serve
  uint64_t served_data_ = 0;
  uint64_t stored_minus_served_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> plain_tensors_;  // served [begin, end)
};

TEST_F(CopiedReplyAlignmentTest, PlainTensorsArePreadAtAFastDistance) {
  auto tree = MakeTree(PrefetchOptionsNone(), "partial");
  ASSERT_NE(tree, nullptr);
  auto h = tree->Open(Ino(*tree, "model.safetensors"));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(plain_tensors_.size(), 3u);
  ReusedBuffer buffer;
  size_t preads = 0;
  // As the kernel asks: page-aligned reads (16 KiB, one from every page), placed as ops.cc
  // places the copied ones.
  for (uint64_t off = 0; off < partial_plain_.size(); off += kPage) {
    const size_t lead = tree->CopyLead(*h, off);
    EXPECT_FALSE(SlowCopyDistance(off - lead)) << "reply of the read at " << off;
    for (auto [begin, end] : plain_tensors_) {
      const uint64_t first = std::max(begin, off);  // the tensor's first byte in this read
      if (first >= std::min(end, off + 4 * kPage)) continue;
      const uint64_t in_buffer = lead + (first - off);
      EXPECT_FALSE(SlowCopyDistance(in_buffer - (first + stored_minus_served_)))
          << "pread of plain offset " << first << " in the read at " << off << ", lead " << lead;
      ++preads;
    }
    auto span = buffer.Span(4 * kPage, lead);
    ASSERT_TRUE(span.ok()) << span.status().ToString();
    ASSERT_EQ(reinterpret_cast<uintptr_t>(span->data()) % kPage, lead);
    auto n = tree->Read(*h, off, *span);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    ASSERT_EQ(AsStringView(span->first(*n)), std::string_view(partial_plain_).substr(off, *n));
  }
  EXPECT_GT(preads, 20u);
  // A passthrough file's bytes lie at their served offsets: no lead.
  auto pass = tree->Open(Ino(*tree, "config.json"));
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(tree->CopyLead(*pass, 0), 0u);
}

}  // namespace
}  // namespace ctfs::fs
