// SPDX-License-Identifier: Apache-2.0
#include "fs/encryptor.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>

#include "base/checked_math.h"
#include "base/file_io.h"
#include "crypto/aead.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "format/base64.h"
#include "format/limits.h"
#include "format/plain_view.h"
#include "format/signing_message.h"
#include "fs/copy_alignment.h"
#include "fs/encrypted_file.h"
#include "fs/write_behind.h"
#include "keys/master_key.h"

namespace ctfs::fs {
namespace {

// Data moves in blocks of whole units (chunks; v1: tensors) of about this length; unselected
// tensors are copied in blocks of this length.
constexpr uint64_t kTargetBlockLen = 2 << 20;
// Staging buffers in flight (being filled, queued, being written): enough to keep the reader,
// the AEAD and the writer busy at once; at most kMaxStagingLen in all, except that one buffer
// is always allowed (a v1 block is a whole tensor, as large as before this pipeline).
constexpr size_t kMaxBuffers = 4;
constexpr uint64_t kMaxStagingLen = 64 << 20;

bool Selected(const std::string& name, const std::vector<std::string>& globs) {
  if (globs.empty()) return true;
  for (const std::string& g : globs) {
    if (fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

// Picks a random base nonce whose 32-bit counter cannot overflow over `num_chunks` chunks
// (the reference refuses such nonces on both sides; cryptotensors-format.md §2.4).
Status RandomBaseIv(uint64_t num_chunks, Bytes& base_iv) {
  base_iv.assign(kAeadNonceLen, 0);
  for (int attempt = 0; attempt < 64; ++attempt) {
    CTFS_RETURN_IF_ERROR(crypto::RandomBytes(base_iv));
    if (format::ChunkNonce(base_iv, num_chunks - 1).ok()) return Status::Ok();
  }
  return InternalError("could not draw a usable base nonce");
}

// Fills every field of `tc` except the data tags, wrapping a fresh data key.
Status NewTensorCrypto(AeadAlg alg, const format::Jwk& master, const format::TensorInfo& t,
                       bool chunked, uint64_t chunk_size, format::TensorCrypto& tc,
                       SecretBytes& dek) {
  const size_t key_len = AeadKeyLen(alg);
  CTFS_ASSIGN_OR_RETURN(dek, crypto::RandomSecret(key_len));
  tc.tensor_name = t.name;
  tc.key_iv.assign(kAeadNonceLen, 0);
  CTFS_RETURN_IF_ERROR(crypto::RandomBytes(tc.key_iv));
  tc.wrapped_key.assign(key_len, 0);
  tc.key_tag.assign(kAeadTagLen, 0);
  CTFS_RETURN_IF_ERROR(
      keys::WrapDataKey(master, alg, tc.key_iv, dek.span(), tc.wrapped_key, tc.key_tag));
  if (chunked) {
    uint64_t n = format::NumChunks(t.byte_len(), chunk_size);
    CTFS_RETURN_IF_ERROR(RandomBaseIv(n, tc.base_iv));
    tc.tags.assign(n * kAeadTagLen, 0);
  } else if (t.byte_len() > 0) {
    tc.iv.assign(kAeadNonceLen, 0);
    CTFS_RETURN_IF_ERROR(crypto::RandomBytes(tc.iv));
    tc.tag.assign(kAeadTagLen, 0);
  }  // v1 empty tensor: iv and tag stay empty, as the reference writes them.
  return Status::Ok();
}

// The encrypted header: original metadata in order, then the reserved keys; tensors unchanged.
format::SafetensorsHeader BuildEncryptedHeader(const format::SafetensorsHeader& plain,
                                               const std::string& crypto_keys_json,
                                               const std::string& encryption_json,
                                               const std::string& policy_json,
                                               const std::string* plain_header_b64,
                                               const std::string& signature_b64) {
  format::SafetensorsHeader h = plain;
  h.has_metadata = true;
  h.metadata.push_back({format::kCryptoKeysKey, crypto_keys_json});
  h.metadata.push_back({format::kEncryptionKey, encryption_json});
  h.metadata.push_back({format::kPolicyKey, policy_json});
  if (plain_header_b64 != nullptr)
    h.metadata.push_back({format::kPlainHeaderKey, *plain_header_b64});
  h.metadata.push_back({format::kSignatureKey, signature_b64});
  return h;
}

// BlockLen: the bytes of tensor `t` read, sealed and written as one block.
uint64_t BlockLen(const format::TensorInfo& t, bool selected, bool chunked, uint64_t chunk_size) {
  uint64_t len = kTargetBlockLen;
  if (selected && chunked) len = std::max<uint64_t>(1, kTargetBlockLen / chunk_size) * chunk_size;
  if (selected && !chunked) len = t.byte_len();  // v1: one AEAD call over the whole tensor
  return std::max<uint64_t>(1, std::min(len, t.byte_len()));
}

struct DataPlan {
  std::vector<size_t> tensor_order;  // by data offset: sequential reads and writes
  size_t buffer_len = 1;             // largest block
  size_t num_buffers = 1;
};

DataPlan PlanData(const format::SafetensorsHeader& plain, const std::vector<int>& entry_of,
                  bool chunked, uint64_t chunk_size) {
  DataPlan p;
  p.tensor_order.resize(plain.tensors.size());
  for (size_t i = 0; i < p.tensor_order.size(); ++i) p.tensor_order[i] = i;
  std::stable_sort(p.tensor_order.begin(), p.tensor_order.end(), [&](size_t a, size_t b) {
    return plain.tensors[a].begin < plain.tensors[b].begin;
  });
  uint64_t max_len = 1;
  for (size_t i = 0; i < plain.tensors.size(); ++i) {
    max_len = std::max(max_len, BlockLen(plain.tensors[i], entry_of[i] >= 0, chunked, chunk_size));
  }
  p.buffer_len = static_cast<size_t>(max_len);
  p.num_buffers =
      static_cast<size_t>(std::clamp<uint64_t>(kMaxStagingLen / max_len, 1, kMaxBuffers));
  return p;
}

}  // namespace

Status EncryptFile(const std::string& src, const std::string& dst, const format::Jwk& enc_key,
                   const format::Jwk& sign_key, const EncryptOptions& options,
                   const ProgressFn& progress) {
  if (!keys::IsMasterKey(enc_key)) {
    return InvalidArgumentError("encryption key must be a kty \"oct\" JWK with k, or a token key");
  }
  if (sign_key.kty != "okp" || sign_key.d.empty()) {
    return InvalidArgumentError(
        "signing key must be a kty \"okp\" JWK with its private part d (the key file from "
        "`ctfs keygen --out`, not the reader copy)");
  }
  CTFS_ASSIGN_OR_RETURN(AeadAlg alg, ParseAeadAlg(enc_key.alg));
  CTFS_ASSIGN_OR_RETURN(auto public_key, crypto::Ed25519PublicKeyFromSeed(sign_key.d));
  if (!sign_key.x.empty() &&
      !std::equal(sign_key.x.begin(), sign_key.x.end(), public_key.begin(), public_key.end())) {
    return InvalidArgumentError("signing key: public part x does not match private part d");
  }
  if (options.version != "1" && options.version != "2") {
    return InvalidArgumentError("format version must be 1 or 2, got " + options.version);
  }
  const bool chunked = options.version == "2";
  if (chunked && options.chunk_size == 0) return InvalidArgumentError("chunk size must be > 0");

  CTFS_ASSIGN_OR_RETURN(HeaderAndFd in, ReadHeader(src));
  const format::SafetensorsHeader& plain = in.header;
  for (const format::MetadataEntry& e : plain.metadata) {
    if (format::IsReservedKey(e.key) || e.key == format::kPlainHeaderKey) {
      return InvalidArgumentError(src + ": already a CryptoTensors file (metadata key " + e.key +
                                  ")");
    }
  }

  // Per-tensor crypto parameters, sorted by name like the reference's BTreeMap.
  std::vector<format::TensorCrypto> entries;
  std::vector<SecretBytes> deks(plain.tensors.size());
  std::vector<int> entry_of(plain.tensors.size(), -1);
  for (size_t i = 0; i < plain.tensors.size(); ++i) {
    const format::TensorInfo& t = plain.tensors[i];
    if (!Selected(t.name, options.tensor_globs)) continue;
    if (chunked &&
        format::NumChunks(t.byte_len(), options.chunk_size) > format::kMaxChunksPerTensor) {
      return InvalidArgumentError(src + ": tensor \"" + t.name +
                                  "\" needs more than 2^32 chunks; use a larger --chunk-size");
    }
    format::TensorCrypto tc;
    CTFS_RETURN_IF_ERROR(
        NewTensorCrypto(alg, enc_key, t, chunked, options.chunk_size, tc, deks[i]));
    entries.push_back(std::move(tc));
    entry_of[i] = static_cast<int>(entries.size() - 1);
  }
  if (entries.empty()) {
    return InvalidArgumentError(src + ": no tensor matches the --tensors patterns");
  }
  // Keep entry_of valid across the sort: sort indices instead of entries.
  std::vector<size_t> order(entries.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return entries[a].tensor_name < entries[b].tensor_name; });

  format::CryptoKeys ck;
  ck.version = options.version;
  if (chunked) ck.chunk_size = options.chunk_size;
  ck.enc = {"oct", std::string(AeadAlgName(alg)), enc_key.kid, enc_key.jku};
  ck.sign = {"okp", "ed25519", sign_key.kid, sign_key.jku};
  const std::string crypto_keys_json = format::SerializeCryptoKeys(ck);
  const std::string policy_json = format::SerializePolicy(options.policy);
  std::string plain_header_b64;
  const bool copy_header = format::OriginalHeaderNeedsCopy(plain, in.prefix);
  if (copy_header) plain_header_b64 = format::Base64Encode(ByteSpan(in.prefix).subspan(8));
  const std::string* plain_header_ptr = copy_header ? &plain_header_b64 : nullptr;

  auto sorted_entries = [&]() {
    std::vector<format::TensorCrypto> out;
    for (size_t i : order) out.push_back(entries[i]);
    return out;
  };
  // Header length is fixed by field lengths: size it with placeholder tags and signature.
  const std::string placeholder_sig(88, 'A');
  format::SafetensorsHeader sized = BuildEncryptedHeader(
      plain, crypto_keys_json, format::SerializeEncryption(sorted_entries(), chunked), policy_json,
      plain_header_ptr, placeholder_sig);
  const uint64_t header_len =
      format::BuildHeaderPrefix(format::SerializeHeaderJson(sized)).size() - 8;
  const uint64_t out_data_start = 8 + header_len;

  struct stat st;
  mode_t mode = (::fstat(in.fd.get(), &st) == 0) ? (st.st_mode & 0777) : 0644;
  // Read-ahead hint only: tensors are read in offset order below.
  ::posix_fadvise(in.fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  CTFS_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Create(dst, mode));

  // Data: each tensor at its own offset, encrypted chunk by chunk (or copied if unselected).
  // This thread reads and seals one block (whole units) at a time; a writer thread writes the
  // previous blocks meanwhile. Declared after `out`, so it is stopped before `out` goes away.
  const DataPlan plan = PlanData(plain, entry_of, chunked, options.chunk_size);
  WriteBehind pipe(plan.num_buffers, plan.buffer_len, [&out](ByteSpan data, uint64_t out_off) {
    return out.PwriteAll(data, out_off);
  });
  for (size_t i : plan.tensor_order) {
    const format::TensorInfo& t = plain.tensors[i];
    const uint64_t in_off = plain.data_start() + t.begin;
    const uint64_t out_off = out_data_start + t.begin;
    const bool selected = entry_of[i] >= 0;
    const uint64_t unit_len = chunked ? options.chunk_size : t.byte_len();
    const uint64_t block_len = BlockLen(t, selected, chunked, options.chunk_size);
    // A chunked empty tensor still has one (empty) chunk with a tag; a v1 one has no tag.
    const uint64_t num_blocks = selected && chunked
                                    ? std::max<uint64_t>(1, CeilDiv(t.byte_len(), block_len))
                                    : CeilDiv(t.byte_len(), block_len);
    for (uint64_t b = 0; b < num_blocks; ++b) {
      const uint64_t off = b * block_len;
      const uint64_t len = std::min(block_len, t.byte_len() - off);
      // Placed so that the pread into the buffer and the write out of it copy fast.
      CTFS_ASSIGN_OR_RETURN(WriteBehind::Buffer buf,
                            pipe.Acquire(ChunkLead(out_off + off, in_off + off)));
      MutableByteSpan block = buf.bytes.first(len);
      CTFS_RETURN_IF_ERROR(PreadExact(in.fd.get(), block, in_off + off, src));
      if (selected && chunked) {
        format::TensorCrypto& tc = entries[entry_of[i]];
        const uint64_t first_unit = off / unit_len;
        const uint64_t block_units = std::max<uint64_t>(1, CeilDiv(len, unit_len));
        for (uint64_t k = 0; k < block_units; ++k) {
          const uint64_t u = first_unit + k;
          MutableByteSpan chunk =
              block.subspan(k * unit_len, std::min(unit_len, len - k * unit_len));
          CTFS_ASSIGN_OR_RETURN(auto nonce, format::ChunkNonce(tc.base_iv, u));
          MutableByteSpan tag(tc.tags.data() + u * kAeadTagLen, kAeadTagLen);
          CTFS_RETURN_IF_ERROR(crypto::AeadSeal(alg, deks[i].span(), nonce, chunk, chunk, tag));
        }
      } else if (selected) {
        format::TensorCrypto& tc = entries[entry_of[i]];
        CTFS_RETURN_IF_ERROR(crypto::AeadSeal(alg, deks[i].span(), tc.iv, block, block, tc.tag));
      }
      CTFS_RETURN_IF_ERROR(pipe.Submit(buf, len, out_off + off));
      if (progress) progress(len);
    }
    deks[i].Wipe();
  }
  CTFS_RETURN_IF_ERROR(pipe.Finish());

  // Header: sign the canonical message, then write the prefix.
  format::SafetensorsHeader unsigned_header = BuildEncryptedHeader(
      plain, crypto_keys_json, format::SerializeEncryption(sorted_entries(), chunked), policy_json,
      plain_header_ptr, placeholder_sig);
  unsigned_header.metadata.pop_back();  // the signature is not part of the message
  std::string message = format::BuildSigningMessage(unsigned_header);
  CTFS_ASSIGN_OR_RETURN(auto signature, crypto::Ed25519Sign(sign_key.d, AsBytes(message)));
  unsigned_header.metadata.push_back({format::kSignatureKey, format::Base64Encode(signature)});
  Bytes prefix = format::BuildHeaderPrefix(format::SerializeHeaderJson(unsigned_header));
  if (prefix.size() != out_data_start) {
    return InternalError("encrypted header length changed after signing (bug)");
  }
  CTFS_RETURN_IF_ERROR(out.PwriteAll(prefix, 0));
  CTFS_RETURN_IF_ERROR(out.Truncate(out_data_start + plain.data_len));
  return out.Commit();
}

}  // namespace ctfs::fs
