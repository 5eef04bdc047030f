// SPDX-License-Identifier: Apache-2.0
// Fuzzes format/plain_view: the header a loader sees for an encrypted file. The input is a
// whole safetensors file (plain or encrypted fixtures are the seeds). Oracles:
//   * for any accepted header, BuildPlainPrefix either fails (only when
//     __ctfs_plain_header__ is present) or gives a prefix that, followed by the data region,
//     parses as a safetensors file with the same tensors and the same metadata less the
//     reserved keys; without __ctfs_plain_header__ it is rule 1 (PlainHeaderOf serialized and
//     padded), and PlainHeaderOf's header_len is its length;
//   * the writer's promise, for a plain input: encrypting it (the reserved keys appended to
//     its metadata, plus __ctfs_plain_header__ exactly when OriginalHeaderNeedsCopy says so)
//     and taking the plain view gives back the input's header bytes exactly.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "base/bytes.h"
#include "format/base64.h"
#include "format/crypt_metadata.h"
#include "format/plain_view.h"
#include "format/safetensors_header.h"
#include "tests/fuzz/fuzz_util.h"

namespace ctfs::fuzz {
namespace {

bool IsRemoved(const std::string& key) {
  return format::IsReservedKey(key) || key == format::kPlainHeaderKey;
}

std::map<std::string, std::string> UserMetadata(const format::SafetensorsHeader& h) {
  std::map<std::string, std::string> m;
  for (const auto& e : h.metadata) {
    if (!IsRemoved(e.key)) m[e.key] = e.value;
  }
  return m;
}

// SameTensorSet: the same tensors, in any order (rule 2 may keep the original's order).
bool SameTensorSet(const format::SafetensorsHeader& a, const format::SafetensorsHeader& b) {
  if (a.tensors.size() != b.tensors.size() || a.data_len != b.data_len) return false;
  for (const format::TensorInfo& t : a.tensors) {
    const format::TensorInfo* o = b.FindTensor(t.name);
    if (o == nullptr || !SameTensor(t, *o)) return false;
  }
  return true;
}

// CheckPlainView: the plain view of accepted header `h` of `file`.
void CheckPlainView(const format::SafetensorsHeader& h, ByteSpan file) {
  const format::SafetensorsHeader rule1 = format::PlainHeaderOf(h);
  FUZZ_CHECK(SameTensorTable(rule1, h), "PlainHeaderOf changed the tensor table");
  auto prefix = format::BuildPlainPrefix(h);
  const bool stored = h.FindMetadata(format::kPlainHeaderKey) != nullptr;
  if (!prefix.ok()) {
    FUZZ_CHECK(stored, "BuildPlainPrefix failed without __ctfs_plain_header__: " +
                           prefix.status().ToString());
    return;
  }
  if (!stored) {
    FUZZ_CHECK(*prefix == format::BuildHeaderPrefix(format::SerializeHeaderJson(rule1)),
               "rule 1 prefix");
    FUZZ_CHECK(rule1.header_len + 8 == prefix->size(), "PlainHeaderOf header_len");
  }
  Bytes view = *prefix;
  view.insert(view.end(), file.begin() + static_cast<long>(h.data_start()), file.end());
  auto parsed = format::ParseHeader(view, view.size());
  FUZZ_CHECK(parsed.ok(), "plain view does not parse: " + parsed.status().ToString());
  FUZZ_CHECK(parsed->data_start() == prefix->size(), "plain view header length");
  FUZZ_CHECK(SameTensorSet(*parsed, h), "plain view has other tensors");
  FUZZ_CHECK(UserMetadata(*parsed) == UserMetadata(h), "plain view has other metadata");
  for (const auto& e : parsed->metadata) {
    FUZZ_CHECK(!IsRemoved(e.key), "plain view keeps reserved key " + e.key);
  }
}

// CheckWriterRoundTrip: for a plain header `h` with prefix `file[0, 8 + N)`, what `ctfs
// encrypt` writes (fs/encryptor.cc BuildEncryptedHeader) has that prefix as its plain view.
void CheckWriterRoundTrip(const format::SafetensorsHeader& h, ByteSpan file) {
  for (const auto& e : h.metadata) {
    if (IsRemoved(e.key)) return;  // the writer refuses these inputs
  }
  const ByteSpan original = file.first(h.data_start());
  format::SafetensorsHeader enc = h;
  enc.has_metadata = true;
  enc.metadata.push_back({format::kCryptoKeysKey, "{}"});
  enc.metadata.push_back({format::kEncryptionKey, "{}"});
  enc.metadata.push_back({format::kPolicyKey, "{}"});
  if (format::OriginalHeaderNeedsCopy(h, original)) {
    enc.metadata.push_back(
        {format::kPlainHeaderKey, format::Base64Encode(original.subspan(8))});
  }
  enc.metadata.push_back({format::kSignatureKey, std::string(88, 'A')});
  // The encrypted header as the reader gets it: serialized, then parsed.
  Bytes enc_file = format::BuildHeaderPrefix(format::SerializeHeaderJson(enc));
  enc_file.insert(enc_file.end(), file.begin() + static_cast<long>(h.data_start()), file.end());
  auto enc_parsed = format::ParseHeader(enc_file, enc_file.size());
  FUZZ_CHECK(enc_parsed.ok(), "encrypted header rejected: " + enc_parsed.status().ToString());
  auto prefix = format::BuildPlainPrefix(*enc_parsed);
  FUZZ_CHECK(prefix.ok(), "plain view of an encrypted plain file: " + prefix.status().ToString());
  FUZZ_CHECK(std::equal(prefix->begin(), prefix->end(), original.begin(), original.end()),
             "Decrypt(Encrypt(F)) header differs from F");
}

void FuzzPlainView(ByteSpan input) {
  auto h = format::ParseHeader(input, input.size());
  if (!h.ok()) return;
  CheckPlainView(*h, input);
  CheckWriterRoundTrip(*h, input);
}

}  // namespace
}  // namespace ctfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctfs::fuzz::FuzzPlainView(ctfs::ByteSpan(data, size));
  return 0;
}
