// SPDX-License-Identifier: Apache-2.0
#include "fs/encrypted_file.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "base/checked_math.h"
#include "base/file_io.h"
#include "base/wiped_bytes.h"
#include "crypto/aead.h"
#include "crypto/signature.h"
#include "format/locked_shard.h"
#include "format/plain_view.h"
#include "format/signing_message.h"
#include "fs/copy_alignment.h"
#include "keys/master_key.h"
#include "policy/embedded_policy.h"

namespace ctfs::fs {
namespace {

std::string KidText(const format::KeyDescriptor& d) {
  return d.kid ? "kid \"" + *d.kid + "\"" : "no kid";
}

// VerifySignature checks the header signature of `header` with signing key `sign_key`.
Status VerifySignature(const std::string& path, const format::SafetensorsHeader& header,
                       const format::CryptMetadata& crypt, const format::Jwk& sign_key) {
  Bytes verify_key = sign_key.x;
  if (verify_key.empty()) {
    auto derived = crypto::Ed25519PublicKeyFromSeed(sign_key.d);
    if (!derived.ok()) return derived.status().WithContext(path);
    verify_key.assign(derived->begin(), derived->end());
  }
  std::string message = format::BuildSigningMessage(header);
  Status sig = crypto::Ed25519Verify(verify_key, AsBytes(message), crypt.signature);
  if (!sig.ok()) {
    return DataLossError(path + ": header signature is invalid (" + KidText(crypt.keys.sign) +
                         "): the header was modified or signed with another key");
  }
  return Status::Ok();
}

}  // namespace

std::optional<LockedShard> ProbeLockedShard(const RandomAccessFile& file,
                                            const keys::KeyResolver& keys) {
  auto hf = ReadHeaderFrom(file);
  if (!hf.ok() || !format::IsEncrypted(hf->header) || !format::HasLockedMarker(hf->header)) {
    return std::nullopt;
  }
  auto crypt = format::ParseCryptMetadata(hf->header);
  if (!crypt.ok()) return std::nullopt;
  const format::CryptoKeys& ck = crypt->keys;
  auto enc_key = keys.FindKey("oct", ck.enc.kid, ck.enc.jku);
  if (enc_key.ok() || enc_key.status().code() != StatusCode::kNotFound) return std::nullopt;
  auto sign_key = keys.FindKey("okp", ck.sign.kid, ck.sign.jku);
  if (!sign_key.ok()) return std::nullopt;
  if (!VerifySignature(file.path(), hf->header, *crypt, *sign_key).ok()) return std::nullopt;
  return LockedShard{ck.enc.kid.value_or("")};
}

Status LockedError(const std::string& name, const LockedShard& locked) {
  return PermissionDeniedError("locked: " + name + ": lock key " +
                               (locked.lock_kid.empty() ? "(no kid)" : locked.lock_kid) +
                               " not available");
}

Result<HeaderAndPrefix> ReadHeaderFrom(const RandomAccessFile& file) {
  const std::string& path = file.path();
  HeaderAndPrefix out;
  CTFS_ASSIGN_OR_RETURN(uint64_t file_len, file.Size());
  uint8_t len_bytes[8] = {};
  size_t first = static_cast<size_t>(std::min<uint64_t>(8, file_len));
  CTFS_RETURN_IF_ERROR(PreadExact(file, MutableByteSpan(len_bytes, first), 0));
  auto n = format::ParseHeaderLength(ByteSpan(len_bytes, first), file_len);
  if (!n.ok()) return n.status().WithContext(path);
  out.prefix.resize(8 + *n);
  CTFS_RETURN_IF_ERROR(PreadExact(file, out.prefix, 0));
  auto header = format::ParseHeader(out.prefix, file_len);
  if (!header.ok()) return header.status().WithContext(path);
  out.header = std::move(*header);
  return out;
}

Result<HeaderAndFd> ReadHeader(const std::string& path) {
  CTFS_ASSIGN_OR_RETURN(std::unique_ptr<PosixFile> file, PosixFile::Open(path));
  CTFS_ASSIGN_OR_RETURN(HeaderAndPrefix hp, ReadHeaderFrom(*file));
  return HeaderAndFd{std::move(hp.header), std::move(hp.prefix), file->TakeFd()};
}

Result<std::unique_ptr<EncryptedFile>> EncryptedFile::Open(const std::string& path,
                                                           const keys::KeyResolver& keys,
                                                           const EncryptedFileOptions& options) {
  CTFS_ASSIGN_OR_RETURN(std::unique_ptr<PosixFile> file, PosixFile::Open(path));
  return Open(std::move(file), keys, options);
}

Result<std::unique_ptr<EncryptedFile>> EncryptedFile::Open(std::unique_ptr<RandomAccessFile> file,
                                                           const keys::KeyResolver& keys,
                                                           const EncryptedFileOptions& options) {
  const std::string path = file->path();
  CTFS_ASSIGN_OR_RETURN(HeaderAndPrefix hf, ReadHeaderFrom(*file));
  if (!format::IsEncrypted(hf.header)) {
    return FailedPreconditionError(path + ": not a CryptoTensors file (plain safetensors)");
  }
  std::unique_ptr<EncryptedFile> f(new EncryptedFile());
  f->path_ = path;
  f->file_ = std::move(file);
  f->header_ = std::move(hf.header);
  auto crypt = format::ParseCryptMetadata(f->header_);
  if (!crypt.ok()) return crypt.status().WithContext(path);
  f->crypt_ = std::move(*crypt);
  const format::CryptoKeys& ck = f->crypt_.keys;

  // 1. Keys (before anything is verified, like the reference).
  auto enc_key = keys.FindKey("oct", ck.enc.kid, ck.enc.jku);
  if (!enc_key.ok()) {
    return enc_key.status().WithContext(path + ": encryption key (" + KidText(ck.enc) + ")");
  }
  auto sign_key = keys.FindKey("okp", ck.sign.kid, ck.sign.jku);
  if (!sign_key.ok()) {
    return sign_key.status().WithContext(path + ": signature key (" + KidText(ck.sign) + ")");
  }
  // A key's own alg overrides the header's (reference behaviour).
  auto alg = ParseAeadAlg(enc_key->alg);
  if (!alg.ok()) return alg.status().WithContext(path);
  f->alg_ = *alg;
  if (enc_key->token != nullptr) {
    // A token does one AEAD, and cannot stand in for a key of another algorithm.
    auto header_alg = ParseAeadAlg(ck.enc.alg);
    if (header_alg.ok() && *header_alg != f->alg_) {
      return FailedPreconditionError(path + ": encrypted with " +
                                     std::string(AeadAlgName(*header_alg)) +
                                     ", but its key (" + KidText(ck.enc) + ") is " +
                                     enc_key->token->Describe() + ", which does " +
                                     std::string(AeadAlgName(f->alg_)) +
                                     " (token keys support AES-GCM only)");
    }
  }

  // 2. Signature over the canonical header message.
  CTFS_RETURN_IF_ERROR(VerifySignature(path, f->header_, f->crypt_, *sign_key));

  // 3. Embedded policy.
  policy::EmbeddedPolicyOutcome pol =
      policy::ApplyEmbeddedPolicy(f->crypt_.policy.local, options.embedded_policy_operator);
  if (!pol.status.ok()) return pol.status.WithContext(path);
  if (pol.overridden) f->embedded_policy_override_ = std::move(pol.note);

  // 4. Data keys.
  const size_t n = f->header_.tensors.size();
  f->entries_.assign(n, nullptr);
  f->deks_.resize(n);
  f->chunked_ = ck.chunked();
  f->chunk_size_ = f->chunked_ ? ck.EffectiveChunkSize() : 0;
  const size_t key_len = AeadKeyLen(f->alg_);
  for (size_t i = 0; i < n; ++i) {
    const format::TensorInfo& t = f->header_.tensors[i];
    const format::TensorCrypto* e = f->crypt_.FindEntry(t.name);
    if (e == nullptr) continue;
    f->entries_[i] = e;
    if (e->wrapped_key.size() != key_len) {
      return InvalidArgumentError(path + ": tensor \"" + t.name + "\": wrapped key has " +
                                  std::to_string(e->wrapped_key.size()) + " bytes, key alg " +
                                  std::string(AeadAlgName(f->alg_)) + " needs " +
                                  std::to_string(key_len));
    }
    SecretBytes dek(key_len);
    Status st = keys::UnwrapDataKey(*enc_key, f->alg_, e->key_iv, e->wrapped_key, e->key_tag,
                                    dek.mutable_span());
    if (!st.ok() && st.code() != StatusCode::kDataLoss) {
      return st.WithContext(path + ": tensor \"" + t.name + "\": unwrapping its data key");
    }
    if (!st.ok()) {
      return DataLossError(path + ": tensor \"" + t.name + "\": cannot unwrap its data key (" +
                           KidText(ck.enc) + "): wrong master key or tampered header");
    }
    f->deks_[i] = std::move(dek);
  }

  auto prefix = format::BuildPlainPrefix(f->header_);
  if (!prefix.ok()) return prefix.status().WithContext(path);
  f->plain_prefix_ = std::move(*prefix);

  f->by_offset_.resize(n);
  for (size_t i = 0; i < n; ++i) f->by_offset_[i] = i;
  std::sort(f->by_offset_.begin(), f->by_offset_.end(), [&](size_t a, size_t b) {
    const auto& ta = f->header_.tensors[a];
    const auto& tb = f->header_.tensors[b];
    return std::pair(ta.begin, ta.end) < std::pair(tb.begin, tb.end);
  });
  return f;
}

uint64_t EncryptedFile::NumAuthUnits(size_t index) const {
  if (entries_[index] == nullptr) return 0;
  if (!chunked_) return 1;
  return format::NumChunks(header_.tensors[index].byte_len(), chunk_size_);
}

uint64_t EncryptedFile::AuthUnitLen(size_t index, uint64_t unit) const {
  uint64_t len = header_.tensors[index].byte_len();
  if (!chunked_) return len;
  uint64_t start = unit * chunk_size_;
  return std::min(chunk_size_, len - std::min(len, start));
}

size_t EncryptedFile::AuthUnitLead(size_t index, uint64_t unit, bool direct) const {
  const uint64_t cipher_off = CipherOffset(index, unit);
  // The plain view differs from this file only in its prefix (same tensor offsets).
  const uint64_t served_off = cipher_off - header_.data_start() + plain_prefix_.size();
  return ChunkLead(served_off, direct ? std::nullopt : std::optional<uint64_t>(cipher_off));
}

Status EncryptedFile::UnitError(size_t index, uint64_t unit, const Status& cause) const {
  std::string where = path_ + ": tensor \"" + header_.tensors[index].name + "\"";
  if (chunked_) where += " chunk " + std::to_string(unit);
  if (cause.code() == StatusCode::kDataLoss) {
    return DataLossError(where + ": authentication failed (corrupted or tampered data)");
  }
  return cause.WithContext(where);
}

uint64_t EncryptedFile::CipherOffset(size_t index, uint64_t unit) const {
  const uint64_t unit_off = chunked_ ? unit * chunk_size_ : 0;
  return header_.data_start() + header_.tensors[index].begin + unit_off;
}

Status EncryptedFile::OpenUnit(size_t index, uint64_t unit, ByteSpan cipher,
                               MutableByteSpan out) const {
  const format::TensorCrypto* e = entries_[index];
  Status st;
  if (chunked_) {
    auto nonce = format::ChunkNonce(e->base_iv, unit);
    if (!nonce.ok()) return UnitError(index, unit, nonce.status());
    ByteSpan tag(e->tags.data() + unit * kAeadTagLen, kAeadTagLen);
    st = crypto::AeadOpen(alg_, deks_[index].span(), *nonce, cipher, tag, out);
  } else if (e->iv.empty()) {
    // v1 empty tensor: the reference writes no iv/tag and authenticates nothing.
    st = out.empty() ? Status::Ok() : DataLossError("missing v1 iv/tag");
  } else {
    st = crypto::AeadOpen(alg_, deks_[index].span(), e->iv, cipher, e->tag, out);
  }
  if (!st.ok()) return UnitError(index, unit, st);
  decrypted_bytes_.fetch_add(out.size(), std::memory_order_relaxed);
  return Status::Ok();
}

Status EncryptedFile::EnableDirectReads() {
  CTFS_ASSIGN_OR_RETURN(DirectReader reader, file_->OpenDirect());
  direct_ = std::make_unique<DirectReader>(std::move(reader));
  // Sequential reading is the runs' job now: kernel readahead on the buffered fd would read
  // (and cache) the same ciphertext again around every DecryptUnit. Best effort.
  file_->AdviseRandom();
  return Status::Ok();
}

Result<ByteSpan> EncryptedFile::ReadDirect(uint64_t cipher_off, uint64_t len) const {
  if (direct_ == nullptr || len == 0 || len > kMaxDirectReadLen) {
    return FailedPreconditionError("no direct read");
  }
  // Ciphertext only; each thread decrypts from its own, so no one can change the bytes
  // between the tag check and the decryption. Valid until this thread's next ReadDirect.
  thread_local StagingBuffer staging;
  return direct_->Read(cipher_off, static_cast<size_t>(len), staging);
}

Status EncryptedFile::DecryptUnit(size_t index, uint64_t unit, MutableByteSpan out) const {
  CTFS_CHECK(entries_[index] != nullptr && unit < NumAuthUnits(index) &&
             out.size() == AuthUnitLen(index, unit));
  Status st = PreadExact(*file_, out, CipherOffset(index, unit));
  st = st.ok() ? OpenUnit(index, unit, out, out) : UnitError(index, unit, st);  // in place
  if (!st.ok()) WipeMemory(out.data(), out.size());
  return st;
}

void EncryptedFile::DecryptRun(size_t index, std::span<RunUnit> units,
                               const std::function<void(size_t k)>& unit_done) const {
  if (units.empty()) return;
  const uint64_t first_off = CipherOffset(index, units.front().unit);
  const uint64_t run_len =
      CipherOffset(index, units.back().unit) - first_off + AuthUnitLen(index, units.back().unit);
  Result<ByteSpan> cipher = ReadDirect(first_off, run_len);
  for (size_t k = 0; k < units.size(); ++k) {
    RunUnit& u = units[k];
    CTFS_CHECK(u.out.size() == AuthUnitLen(index, u.unit));
    if (!cipher.ok()) {
      u.status = DecryptUnit(index, u.unit, u.out);
    } else {
      const uint64_t skip = CipherOffset(index, u.unit) - first_off;
      u.status = OpenUnit(index, u.unit, cipher->subspan(skip, u.out.size()), u.out);
      if (!u.status.ok()) WipeMemory(u.out.data(), u.out.size());
    }
    if (unit_done) unit_done(k);
  }
}

Status EncryptedFile::ReadTensorRange(size_t index, uint64_t off, MutableByteSpan out) const {
  const format::TensorInfo& t = header_.tensors[index];
  auto end = CheckedAdd(off, out.size());
  if (!end || *end > t.byte_len()) {
    return InvalidArgumentError(path_ + ": read past the end of tensor \"" + t.name + "\"");
  }
  if (out.empty()) return Status::Ok();
  if (entries_[index] == nullptr) {
    // Stored in plain (partial encryption): served as stored, without integrity protection.
    return PreadExact(*file_, out, header_.data_start() + t.begin + off);
  }
  const uint64_t unit_len = chunked_ ? chunk_size_ : t.byte_len();
  uint64_t pos = off;
  size_t out_pos = 0;
  while (pos < *end) {
    uint64_t unit = pos / unit_len;
    uint64_t unit_start = unit * unit_len;
    uint64_t len = AuthUnitLen(index, unit);
    uint64_t skip = pos - unit_start;
    uint64_t take = std::min(len - skip, *end - pos);
    if (skip == 0 && take == len) {
      // The caller's buffer takes the whole unit: decrypt in place (wiped on failure).
      CTFS_RETURN_IF_ERROR(DecryptUnit(index, unit, out.subspan(out_pos, len)));
    } else {
      WipedBytes buf(len);
      CTFS_RETURN_IF_ERROR(DecryptUnit(index, unit, buf.span()));
      std::memcpy(out.data() + out_pos, buf.data() + skip, take);
    }
    pos += take;
    out_pos += take;
  }
  return Status::Ok();
}

Result<std::vector<EncryptedFile::RangePiece>> EncryptedFile::MapDataRange(uint64_t data_off,
                                                                           uint64_t len) const {
  auto end = CheckedAdd(data_off, len);
  if (!end || *end > header_.data_len) {
    return InvalidArgumentError(path_ + ": read past the end of the data region");
  }
  std::vector<RangePiece> pieces;
  // First tensor whose end is beyond data_off.
  auto it = std::upper_bound(by_offset_.begin(), by_offset_.end(), data_off,
                             [&](uint64_t off, size_t i) { return off < header_.tensors[i].end; });
  uint64_t pos = data_off;
  for (; pos < *end && it != by_offset_.end(); ++it) {
    const size_t index = *it;
    const format::TensorInfo& t = header_.tensors[index];
    if (t.byte_len() == 0) continue;
    const bool encrypted = entries_[index] != nullptr;
    const uint64_t unit_len = (encrypted && chunked_) ? chunk_size_ : t.byte_len();
    const uint64_t stop = std::min(t.end, *end);
    while (pos < stop) {
      RangePiece p;
      p.tensor = index;
      p.encrypted = encrypted;
      p.unit = (pos - t.begin) / unit_len;
      p.unit_len = encrypted ? AuthUnitLen(index, p.unit) : t.byte_len();
      p.skip = (pos - t.begin) - p.unit * unit_len;
      p.take = std::min(p.unit_len - p.skip, stop - pos);
      p.out_off = pos - data_off;
      pieces.push_back(p);
      pos += p.take;
    }
  }
  CTFS_CHECK(pos == *end);
  return pieces;
}

Status EncryptedFile::ReadData(uint64_t data_off, MutableByteSpan out) const {
  CTFS_ASSIGN_OR_RETURN(std::vector<RangePiece> pieces, MapDataRange(data_off, out.size()));
  for (const RangePiece& p : pieces) {
    const uint64_t tensor_off = (p.encrypted && chunked_ ? p.unit * chunk_size_ : 0) + p.skip;
    CTFS_RETURN_IF_ERROR(ReadTensorRange(p.tensor, tensor_off, out.subspan(p.out_off, p.take)));
  }
  return Status::Ok();
}

}  // namespace ctfs::fs
