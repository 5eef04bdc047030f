// SPDX-License-Identifier: Apache-2.0
#include "fs/source_file_class.h"

#include <algorithm>

#include "format/crypt_metadata.h"
#include "format/plain_view.h"
#include "format/reserved_keys.h"
#include "format/safetensors_header.h"

namespace ctfs::fs {
namespace {

SourceFileClass Refused(Status why) {
  SourceFileClass c;
  c.kind = SourceFileClass::Kind::kRefused;
  c.refusal = std::move(why);
  return c;
}

// SafetensorsName classifies a file named *.safetensors.
SourceFileClass SafetensorsName(const RandomAccessFile& file, uint64_t file_len) {
  const std::string& path = file.path();
  uint8_t len_bytes[8] = {};
  const size_t first = static_cast<size_t>(std::min<uint64_t>(8, file_len));
  if (Status st = PreadExact(file, MutableByteSpan(len_bytes, first), 0); !st.ok()) {
    return Refused(st);
  }
  auto n = format::ParseHeaderLength(ByteSpan(len_bytes, first), file_len);
  if (!n.ok()) return Refused(n.status().WithContext(path));  // "not a safetensors file (...)"
  Bytes prefix(8 + *n);
  if (Status st = PreadExact(file, prefix, 0); !st.ok()) return Refused(st);
  auto header = format::ParseHeader(prefix, file_len);
  if (!header.ok()) {
    std::string damaged;
    if (auto key = format::ReservedKeyMentioned(ByteSpan(prefix).subspan(8))) {
      damaged = " (its header mentions " + *key + ": a damaged CryptoTensors file)";
    }
    return Refused(Status(header.status().code(), path + ": not a valid safetensors file: " +
                                                      header.status().message() + damaged));
  }
  if (!format::IsEncrypted(*header)) {
    if (auto key = format::ReservedKeyInUse(*header)) {
      return Refused(InvalidArgumentError(
          path + ": uses the reserved name " + *key + " but has no " + format::kEncryptionKey +
          ": a damaged or stripped CryptoTensors file, whose data may be ciphertext"));
    }
    SourceFileClass c;
    c.served_len = file_len;
    return c;
  }
  auto plain_prefix = format::BuildPlainPrefix(*header);
  if (!plain_prefix.ok()) return Refused(plain_prefix.status().WithContext(path));
  SourceFileClass c;
  c.kind = SourceFileClass::Kind::kEncrypted;
  c.served_len = plain_prefix->size() + header->data_len;
  return c;
}

// OtherName classifies any other file: passed through unless it starts with a safetensors
// header that mentions a reserved name.
SourceFileClass OtherName(const RandomAccessFile& file, uint64_t file_len) {
  SourceFileClass pass;
  pass.served_len = file_len;
  uint8_t len_bytes[9] = {};
  if (file_len < sizeof len_bytes) return pass;
  if (Status st = PreadExact(file, MutableByteSpan(len_bytes, sizeof len_bytes), 0); !st.ok()) {
    return Refused(st);
  }
  auto n = format::ParseHeaderLength(ByteSpan(len_bytes, 8), file_len);
  // A JSON header starts with '{' (the writers emit no leading space).
  if (!n.ok() || *n < 2 || len_bytes[8] != '{') return pass;
  Bytes json(*n);
  if (Status st = PreadExact(file, json, 8); !st.ok()) return Refused(st);
  if (auto key = format::ReservedKeyMentioned(json)) {
    return Refused(InvalidArgumentError(file.path() + ": holds a CryptoTensors header (" + *key +
                                        ") but is not named *.safetensors: rename it or move "
                                        "it out of the source directory"));
  }
  return pass;
}

}  // namespace

bool IsSafetensorsName(const std::string& name) {
  const std::string ext = ".safetensors";
  return name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
}

SourceFileClass ClassifySourceFile(const RandomAccessFile& file, uint64_t file_len,
                                   const std::string& name) {
  return IsSafetensorsName(name) ? SafetensorsName(file, file_len) : OtherName(file, file_len);
}

}  // namespace ctfs::fs
