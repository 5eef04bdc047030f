// SPDX-License-Identifier: Apache-2.0
// The ServedTree test fixture: a key set, a plain model file with tensors of awkward sizes, its
// encrypted copy (4096-byte chunks) and passthrough files; helpers to build trees, read them
// whole or as spans, and wait for prefetch jobs. Used by served_tree_test.cc (tree, plain view,
// revocation) and served_tree_prefetch_test.cc (decrypt-ahead, zero-copy reads).
#ifndef CTFS_TESTS_UNIT_FS_SERVED_TREE_FIXTURE_H_
#define CTFS_TESTS_UNIT_FS_SERVED_TREE_FIXTURE_H_

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "base/check.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "format/jwk.h"
#include "fs/encryptor.h"
#include "fs/served_tree.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait_for.h"

namespace ctfs::fs {

class ServedTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    enc_.kty = "oct";
    enc_.alg = "aes256gcm";
    enc_.kid = "e1";
    enc_.k = *crypto::RandomSecret(32);
    sign_.kty = "okp";
    sign_.alg = "ed25519";
    sign_.kid = "s1";
    sign_.d = *crypto::RandomSecret(32);
    auto x = *crypto::Ed25519PublicKeyFromSeed(sign_.d);
    sign_.x.assign(x.begin(), x.end());
    key_file_ = keys_dir_.File("k.jwk");
    ctfs::testing::WriteFile(key_file_, format::SerializeJwkSet({&enc_, &sign_}, true));
    ::chmod(key_file_.c_str(), 0600);

    // plain/: a model file with random tensors; src/: its encrypted copy + passthrough files.
    std::mt19937_64 rng(3);
    format::SafetensorsHeader h;
    h.has_metadata = true;
    h.metadata.push_back({"format", "pt"});
    uint64_t off = 0;
    for (uint64_t n : {5000u, 3u, 70000u, 0u, 123u}) {
      h.tensors.push_back(
          {"t" + std::to_string(h.tensors.size()), format::Dtype::kU8, {n}, off, off + n});
      off += n;
    }
    h.data_len = off;
    std::string data(off, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    Bytes prefix = format::BuildHeaderPrefix(format::SerializeHeaderJson(h));
    plain_ = std::string(prefix.begin(), prefix.end()) + data;
    ctfs::testing::WriteFile(dir_.File("plain.safetensors"), plain_);
    std::filesystem::create_directories(dir_.File("src/sub"));
    EncryptOptions opt;
    opt.chunk_size = 4096;
    ASSERT_TRUE(EncryptFile(dir_.File("plain.safetensors"), dir_.File("src/model.safetensors"),
                            enc_, sign_, opt, nullptr)
                    .ok());
    ctfs::testing::WriteFile(dir_.File("src/config.json"), "{\"a\":1}");
    ctfs::testing::WriteFile(dir_.File("src/sub/other.safetensors"), plain_);  // plain: passthrough
  }

  keys::KeyResolver Resolver() { return *keys::KeyResolver::Create({{key_file_}, false, false}); }

  std::string ReadAll(ServedTree& tree, uint64_t ino, size_t piece) {
    auto h = tree.Open(ino);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (!h.ok()) return "";
    std::string out;
    Bytes buf(piece);
    for (uint64_t off = 0;; off += piece) {
      auto n = tree.Read(*h, off, buf);
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (!n.ok() || *n == 0) break;
      out.append(buf.begin(), buf.begin() + *n);
    }
    return out;
  }

  // MakeTree creates and starts a tree over `src` (default: the fixture's src/).
  std::unique_ptr<ServedTree> MakeTree(const ServeOptions& opt, const std::string& src = "src") {
    auto resolver = Resolver();
    auto tree = ServedTree::Create(dir_.File(src), resolver, opt, nullptr);
    EXPECT_TRUE(tree.ok()) << tree.status().ToString();
    if (!tree.ok()) return nullptr;
    (*tree)->StartWorkers();
    return std::move(*tree);
  }

  // Detector: a tree without prefetcher and its model.safetensors open, so that PlanReadAhead
  // (the sequential-access detector) is the test's alone.
  struct Detector {
    std::unique_ptr<ServedTree> tree;
    OpenHandle handle;
    const PlainFile& file() const { return FileOf(*tree, handle); }
  };
  // FileOf: the PlainFile behind `h`, for tests that call PlainFile directly. The reference
  // escapes ServedTree::WithFile, which the product never does; these tests never revoke, so
  // it stays valid for the tree's life.
  static const PlainFile& FileOf(const ServedTree& tree, const OpenHandle& h) {
    const PlainFile* f = nullptr;
    EXPECT_TRUE(tree.WithFile(h, [&](const PlainFile& p) { f = &p; }).ok());
    CTFS_CHECK(f != nullptr);
    return *f;
  }
  static ServeOptions PrefetchOptionsNone() {
    ServeOptions opt;
    opt.prefetch_bytes = 0;
    opt.prefetch_threads = 0;
    return opt;
  }
  std::optional<Detector> MakeDetector() {
    auto tree = MakeTree(PrefetchOptionsNone());
    if (tree == nullptr) return std::nullopt;
    auto h = tree->Open(Ino(*tree, "model.safetensors"));
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (!h.ok()) return std::nullopt;
    return Detector{std::move(tree), std::move(*h)};
  }

  // Flat: a read-ahead window of `len` from a stream's first read on (no growth).
  static PlainFile::AheadWindow Flat(uint64_t len) { return {.first_len = len, .max_len = len}; }

  static uint64_t Ino(const ServedTree& tree, const std::string& name) {
    const TreeNode* n = tree.tree().Lookup(kRootIno, name);
    EXPECT_NE(n, nullptr) << name;
    return n ? n->ino : 0;
  }

  // The plain header's length: where the data region starts in the plain view.
  uint64_t PrefixLen() const {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>(plain_[i]);
    return 8 + n;
  }

  // ReadSpansAll reads [off, off + len) with ReadSpans; returns the concatenated spans, or
  // nullopt if ReadSpans declined.
  static std::optional<std::string> SpansText(ServedTree& tree, const OpenHandle& h, uint64_t off,
                                              size_t len) {
    ChunkSpans spans;
    auto r = tree.ReadSpans(h, off, len, spans);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !*r) {
      EXPECT_TRUE(spans.spans.empty()) << "declined, yet spans were returned";
      return std::nullopt;
    }
    EXPECT_EQ(spans.spans.size(), spans.chunks.size());
    std::string out;
    for (ByteSpan s : spans.spans) out += AsStringView(s);
    return out;
  }

  // Chunk size of the fixture's encrypted file, and the tensor layout of its data region.
  static constexpr uint64_t kChunk = 4096;
  static constexpr uint64_t kT2Begin = 5003;  // t0: [0, 5000), t1: [5000, 5003), t2: 70000 B
  static constexpr uint64_t kDataLen = 5000 + 3 + 70000 + 0 + 123;

  ctfs::testing::TempDir dir_, keys_dir_;
  format::Jwk enc_, sign_;
  std::string key_file_;
  std::string plain_;
};

// WaitForPrefetch waits until at least `jobs` prefetch jobs ran and `cached` bytes are cached.
inline ::testing::AssertionResult WaitForPrefetch(const ServedTree& tree, uint64_t jobs,
                                                  uint64_t cached) {
  if (ctfs::testing::WaitFor(
          [&] { return tree.prefetched() >= jobs && tree.cache().cached_bytes() >= cached; })) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << tree.prefetched() << " jobs, " << tree.cache().cached_bytes() << " bytes cached";
}

// PrefetchOptions: decrypt-ahead of `prefetch_bytes` on `threads` threads; by default one
// chunk per job (run), so that job counts are chunk counts.
inline ServeOptions PrefetchOptions(size_t prefetch_bytes, size_t threads,
                                    size_t cache_bytes = 256u << 20,
                                    size_t run_bytes = 4096 /* kChunk */) {
  ServeOptions opt;
  opt.cache_bytes = cache_bytes;
  opt.prefetch_bytes = prefetch_bytes;
  opt.prefetch_threads = threads;
  opt.prefetch_run_bytes = run_bytes;
  return opt;
}

}  // namespace ctfs::fs

#endif  // CTFS_TESTS_UNIT_FS_SERVED_TREE_FIXTURE_H_
