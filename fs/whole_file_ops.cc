// SPDX-License-Identifier: Apache-2.0
#include "fs/whole_file_ops.h"

#include <sys/stat.h>

#include <algorithm>

#include "base/file_io.h"
#include "fs/chunk_buffer_pool.h"
#include "fs/copy_alignment.h"

namespace ctfs::fs {
namespace {

constexpr uint64_t kBlock = 8 << 20;

// Calls fn(offset, span) for each authenticated piece of tensor `index`, in order. The span
// holds verified plaintext, placed so that reading it from the encrypted file and writing it
// at the same offset of the plain file copy fast (fs/copy_alignment.h); the buffer is wiped
// when done.
template <typename Fn>
Status ForEachPlainPiece(const EncryptedFile& file, size_t index, Fn fn) {
  const format::TensorInfo& t = file.header().tensors[index];
  ReusedBuffer buf;
  if (!file.IsTensorEncrypted(index)) {
    for (uint64_t off = 0; off < t.byte_len(); off += kBlock) {
      const uint64_t cipher_off = file.header().data_start() + t.begin + off;
      const uint64_t plain_off = file.plain_prefix().size() + t.begin + off;
      CTFS_ASSIGN_OR_RETURN(MutableByteSpan piece, buf.Span(std::min(kBlock, t.byte_len() - off),
                                                            ChunkLead(plain_off, cipher_off)));
      CTFS_RETURN_IF_ERROR(file.ReadTensorRange(index, off, piece));
      CTFS_RETURN_IF_ERROR(fn(off, ByteSpan(piece)));
    }
    return Status::Ok();
  }
  uint64_t off = 0;
  for (uint64_t u = 0; u < file.NumAuthUnits(index); ++u) {
    CTFS_ASSIGN_OR_RETURN(
        MutableByteSpan piece,
        buf.Span(file.AuthUnitLen(index, u), file.AuthUnitLead(index, u, /*direct=*/false)));
    CTFS_RETURN_IF_ERROR(file.DecryptUnit(index, u, piece));
    CTFS_RETURN_IF_ERROR(fn(off, ByteSpan(piece)));
    off += piece.size();
  }
  return Status::Ok();
}

}  // namespace

Status DecryptToFile(const EncryptedFile& file, const std::string& dst,
                     const ProgressFn& progress) {
  CTFS_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Create(dst, 0644));
  CTFS_RETURN_IF_ERROR(out.PwriteAll(file.plain_prefix(), 0));
  const uint64_t data_start = file.plain_prefix().size();
  const auto& tensors = file.header().tensors;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t base = data_start + tensors[i].begin;
    CTFS_RETURN_IF_ERROR(ForEachPlainPiece(file, i, [&](uint64_t off, ByteSpan piece) {
      if (progress) progress(piece.size());
      return out.PwriteAll(piece, base + off);
    }));
  }
  CTFS_RETURN_IF_ERROR(out.Truncate(file.plain_file_len()));
  return out.Commit();
}

Result<VerifyReport> VerifyAllChunks(const EncryptedFile& file, const ProgressFn& progress) {
  VerifyReport report;
  const auto& tensors = file.header().tensors;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!file.IsTensorEncrypted(i)) {
      ++report.tensors_plain;
      if (progress) progress(tensors[i].byte_len());
      continue;
    }
    ++report.tensors_encrypted;
    CTFS_RETURN_IF_ERROR(ForEachPlainPiece(file, i, [&](uint64_t, ByteSpan piece) {
      ++report.units_verified;
      report.bytes_verified += piece.size();
      if (progress) progress(piece.size());
      return Status::Ok();
    }));
  }
  return report;
}

}  // namespace ctfs::fs
