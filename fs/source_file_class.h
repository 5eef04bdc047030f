// SPDX-License-Identifier: Apache-2.0
// ClassifySourceFile: what the mount makes of one regular file of the source tree, from its
// bytes alone (no key needed). The rule that keeps ciphertext from ever being served as
// weights:
//   - a file named *.safetensors must be a valid safetensors file (rules S1-S15); if it is a
//     CryptoTensors file (it has __encryption__) it is served decrypted; if it is plain but
//     uses a reserved name (format/reserved_keys.h) it is a damaged or stripped CryptoTensors
//     file; anything invalid is refused;
//   - any other file is passed through, unless its first bytes are a safetensors header that
//     mentions a reserved name (a CryptoTensors file under another name): refused.
// A refused file refuses the mount, or with --allow-bad-files answers EIO.
#ifndef CTFS_FS_SOURCE_FILE_CLASS_H_
#define CTFS_FS_SOURCE_FILE_CLASS_H_

#include <cstdint>
#include <string>

#include "base/random_access_file.h"
#include "base/status.h"

namespace ctfs::fs {

struct SourceFileClass {
  enum class Kind { kPassthrough, kEncrypted, kRefused };
  Kind kind = Kind::kPassthrough;
  // The size the mount shows: the file's own (passthrough), the plain view's (encrypted),
  // 0 (refused).
  uint64_t served_len = 0;
  // kRefused: why, naming the file (its path) and the rule it breaks.
  Status refusal;
};

// IsSafetensorsName: `name` ends in ".safetensors" (and is longer than that).
bool IsSafetensorsName(const std::string& name);

// ClassifySourceFile classifies `file` (`file_len` bytes long, named `name`). I/O errors refuse
// the file too (the refusal carries them).
SourceFileClass ClassifySourceFile(const RandomAccessFile& file, uint64_t file_len,
                                   const std::string& name);

}  // namespace ctfs::fs

#endif  // CTFS_FS_SOURCE_FILE_CLASS_H_
