// SPDX-License-Identifier: Apache-2.0
// EncryptedFile: one opened, verified CryptoTensors file, and the decryption of plaintext byte
// ranges from it. This is the core that `ctfs decrypt`, `ctfs verify` and the mount daemon
// share; it has no FUSE dependency.
//
// Open() does, in the reference's order (cryptotensors-format.md §2.5): read and validate the
// safetensors header (S1-S15, against the real file size), parse and cross-validate the crypto
// metadata, resolve the master and verification keys, verify the Ed25519 header signature,
// evaluate the embedded policy, unwrap every tensor's data key. Nothing is served unless all
// of that succeeded.
//
// Reads never release plaintext before its tag verified: each chunk (v2) or whole tensor (v1)
// is read into a private buffer, authenticated, then copied out; a bad tag is DataLoss naming
// file, tensor and chunk, and the buffer is wiped.
// Thread safety: immutable after Open(); Read* and Verify* may be called concurrently.
#ifndef CTFS_FS_ENCRYPTED_FILE_H_
#define CTFS_FS_ENCRYPTED_FILE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/aead_alg.h"
#include "base/bytes.h"
#include "base/direct_reader.h"
#include "base/random_access_file.h"
#include "base/result.h"
#include "base/secret_bytes.h"
#include "base/unique_fd.h"
#include "format/crypt_metadata.h"
#include "format/safetensors_header.h"
#include "keys/key_resolver.h"

namespace ctfs::fs {

// ReadHeaderFrom reads the validated safetensors header (S1-S15, against the file's size now)
// of `file`, with the prefix bytes (first 8+N bytes). Errors are prefixed with its path.
struct HeaderAndPrefix {
  format::SafetensorsHeader header;
  Bytes prefix;
};
Result<HeaderAndPrefix> ReadHeaderFrom(const RandomAccessFile& file);

// ReadHeader opens `path` and returns ReadHeaderFrom's result with the open fd. Used for plain
// and encrypted files alike.
struct HeaderAndFd {
  format::SafetensorsHeader header;
  Bytes prefix;
  UniqueFd fd;
};
Result<HeaderAndFd> ReadHeader(const std::string& path);

// EncryptedFileOptions: how EncryptedFile::Open decides.
struct EncryptedFileOptions {
  // The operator's rules decide instead of the file's embedded policy (config
  // `embedded_policy: operator`): a refusal by that policy is overridden, and kept in
  // EncryptedFile::embedded_policy_override() for the caller to log.
  bool embedded_policy_operator = false;
};

// A locked shard (format/locked_shard.h) whose lock key is not available to this reader.
struct LockedShard {
  std::string lock_kid;  // the lock (encryption) key's kid, "" if none
};

// ProbeLockedShard returns the lock key's kid if `file` is a CryptoTensors file carrying the
// locked marker, whose encryption (lock) key `keys` cannot find, while its signing key is found
// and the header signature verifies with it. nullopt otherwise: then the file is not a locked
// shard, or is damaged, or its key is there (EncryptedFile::Open says which). The verified
// signature is what makes the marker a known state: an unverifiable "locked" claim is treated
// like any file whose keys are missing.
std::optional<LockedShard> ProbeLockedShard(const RandomAccessFile& file,
                                            const keys::KeyResolver& keys);

// LockedError: what every open of such a file answers: PermissionDenied
// "locked: <name>: lock key <kid> not available".
Status LockedError(const std::string& name, const LockedShard& locked);

class EncryptedFile {
 public:
  // Open a CryptoTensors file; every later read goes through `file`. FailedPrecondition if it
  // is a plain safetensors file. Errors are prefixed with the path; key lookup failures are
  // NotFound, bad signature / wrong key / tampered header are DataLoss, a denying policy is
  // PermissionDenied (policy/embedded_policy.h), unless `options` says the operator decides.
  static Result<std::unique_ptr<EncryptedFile>> Open(std::unique_ptr<RandomAccessFile> file,
                                                     const keys::KeyResolver& keys,
                                                     const EncryptedFileOptions& options = {});
  // Open the file at `path` (symlinks followed: for files named on the command line).
  static Result<std::unique_ptr<EncryptedFile>> Open(const std::string& path,
                                                     const keys::KeyResolver& keys,
                                                     const EncryptedFileOptions& options = {});

  const std::string& path() const { return path_; }
  const format::SafetensorsHeader& header() const { return header_; }
  const format::CryptMetadata& crypt() const { return crypt_; }
  AeadAlg alg() const { return alg_; }
  // Why the embedded policy would have refused this file, if Open overrode it (operator mode;
  // the module's first line quoted); "" if it allowed or was not overridden.
  const std::string& embedded_policy_override() const { return embedded_policy_override_; }

  // The plain view: prefix bytes (u64 N' + header JSON + padding) and total plain file size.
  const Bytes& plain_prefix() const { return plain_prefix_; }
  uint64_t plain_file_len() const { return plain_prefix_.size() + header_.data_len; }

  // IsTensorEncrypted: tensor `index` (into header().tensors) has an __encryption__ entry.
  bool IsTensorEncrypted(size_t index) const { return entries_[index] != nullptr; }

  // ReadData copies plaintext of the data region [data_off, data_off + out.size()) into `out`,
  // decrypting and authenticating every chunk it touches. REQUIRES the range to lie within
  // the data region (InvalidArgument otherwise).
  Status ReadData(uint64_t data_off, MutableByteSpan out) const;

  // ReadTensorRange copies plaintext bytes [off, off + out.size()) of tensor `index`.
  Status ReadTensorRange(size_t index, uint64_t off, MutableByteSpan out) const;

  // One piece of a data-region range: `take` bytes starting `skip` bytes into unit `unit` of
  // tensor `tensor` (for an unencrypted tensor the "unit" is the whole tensor), landing at
  // `out_off` in the caller's buffer.
  struct RangePiece {
    size_t tensor = 0;
    uint64_t unit = 0;
    uint64_t unit_len = 0;
    uint64_t skip = 0;
    uint64_t take = 0;
    uint64_t out_off = 0;
    bool encrypted = false;
  };
  // MapDataRange splits the data-region range [data_off, data_off + len) into pieces, in
  // order. REQUIRES the range to lie within the data region (InvalidArgument otherwise).
  Result<std::vector<RangePiece>> MapDataRange(uint64_t data_off, uint64_t len) const;

  // NumAuthUnits: chunks of tensor `index` (chunked mode), 1 (whole mode), 0 if unencrypted.
  uint64_t NumAuthUnits(size_t index) const;
  // AuthUnitLen: plaintext length of unit `unit` of tensor `index`.
  uint64_t AuthUnitLen(size_t index, uint64_t unit) const;
  // AuthUnitLead: how far past a page boundary a buffer for unit `unit` of tensor `index`
  // should start, so that the kernel copies into and out of it fast (fs/copy_alignment.h):
  // the reply copy always, the pread of its ciphertext unless `direct` (read with O_DIRECT,
  // as DecryptRun does with direct reads on).
  size_t AuthUnitLead(size_t index, uint64_t unit, bool direct) const;
  // DecryptUnit authenticates and decrypts unit `unit` of encrypted tensor `index` into `out`
  // (exactly AuthUnitLen bytes). On failure `out` is wiped.
  Status DecryptUnit(size_t index, uint64_t unit, MutableByteSpan out) const;

  // One unit of a DecryptRun: `unit` in, `out` (exactly AuthUnitLen bytes) and `status` out.
  struct RunUnit {
    uint64_t unit = 0;
    MutableByteSpan out;
    Status status;
  };
  // DecryptRun decrypts units of encrypted tensor `index` (REQUIRES increasing unit order),
  // like DecryptUnit on each, but with direct reads on it reads their ciphertext with one
  // O_DIRECT read (a run of consecutive chunks is one disk request, and stays out of the page
  // cache). Each unit's outcome is in its `status`; a failed unit's `out` is wiped.
  // `unit_done(k)`, if set, is called as soon as units[k] is final.
  void DecryptRun(size_t index, std::span<RunUnit> units,
                  const std::function<void(size_t k)>& unit_done = nullptr) const;

  // EnableDirectReads makes DecryptRun read ciphertext with O_DIRECT (see
  // base/direct_reader.h), except runs over kMaxDirectReadLen and any read the direct path
  // fails, which fall back to normal reads. The mount uses runs for decrypt-ahead of
  // sequential readers (the bulk of a model load); DecryptUnit (a reader's own miss, random
  // access) and plain tensors keep reading through the page cache, which also serves their
  // re-reads, but without kernel readahead (POSIX_FADV_RANDOM), which would read the runs'
  // ciphertext a second time. FailedPrecondition if the file system cannot do direct I/O.
  // Not thread-safe: call before the file is shared.
  Status EnableDirectReads();
  bool direct_reads() const { return direct_ != nullptr; }
  // Longest read done with O_DIRECT: bounds each thread's staging buffer.
  static constexpr size_t kMaxDirectReadLen = 8u << 20;

  // decrypted_bytes: plaintext bytes authenticated and decrypted so far (every unit counts
  // each time it is decrypted; for `ctfs status`).
  uint64_t decrypted_bytes() const { return decrypted_bytes_.load(std::memory_order_relaxed); }

 private:
  EncryptedFile() = default;
  Status UnitError(size_t index, uint64_t unit, const Status& cause) const;
  // CipherOffset: where unit `unit` of tensor `index` starts in the file.
  uint64_t CipherOffset(size_t index, uint64_t unit) const;
  // OpenUnit authenticates and decrypts `cipher` (unit `unit` of tensor `index`) into `out`.
  Status OpenUnit(size_t index, uint64_t unit, ByteSpan cipher, MutableByteSpan out) const;
  // ReadDirect reads [cipher_off, cipher_off + len) into this thread's staging buffer; an
  // error (or no direct reader, or len > kMaxDirectReadLen) means: read it normally instead.
  Result<ByteSpan> ReadDirect(uint64_t cipher_off, uint64_t len) const;

  std::string path_;
  std::string embedded_policy_override_;
  std::unique_ptr<RandomAccessFile> file_;
  std::unique_ptr<DirectReader> direct_;  // set by EnableDirectReads
  format::SafetensorsHeader header_;
  format::CryptMetadata crypt_;
  AeadAlg alg_ = AeadAlg::kAes256Gcm;
  bool chunked_ = true;
  uint64_t chunk_size_ = 0;
  Bytes plain_prefix_;
  // Per tensor index: its __encryption__ entry (nullptr = stored in plain) and data key.
  std::vector<const format::TensorCrypto*> entries_;
  std::vector<SecretBytes> deks_;
  mutable std::atomic<uint64_t> decrypted_bytes_{0};  // relaxed: a statistic
  // Tensor indices sorted by data offset, for range lookups.
  std::vector<size_t> by_offset_;
};

}  // namespace ctfs::fs

#endif  // CTFS_FS_ENCRYPTED_FILE_H_
