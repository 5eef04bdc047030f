// SPDX-License-Identifier: Apache-2.0
// Whole-file operations on an opened EncryptedFile: write its plain view to a file
// (`ctfs decrypt`) and authenticate every chunk (`ctfs verify`).
#ifndef CTFS_FS_WHOLE_FILE_OPS_H_
#define CTFS_FS_WHOLE_FILE_OPS_H_

#include <cstdint>
#include <string>

#include "base/result.h"
#include "fs/encrypted_file.h"
#include "fs/progress.h"

namespace ctfs::fs {

// DecryptToFile writes the plain view of `file` (plain_prefix + decrypted data) to `dst`
// through a temporary sibling renamed on success; on any error (e.g. a bad chunk, reported
// with tensor and chunk) nothing is left at `dst`.
Status DecryptToFile(const EncryptedFile& file, const std::string& dst, const ProgressFn& progress);

struct VerifyReport {
  uint64_t tensors_encrypted = 0;
  uint64_t tensors_plain = 0;   // stored unencrypted: not integrity-protected
  uint64_t units_verified = 0;  // chunks (v2) or whole tensors (v1) authenticated
  uint64_t bytes_verified = 0;
};

// VerifyAllChunks authenticates every chunk of every encrypted tensor (including the tag of
// empty tensors). Returns the first failure, naming file, tensor and chunk.
Result<VerifyReport> VerifyAllChunks(const EncryptedFile& file, const ProgressFn& progress);

}  // namespace ctfs::fs

#endif  // CTFS_FS_WHOLE_FILE_OPS_H_
