// SPDX-License-Identifier: Apache-2.0
// Loading keys from every source (--key file, file:// jku, CRYPTOTENSOR_KEYS) and looking
// them up leaves no key text in freed heap blocks: the variable is parsed in place (no
// std::string copy of its value), files are read into SecretBytes and parsed as SecretJson.
// FreedHeapWatch replaces this test binary's operator new/delete; it does not see OpenSSL's
// own allocations (deriving x from d).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <optional>
#include <string>
#include <vector>

#include "format/base64.h"
#include "keys/key_resolver.h"
#include "tests/testing/freed_heap_watch.h"  // replaces operator new/delete (one per binary)
#include "tests/testing/temp_dir.h"

namespace ctfs::keys {
namespace {

using ::ctfs::testing::FreedHeapWatch;

constexpr char kEnvVar[] = "CRYPTOTENSOR_KEYS";

std::string KeyText(uint8_t seed) {
  Bytes bytes(32);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(seed + 97 * i + i * i);
  return format::Base64Encode(bytes);
}

std::string KeySet(const std::string& tag, const std::string& k, const std::string& d) {
  return R"({"keys":[{"kty":"oct","alg":"aes256gcm","kid":")" + tag + R"(-enc","k":")" + k +
         R"("},{"kty":"okp","alg":"ed25519","kid":")" + tag + R"(-sign","d":")" + d + R"("}]})";
}

// Sets CRYPTOTENSOR_KEYS for one test and restores it.
class ScopedKeysEnv {
 public:
  explicit ScopedKeysEnv(const std::string& value) {
    if (const char* v = std::getenv(kEnvVar)) saved_ = v;
    ::setenv(kEnvVar, value.c_str(), 1);
  }
  ~ScopedKeysEnv() {
    if (saved_) {
      ::setenv(kEnvVar, saved_->c_str(), 1);
    } else {
      ::unsetenv(kEnvVar);
    }
  }

 private:
  std::optional<std::string> saved_;
};

void Use(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

TEST(KeyTextResidueTest, LoadingAndFindingKeysLeavesNoKeyTextInFreedHeapBlocks) {
  const std::string file_k = KeyText(1), file_d = KeyText(2), jku_k = KeyText(3),
                    jku_d = KeyText(4), env_k = KeyText(5), env_d = KeyText(6);
  ctfs::testing::TempDir dir;
  const std::string file = dir.File("keys.jwk"), jku_file = dir.File("jku.jwk");
  ctfs::testing::WriteFile(file, KeySet("file", file_k, file_d));
  ctfs::testing::WriteFile(jku_file, KeySet("jku", jku_k, jku_d));
  ScopedKeysEnv env(KeySet("env", env_k, env_d));
  KeySourceOptions options;
  options.key_files = {file};
  const std::optional<std::string> jku = "file://" + jku_file;

  FreedHeapWatch watch({file_k, file_d, jku_k, jku_d, env_k, env_d});
  {
    Result<KeyResolver> resolver = KeyResolver::Create(options);
    ASSERT_TRUE(resolver.ok()) << resolver.status().ToString();
    EXPECT_TRUE(resolver->FindKey("oct", "file-enc", jku).ok());
    EXPECT_TRUE(resolver->FindKey("okp", "jku-sign", jku).ok());
    EXPECT_TRUE(resolver->FindKey("oct", "env-enc", jku).ok());
    EXPECT_TRUE(resolver->FindKey("okp", "env-sign", std::nullopt).ok());
    EXPECT_FALSE(resolver->FindKey("oct", "absent", jku).ok());
  }
  watch.Stop();
  EXPECT_GT(watch.blocks_freed(), 0u) << "the watch saw no heap traffic";
  EXPECT_EQ(watch.blocks_with_secret(), 0u) << "key text left in freed heap blocks";
}

// Control: a std::string copy of the variable's value, as parsing it from a copy would make,
// is seen.
TEST(KeyTextResidueTest, ControlACopyOfTheVariableIsSeen) {
  const std::string env_k = KeyText(5);
  ScopedKeysEnv env(KeySet("env", env_k, KeyText(6)));
  FreedHeapWatch watch({env_k});
  {
    std::string copy(std::getenv(kEnvVar));
    Use(copy.data());
  }
  watch.Stop();
  EXPECT_EQ(watch.blocks_with_secret(), 1u);
}

}  // namespace
}  // namespace ctfs::keys
