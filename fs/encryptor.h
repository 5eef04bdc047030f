// SPDX-License-Identifier: Apache-2.0
// EncryptFile: turn a plain safetensors file into a CryptoTensors file the reference reads
// (cryptotensors-format.md §1-§3): per-tensor random data keys wrapped under the master key,
// chunked (v2) or whole-tensor (v1) AEAD, the four reserved metadata keys written as the
// reference writes them, an Ed25519 signature over the canonical header message.
//
// The output is written to a temporary sibling and renamed only when complete (fsynced), so a
// failure never leaves a partial file. The header length is computed before any data is
// encrypted (all encoded fields have fixed lengths), so data is written once, in place.
// The original header bytes are restorable exactly (format/plain_view.h), so
// decrypt(encrypt(F)) == F byte for byte.
#ifndef CTFS_FS_ENCRYPTOR_H_
#define CTFS_FS_ENCRYPTOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "format/crypt_metadata.h"
#include "format/jwk.h"
#include "fs/progress.h"

namespace ctfs::fs {

// The chunk size `ctfs encrypt` writes by default. Smaller than the reference's 2 MiB
// (format::kDefaultChunkSize, still what a v2 header without chunk_size means): on the mount a
// read decrypts whole chunks, so 256 KiB chunks give random and strided readers (fio 4 KiB:
// ~4.5x the IOPS of 2 MiB) and first touches of a tensor less work, while sequential reads,
// loads and the reference package's load time measured the same (bench/RESULTS.md, "chunk
// size"). The tags cost 16 bytes per chunk (0.006 %).
inline constexpr uint64_t kDefaultEncryptChunkSize = 256 << 10;

struct EncryptOptions {
  // Tensor-name globs (fnmatch) selecting tensors to encrypt; empty = all tensors.
  std::vector<std::string> tensor_globs;
  // Chunk size in bytes for format version 2.
  uint64_t chunk_size = kDefaultEncryptChunkSize;
  // "2" (chunked, default) or "1" (whole-tensor).
  std::string version = "2";
  format::Policy policy;
};

// EncryptFile encrypts `src` into `dst` with master key `enc_key` (kty oct) and signing key
// `sign_key` (kty okp with a private part d). Their kid/jku are written into the header.
// Errors: InvalidArgument for a bad source file (S1-S15), an already encrypted source, no
// tensor matching the globs, bad options; I/O errors as Unavailable/NotFound.
Status EncryptFile(const std::string& src, const std::string& dst, const format::Jwk& enc_key,
                   const format::Jwk& sign_key, const EncryptOptions& options,
                   const ProgressFn& progress);

}  // namespace ctfs::fs

#endif  // CTFS_FS_ENCRYPTOR_H_
