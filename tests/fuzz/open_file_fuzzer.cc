// SPDX-License-Identifier: Apache-2.0
// End to end: opens an arbitrary file as the mount would (header, crypto metadata, keys,
// signature, policy, key unwrap) with the frozen fixtures' keys, and reads every byte of its
// served view with several read sizes and offsets, through the same calls the FUSE layer makes
// (PlainFile::Read, ReadSpans, PlanReadAhead + PrefetchRun). A custom mutator
// (signed_file_mutator.h) makes structural changes to the fixtures and re-signs them, so that
// mutants reach decryption and the plain view.
//
// Oracles:
//   * nothing crashes or leaks; a refused file is an error naming the file, and a file whose
//     header is invalid, or plain, is refused;
//   * every read of an opened file returns exactly the bytes an independent decryption
//     (reference_decrypt.h) gives: the plain prefix, the plaintext of encrypted tensors and the
//     stored bytes of tensors stored in plain; a read fails (DataLoss) exactly when it touches a
//     unit that does not authenticate, and then its buffer is wiped: no byte is released;
//   * ReadSpans answers false exactly for ranges touching the header or a tensor stored in
//     plain; EncryptedFile::ReadData and ReadTensorRange agree with the served view;
//   * the served header parses and lists the same tensors.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "base/result.h"
#include "base/secret_bytes.h"
#include "format/crypt_metadata.h"
#include "format/jwk.h"
#include "format/safetensors_header.h"
#include "fs/chunk_cache.h"
#include "fs/copy_alignment.h"
#include "fs/encrypted_file.h"
#include "fs/plain_file.h"
#include "keys/key_resolver.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/reference_decrypt.h"
#include "tests/fuzz/signed_file_mutator.h"
#include "tests/testing/resign.h"

namespace ctfs::fuzz {
namespace {

// Env: the frozen fixtures' keys (tests/testdata/encrypted/keys.jwk) and the memfd that holds
// the file under test.
struct Env {
  std::optional<keys::KeyResolver> resolver;
  std::vector<format::Jwk> jwks;
  const format::Jwk* signer = nullptr;
  int memfd = -1;
  std::string path;  // /proc/self/fd/<memfd>
  std::optional<SignedFileMutator> mutator;
};

const Env& GetEnv() {
  static const Env* env = [] {
    auto* e = new Env;
    const std::string jwk_text = ReadFileOrDie(TestdataPath("encrypted/keys.jwk"));
    // The resolver loads key files only with safe permissions (mkstemp: 0600), at Create.
    std::string key_file = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    key_file += "/ctfs-fuzz-keys-XXXXXX";
    const int fd = ::mkstemp(key_file.data());
    FUZZ_CHECK(fd >= 0 && ::write(fd, jwk_text.data(), jwk_text.size()) ==
                              static_cast<ssize_t>(jwk_text.size()),
               "writing " + key_file);
    ::close(fd);
    // No env keys, no jku: a mutant must not make the fuzzer read other files.
    auto resolver = keys::KeyResolver::Create({{key_file}, false, false});
    ::unlink(key_file.c_str());
    FUZZ_CHECK(resolver.ok(), resolver.status().ToString());
    e->resolver.emplace(std::move(*resolver));
    auto jwks = format::ParseJwkDocument(jwk_text);
    FUZZ_CHECK(jwks.ok(), jwks.status().ToString());
    e->jwks = std::move(*jwks);
    e->signer = testing::FindSigner(e->jwks);
    FUZZ_CHECK(e->signer != nullptr, "keys.jwk has no signing key");
    e->memfd = ::memfd_create("ctfs-open-file-fuzzer", MFD_CLOEXEC);
    FUZZ_CHECK(e->memfd >= 0, "memfd_create");
    e->path = "/proc/self/fd/" + std::to_string(e->memfd);
    std::vector<std::string> fixtures;
    for (const char* name : {"ref_v2_aes256", "ref_v1_aes256", "ref_v2_chacha_partial",
                             "ref_v2_escapes", "ref_v2_zero_ties"}) {
      fixtures.push_back(ReadFileOrDie(TestdataPath(std::string("encrypted/") + name +
                                                    ".safetensors")));
    }
    e->mutator.emplace(*e->signer, *e->resolver, std::move(fixtures));
    return e;
  }();
  return *env;
}

// What the mount made of one file.
struct Mounted {
  Status header_status;    // fs::ReadHeader (S1-S15)
  bool encrypted = false;  // the header parsed and has __encryption__
  Result<std::unique_ptr<fs::PlainFile>> view = InternalError("not opened");
};

// OpenLikeTheMount is the one place that maps a fuzz input onto the fs API (when fs APIs
// change, adapt this function only). It makes `input` the backing file and does for it what
// the mount does: read and validate the header (as ModelTree::Scan does to classify the
// file), then, as ServedTree::Create does, open and verify it as a CryptoTensors file with the
// fixture keys and wrap it as the served view (no worker pool, no direct reads).
Mounted OpenLikeTheMount(ByteSpan input, fs::ChunkCache* cache) {
  const Env& env = GetEnv();
  FUZZ_CHECK(::ftruncate(env.memfd, 0) == 0 &&
                 ::pwrite(env.memfd, input.data(), input.size(), 0) ==
                     static_cast<ssize_t>(input.size()),
             "writing the memfd");
  Mounted m;
  auto hf = fs::ReadHeader(env.path);
  m.header_status = hf.status();
  m.encrypted = hf.ok() && format::IsEncrypted(hf->header);
  auto f = fs::EncryptedFile::Open(env.path, *env.resolver);
  if (f.ok()) {
    m.view = fs::PlainFile::FromEncrypted(std::move(*f), /*file_id=*/1, cache, /*pool=*/nullptr);
  } else {
    m.view = f.status();
  }
  return m;
}

// Expected: the served file as an independent decryption sees it.
struct Expected {
  Bytes bytes;                   // the whole view (zeros where a unit does not authenticate)
  std::vector<uint64_t> bad;     // bad[i]: bytes in [0, i) that no read may release
  std::vector<uint64_t> stored;  // stored[i]: bytes in [0, i) of tensors stored in plain
  uint64_t prefix_len = 0;

  uint64_t size() const { return bytes.size(); }
  bool AnyBad(uint64_t off, uint64_t end) const { return bad[end] != bad[off]; }
  bool AnyStored(uint64_t off, uint64_t end) const { return stored[end] != stored[off]; }
};

Expected Expect(const fs::EncryptedFile& ef, ByteSpan file) {
  const Env& env = GetEnv();
  const format::SafetensorsHeader& h = ef.header();
  const format::CryptMetadata& m = ef.crypt();
  Expected x;
  x.prefix_len = ef.plain_prefix().size();
  x.bytes = ef.plain_prefix();
  x.bytes.resize(x.prefix_len + h.data_len);
  std::vector<uint8_t> bad(x.bytes.size(), 0), stored(x.bytes.size(), 0);

  auto master = env.resolver->FindKey("oct", m.keys.enc.kid, m.keys.enc.jku);
  FUZZ_CHECK(master.ok(), "opened, but the oracle finds no master key");
  auto alg = ParseAeadAlg(master->alg);
  FUZZ_CHECK(alg.ok(), "master key alg");
  const CipherParams p{*alg, m.keys.chunked(), m.keys.chunked() ? m.keys.EffectiveChunkSize() : 0};
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const format::TensorInfo& t = h.tensors[i];
    const format::TensorCrypto* e = m.FindEntry(t.name);
    FUZZ_CHECK(ef.IsTensorEncrypted(i) == (e != nullptr), "IsTensorEncrypted of " + t.name);
    const ByteSpan cipher = file.subspan(h.data_start() + t.begin, t.byte_len());
    const uint64_t at = x.prefix_len + t.begin;
    MutableByteSpan out = MutableByteSpan(x.bytes).subspan(at, t.byte_len());
    if (e == nullptr) {
      std::copy(cipher.begin(), cipher.end(), out.begin());
      std::fill_n(stored.begin() + static_cast<long>(at), t.byte_len(), 1);
      continue;
    }
    std::optional<SecretBytes> dek = UnwrapKey(p, master->k, *e);
    FUZZ_CHECK(dek.has_value(), "opened, but the data key of " + t.name + " does not unwrap");
    std::vector<bool> unit_ok;
    DecryptTensor(p, *dek, *e, cipher, out, unit_ok);
    for (uint64_t u = 0; u < unit_ok.size(); ++u) {
      if (unit_ok[u]) continue;
      const uint64_t off = p.chunked ? u * p.chunk_size : 0;
      const uint64_t n = p.chunked ? std::min(p.chunk_size, t.byte_len() - off) : t.byte_len();
      std::fill_n(bad.begin() + static_cast<long>(at + off), n, 1);
    }
  }
  x.bad.assign(x.bytes.size() + 1, 0);
  x.stored.assign(x.bytes.size() + 1, 0);
  for (size_t i = 0; i < x.bytes.size(); ++i) {
    x.bad[i + 1] = x.bad[i] + bad[i];
    x.stored[i + 1] = x.stored[i] + stored[i];
  }
  return x;
}

// CheckRead: one PlainFile::Read against the oracle.
void CheckRead(const fs::PlainFile& view, const Expected& x, uint64_t off, size_t len) {
  // One guard byte past the buffer; never a null buffer (FUSE never passes one).
  Bytes storage(len + 1, 0xA5);
  const MutableByteSpan out(storage.data(), len);
  auto n = view.Read(off, out);
  FUZZ_CHECK(view.CopyLead(off) < fs::kCopyPageLen, "CopyLead");
  const uint64_t end = off >= x.size() ? off : std::min<uint64_t>(x.size(), off + len);
  const std::string where = "read [" + std::to_string(off) + ", +" + std::to_string(len) + ")";
  if (off < x.size() && x.AnyBad(off, end)) {
    FUZZ_CHECK(!n.ok(), where + " released bytes of a unit that does not authenticate");
    FUZZ_CHECK(n.status().code() == StatusCode::kDataLoss, where + ": " + n.status().ToString());
    FUZZ_CHECK(std::all_of(out.begin(), out.begin() + static_cast<long>(end - off),
                           [](uint8_t b) { return b == 0; }),
               where + " failed but left bytes in the buffer");
    return;
  }
  FUZZ_CHECK(n.ok(), where + " failed: " + n.status().ToString());
  FUZZ_CHECK(*n == end - off, where + " returned " + std::to_string(*n) + " bytes");
  FUZZ_CHECK(std::equal(out.begin(), out.begin() + static_cast<long>(*n),
                        x.bytes.begin() + static_cast<long>(off)),
             where + " returned other bytes");
  FUZZ_CHECK(std::all_of(storage.begin() + static_cast<long>(*n), storage.end(),
                         [](uint8_t b) { return b == 0xA5; }),
             where + " wrote past what it returned");
}

// CheckSpans: one PlainFile::ReadSpans against the oracle.
void CheckSpans(const fs::PlainFile& view, const Expected& x, uint64_t off, size_t len) {
  fs::ChunkSpans spans;
  auto r = view.ReadSpans(off, len, spans);
  const std::string where = "ReadSpans [" + std::to_string(off) + ", +" + std::to_string(len) + ")";
  if (off < x.prefix_len) {
    FUZZ_CHECK(r.ok() && !*r, where + " over the header");
    return;
  }
  if (off >= x.size()) {
    FUZZ_CHECK(r.ok() && *r && spans.spans.empty(), where + " at EOF");
    return;
  }
  const uint64_t end = std::min<uint64_t>(x.size(), off + len);
  if (x.AnyStored(off, end)) {
    FUZZ_CHECK(r.ok() && !*r, where + " over a tensor stored in plain");
    return;
  }
  if (x.AnyBad(off, end)) {
    FUZZ_CHECK(!r.ok() && r.status().code() == StatusCode::kDataLoss,
               where + " over a unit that does not authenticate");
    return;
  }
  FUZZ_CHECK(r.ok() && *r, where + (r.ok() ? " declined" : ": " + r.status().ToString()));
  Bytes got;
  for (ByteSpan s : spans.spans) got.insert(got.end(), s.begin(), s.end());
  FUZZ_CHECK(got.size() == end - off &&
                 std::equal(got.begin(), got.end(), x.bytes.begin() + static_cast<long>(off)),
             where + " gave other bytes");
}

// CheckOpened reads the opened file every way the mount does; returns whether all of it is
// readable.
bool CheckOpened(const fs::PlainFile& view, ByteSpan file, uint64_t seed) {
  const fs::EncryptedFile& ef = *view.encrypted_file();
  const Expected x = Expect(ef, file);
  FUZZ_CHECK(view.size() == x.size(), "served size");

  // The served header parses and lists the same tensors.
  auto served = format::ParseHeaderLength(ef.plain_prefix(), x.size());
  FUZZ_CHECK(served.ok() && 8 + *served == x.prefix_len, "served header length");
  auto served_header = format::ParseHeaderJson(ByteSpan(ef.plain_prefix()).subspan(8));
  FUZZ_CHECK(served_header.ok(), "served header: " + served_header.status().ToString());
  FUZZ_CHECK(served_header->data_len == ef.header().data_len &&
                 served_header->tensors.size() == ef.header().tensors.size(),
             "served header has other tensors");
  for (const format::TensorInfo& t : served_header->tensors) {
    const format::TensorInfo* o = ef.header().FindTensor(t.name);
    FUZZ_CHECK(o != nullptr && SameTensor(t, *o), "served tensor " + t.name);
  }

  std::mt19937_64 rng(seed);
  const uint64_t size = x.size();
  // The whole file, then each tensor alone.
  CheckRead(view, x, 0, size + 7);
  for (const format::TensorInfo& t : ef.header().tensors) {
    CheckRead(view, x, x.prefix_len + t.begin, t.byte_len());
  }
  // Sequential scans, as a loader and the kernel's readahead do, with decrypt-ahead.
  const fs::PlainFile::AheadWindow window{.first_len = 256, .max_len = 4096};
  for (uint64_t step : {uint64_t{1} + rng() % 97, uint64_t{4096}}) {
    step = std::max<uint64_t>(step, size / 128);
    for (uint64_t off = 0; off < size; off += step) {
      CheckRead(view, x, off, step);
      // Decrypt-ahead of the planned units, one run per run head and at most 4 runs a step:
      // with tiny chunks (a header may say chunk_size 2) a window plans thousands of units,
      // and a run for each would make one input take minutes (quadratic in the harness only).
      std::optional<fs::ChunkCache::Key> last_head;
      int runs = 0;
      for (const auto& key : view.PlanReadAhead(off, step, window)) {
        const auto head = view.RunHead(key, 3 * 64);
        if (last_head && head == *last_head) continue;
        if (++runs > 4) break;
        last_head = head;
        view.PrefetchRun(head, 3 * 64);
      }
    }
  }
  // Random reads and span reads, some past EOF.
  for (int i = 0; i < 16; ++i) {
    const uint64_t off = rng() % (size + 9);
    const size_t len = static_cast<size_t>(rng() % 3 == 0 ? rng() % 4096 : rng() % 80);
    CheckRead(view, x, off, len);
    CheckSpans(view, x, off, len);
  }
  for (const format::TensorInfo& t : ef.header().tensors) {
    if (t.byte_len() > 0) CheckSpans(view, x, x.prefix_len + t.begin, t.byte_len());
  }

  // EncryptedFile's own reads agree.
  const uint64_t data_len = ef.header().data_len;
  Bytes data(data_len + 1);
  Status st = ef.ReadData(0, MutableByteSpan(data.data(), data_len));
  const bool data_bad = x.AnyBad(x.prefix_len, size);
  FUZZ_CHECK(st.ok() == !data_bad, "ReadData: " + st.ToString());
  if (st.ok()) {
    FUZZ_CHECK(std::equal(data.begin(), data.begin() + static_cast<long>(data_len),
                          x.bytes.begin() + static_cast<long>(x.prefix_len)),
               "ReadData returned other bytes");
  }
  for (size_t i = 0; i < ef.header().tensors.size(); ++i) {
    const format::TensorInfo& t = ef.header().tensors[i];
    Bytes tensor(t.byte_len() + 1);
    Status ts = ef.ReadTensorRange(i, 0, MutableByteSpan(tensor.data(), t.byte_len()));
    const uint64_t at = x.prefix_len + t.begin;
    FUZZ_CHECK(ts.ok() == !x.AnyBad(at, at + t.byte_len()), "ReadTensorRange: " + ts.ToString());
    FUZZ_CHECK(!ts.ok() || std::equal(tensor.begin(), tensor.end() - 1,
                                      x.bytes.begin() + static_cast<long>(at)),
               "ReadTensorRange returned other bytes of " + t.name);
    uint8_t one = 0;
    FUZZ_CHECK(!ef.ReadTensorRange(i, t.byte_len(), MutableByteSpan(&one, 1)).ok(),
               "ReadTensorRange past the end of " + t.name);
  }
  return !x.AnyBad(0, size);
}

// Outcome counts, printed at exit when CTFS_FUZZ_STATS is set (scripts/fuzz.sh sets it): they
// show whether the mutants get past the signature.
struct Outcomes {
  uint64_t bad_header = 0;     // refused by ReadHeader (S1-S15)
  uint64_t plain = 0;          // a plain safetensors file
  uint64_t bad_metadata = 0;   // refused before the signature check: crypto metadata, keys
  uint64_t bad_signature = 0;  // refused: the signature does not verify
  uint64_t refused = 0;        // refused behind the signature check: policy, unwrap, view
  uint64_t served = 0;         // opened and every byte readable
  uint64_t served_bad = 0;     // opened, some units do not authenticate

  ~Outcomes() {
    if (std::getenv("CTFS_FUZZ_STATS") == nullptr) return;
    std::fprintf(stderr,
                 "open_file outcomes: bad header %lu, plain %lu, bad crypto metadata or key %lu, "
                 "bad signature %lu, refused behind the signature check %lu, served %lu, "
                 "served with unreadable units %lu\n",
                 bad_header, plain, bad_metadata, bad_signature, refused, served, served_bad);
  }
};
Outcomes outcomes;

void FuzzOpenFile(ByteSpan input) {
  const uint64_t seed = Fnv1a(input);
  // Cache on or off (each read then decrypts again).
  fs::ChunkCache cache(seed % 4 == 0 ? 0 : 1u << 20);
  Mounted m = OpenLikeTheMount(input, &cache);
  if (!m.view.ok()) {
    const Status& st = m.view.status();
    FUZZ_CHECK(st.message().find(GetEnv().path) != std::string::npos,
               "error does not name the file: " + st.ToString());
    if (m.header_status.ok() && !m.encrypted) {
      FUZZ_CHECK(st.code() == StatusCode::kFailedPrecondition, "plain file: " + st.ToString());
    }
    if (!m.header_status.ok()) {
      ++outcomes.bad_header;
    } else if (!m.encrypted) {
      ++outcomes.plain;
    } else if (st.message().find("header signature is invalid") != std::string::npos) {
      ++outcomes.bad_signature;
    } else if (st.message().find("unwrap") != std::string::npos ||
               st.message().find("polic") != std::string::npos ||
               st.message().find("wrapped key has") != std::string::npos ||
               st.message().find(format::kPlainHeaderKey) != std::string::npos) {
      ++outcomes.refused;
    } else {
      ++outcomes.bad_metadata;
    }
    return;
  }
  FUZZ_CHECK(m.header_status.ok() && m.encrypted,
             "opened a file whose header is invalid or plain: " + m.header_status.ToString());
  if (CheckOpened(**m.view, input, seed)) {
    ++outcomes.served;
  } else {
    ++outcomes.served_bad;
  }
}

}  // namespace
}  // namespace ctfs::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)ctfs::fuzz::GetEnv();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctfs::fuzz::FuzzOpenFile(ctfs::ByteSpan(data, size));
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  return ctfs::fuzz::GetEnv().mutator->Mutate(data, size, max_size, seed);
}
