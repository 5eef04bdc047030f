// SPDX-License-Identifier: Apache-2.0
#include "keys/master_key.h"

#include <string>

#include "crypto/aead.h"

namespace ctfs::keys {
namespace {

Status CheckTokenAlg(const TokenKey& token, AeadAlg alg) {
  if (token.alg() == alg) return Status::Ok();
  return FailedPreconditionError(token.Describe() + " does " +
                                 std::string(AeadAlgName(token.alg())) + ", not " +
                                 std::string(AeadAlgName(alg)) +
                                 " (token keys support AES-GCM only)");
}

}  // namespace

bool IsMasterKey(const format::Jwk& key) {
  return key.kty == "oct" && (!key.k.empty() || key.token != nullptr);
}

Status UnwrapDataKey(const format::Jwk& master, AeadAlg alg, ByteSpan iv, ByteSpan wrapped,
                     ByteSpan tag, MutableByteSpan dek) {
  if (master.token == nullptr) return crypto::AeadOpen(alg, master.k.span(), iv, wrapped, tag, dek);
  CTFS_RETURN_IF_ERROR(CheckTokenAlg(*master.token, alg));
  return master.token->Unwrap(iv, wrapped, tag, dek);
}

Status WrapDataKey(const format::Jwk& master, AeadAlg alg, ByteSpan iv, ByteSpan dek,
                   MutableByteSpan wrapped, MutableByteSpan tag) {
  if (master.token == nullptr) return crypto::AeadSeal(alg, master.k.span(), iv, dek, wrapped, tag);
  CTFS_RETURN_IF_ERROR(CheckTokenAlg(*master.token, alg));
  return master.token->Wrap(iv, dek, wrapped, tag);
}

}  // namespace ctfs::keys
