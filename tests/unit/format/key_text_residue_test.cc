// SPDX-License-Identifier: Apache-2.0
// Parsing a JWK document leaves no key text in freed, unwiped heap blocks: FreedHeapWatch
// (which replaces this test binary's operator new/delete) scans every heap block the parse
// frees for 8-byte slices of the documents' base64 key text, on success and on each kind of
// failure (a rejected key, a syntax error right after or inside a key string, a truncated
// document). Controls show that the watch sees such copies: a freed std::string copy, the
// plain Json parser (std::string token buffers), even with every tree string wiped as the old
// jwk.cc did, and SecretJson fed with char text (the lexer's std::vector<char> token record).
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/secret_bytes.h"
#include "format/base64.h"
#include "format/internal/strict_json.h"
#include "format/jwk.h"
#include "tests/testing/freed_heap_watch.h"  // replaces operator new/delete (one per binary)

namespace ctfs::format {
namespace {

using ::ctfs::testing::FreedHeapWatch;

// KeyText is the base64 of `len` distinctive bytes (seeded, so each key differs).
std::string KeyText(size_t len, uint8_t seed) {
  Bytes bytes(len);
  for (size_t i = 0; i < len; ++i) bytes[i] = static_cast<uint8_t>(seed + 131 * i + i * i);
  return Base64Encode(bytes);
}

std::string Oct(const std::string& kid, const std::string& alg, const std::string& k) {
  return R"({"kty":"oct","alg":")" + alg + R"(","kid":")" + kid + R"(","k":")" + k + "\"}";
}

// Keeps the optimizer from dropping an allocation whose contents are never read.
void Use(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

struct Case {
  const char* name;
  std::string doc;
  bool parses;
};

TEST(KeyTextResidueTest, WatchSeesAFreedCopyAndNotAWipedOne) {
  const std::string secret = KeyText(32, 1);
  FreedHeapWatch watch({secret});
  {
    std::string copy(secret.data(), secret.size());
    Use(copy.data());
  }
  const size_t hits_after_copy = watch.blocks_with_secret();
  {
    std::string copy(secret.data(), secret.size());
    Use(copy.data());
    WipeMemory(copy.data(), copy.size());
  }
  watch.Stop();
  EXPECT_EQ(hits_after_copy, 1u);
  EXPECT_EQ(watch.blocks_with_secret(), 1u);
  EXPECT_EQ(watch.blocks_freed(), 2u);
}

TEST(KeyTextResidueTest, JwkParsingLeavesNoKeyTextInFreedHeapBlocks) {
  const std::string k0 = KeyText(32, 11), k1 = KeyText(16, 22), k2 = KeyText(32, 33);
  const std::string d = KeyText(32, 44), x = KeyText(32, 55);
  const std::string set =
      R"({"keys":[)" + Oct("enc-0", "aes256gcm", k0) + "," + Oct("enc-1", "aes128gcm", k1) + "," +
      Oct("enc-2", "chacha20poly1305", k2) + R"(,{"kty":"okp","alg":"ed25519","kid":"sign","x":")" +
      x + R"(","d":")" + d + R"("}]})";
  const std::string single = Oct("enc-0", "aes256gcm", k0);
  const std::string cut = single.substr(0, single.size() - 1);  // ..."k":"<k0>"
  const std::vector<Case> cases = {
      {"set", set, true},
      {"single", single, true},
      {"wrong key length after good keys",
       R"({"keys":[)" + Oct("enc-0", "aes256gcm", k0) + "," + Oct("enc-1", "aes256gcm", k1) + "]}",
       false},
      {"truncated after the key", cut, false},
      {"truncated inside the key", cut.substr(0, cut.size() - 10), false},
      {"junk after the key", cut + " x}", false},
      {"control byte inside the key", cut.substr(0, cut.size() - 20) + "\x01" + k0 + "\"}", false},
      {"bad escape inside the key", cut.substr(0, cut.size() - 20) + "\\q" + k0 + "\"}", false},
      {"duplicate member", cut + R"(,"k":")" + k2 + "\"}", false},
      {"base64url key", Oct("e", "aes256gcm", "_" + k0.substr(1)), false},
      {"nested too deep after the key",
       cut + R"(,"x5c":)" + std::string(100, '[') + std::string(100, ']') + "}", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FreedHeapWatch watch({k0, k1, k2, d});
    {
      Result<std::vector<Jwk>> r = ParseJwkDocument(c.doc);
      EXPECT_EQ(r.ok(), c.parses) << (r.ok() ? "" : r.status().ToString());
      if (!r.ok()) {
        for (const std::string* secret : {&k0, &k1, &k2, &d}) {  // no copies while watching
          EXPECT_EQ(r.status().message().find(std::string_view(*secret).substr(0, 8)),
                    std::string::npos)
              << r.status().message();
        }
      }
    }
    watch.Stop();
    EXPECT_GT(watch.blocks_freed(), 0u) << "the watch saw no heap traffic";
    EXPECT_EQ(watch.blocks_with_secret(), 0u) << "key text left in freed heap blocks";
  }
}

// WipeStrings zeroes every string in `j` (member names excepted), as jwk.cc used to do for k
// and d before freeing the tree.
void WipeStrings(internal::Json& j) {
  if (j.is_string()) {
    std::string& s = j.get_ref<std::string&>();
    WipeMemory(s.data(), s.size());
  }
  if (j.is_structured()) {
    for (internal::Json& child : j) WipeStrings(child);
  }
}

TEST(KeyTextResidueTest, ControlPlainJsonParserLeavesKeyText) {
  const std::string k = KeyText(32, 11);
  const std::string doc = Oct("enc-0", "aes256gcm", k);
  FreedHeapWatch watch({k});
  {
    Result<internal::Json> j = internal::ParseStrictJson(doc, "t");
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    WipeStrings(*j);
  }
  watch.Stop();
  EXPECT_GT(watch.blocks_with_secret(), 0u);
}

TEST(KeyTextResidueTest, ControlSecretJsonOverCharTextLeavesKeyText) {
  const std::string k = KeyText(32, 11);
  const std::string doc = Oct("enc-0", "aes256gcm", k);
  FreedHeapWatch watch({k});
  {
    // The tree and token buffer are in the arena, but with char input the lexer's record of
    // the raw token is a std::vector<char>.
    internal::SecretJson j =
        internal::SecretJson::parse(doc.begin(), doc.end(), nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object());
  }
  watch.Stop();
  EXPECT_GT(watch.blocks_with_secret(), 0u);
}

}  // namespace
}  // namespace ctfs::format
