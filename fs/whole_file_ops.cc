// SPDX-License-Identifier: Apache-2.0
#include "fs/whole_file_ops.h"

#include <sys/stat.h>

#include <algorithm>

#include "base/file_io.h"

namespace ctfs::fs {
namespace {

constexpr uint64_t kBlock = 8 << 20;

// Calls fn(offset, span) for each authenticated piece of tensor `index`, in order. The span
// holds verified plaintext and is wiped after fn returns.
template <typename Fn>
Status ForEachPlainPiece(const EncryptedFile& file, size_t index, Fn fn) {
  const format::TensorInfo& t = file.header().tensors[index];
  Bytes buf;
  Status st;
  if (!file.IsTensorEncrypted(index)) {
    for (uint64_t off = 0; off < t.byte_len() && st.ok(); off += kBlock) {
      buf.resize(std::min(kBlock, t.byte_len() - off));
      st = file.ReadTensorRange(index, off, buf);
      if (st.ok()) st = fn(off, ByteSpan(buf));
    }
  } else {
    uint64_t off = 0;
    for (uint64_t u = 0; u < file.NumAuthUnits(index) && st.ok(); ++u) {
      buf.resize(file.AuthUnitLen(index, u));
      st = file.DecryptUnit(index, u, buf);
      if (st.ok()) st = fn(off, ByteSpan(buf));
      off += buf.size();
    }
  }
  WipeMemory(buf.data(), buf.size());
  return st;
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
