// SPDX-License-Identifier: Apache-2.0
// Fuzzes format/base64 (strict standard base64). Oracles:
//   * the input as text: if it decodes, encoding the result gives the input back (exactly one
//     accepted spelling per byte string), and Base64DecodeSecret agrees with Base64Decode;
//   * the input as bytes: encoding has the padded length 4 * ceil(n / 3) and decodes back.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "format/base64.h"
#include "tests/fuzz/fuzz_util.h"

namespace ctfs::fuzz {
namespace {

void FuzzBase64(ByteSpan input) {
  const std::string_view text = AsStringView(input);

  auto decoded = format::Base64Decode(text);
  auto secret = format::Base64DecodeSecret(text);
  FUZZ_CHECK(decoded.ok() == secret.ok(), "Base64Decode and Base64DecodeSecret disagree");
  if (decoded.ok()) {
    FUZZ_CHECK(format::Base64Encode(*decoded) == text, "an accepted encoding is not canonical");
    FUZZ_CHECK(ByteSpan(*decoded).size() == secret->size() &&
                   std::equal(decoded->begin(), decoded->end(), secret->data()),
               "Base64DecodeSecret decoded other bytes");
  } else {
    // A short fixed reason: error messages never echo the input (it may be key material).
    const std::string& message = decoded.status().message();
    FUZZ_CHECK(message.rfind("invalid base64: ", 0) == 0 && message.size() <= 64,
               "error message: " + message);
  }

  const std::string encoded = format::Base64Encode(input);
  FUZZ_CHECK(encoded.size() == (input.size() + 2) / 3 * 4, "encoded length");
  auto back = format::Base64Decode(encoded);
  FUZZ_CHECK(back.ok(), "own encoding rejected: " + back.status().ToString());
  FUZZ_CHECK(std::equal(back->begin(), back->end(), input.begin(), input.end()),
             "round trip changed the bytes");
}

}  // namespace
}  // namespace ctfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctfs::fuzz::FuzzBase64(ctfs::ByteSpan(data, size));
  return 0;
}
