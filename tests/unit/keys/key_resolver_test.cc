// SPDX-License-Identifier: Apache-2.0
// Tests for keys/key_resolver: JWK file loading and its permission checks, file:// jku
// mapping, and key selection across --key files, jku and CRYPTOTENSOR_KEYS. Each test writes
// its JWK files into a fresh mkdtemp directory (removed afterwards) and restores HOME and
// CRYPTOTENSOR_KEYS. Keys: the repo's public test pair (cryptotensors-format.md §1.8) with kids
// enc-key / sign-key, and a second set (enc-key-2 / sign-key-2).
#include "keys/key_resolver.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ctfs::keys {
namespace {

using format::Jwk;

// §1.8 test pair.
constexpr char kEncJwk[] = R"({"kty":"oct","alg":"aes256gcm","kid":"enc-key",)"
                           R"("k":"L+xl38kCEteXk+6Tm1mzu5JvFriVibzAsgpYX2WmAgA="})";
constexpr char kSignJwk[] = R"({"kty":"okp","alg":"ed25519","kid":"sign-key",)"
                            R"("d":"uTKTjQL6pX1Tqb7Hpor4A1s+TdgHReQEITZWWAf7DIc=",)"
                            R"("x":"xkqFcGjXCBMk75q0259N1ggRJsqc+FTAiXMuKX72fd8="})";
// Second set: master key 0x00..0x1f; Ed25519 seed 32 x 0x07 (public key from §1.8).
constexpr char kEnc2Jwk[] = R"({"kty":"oct","alg":"aes256gcm","kid":"enc-key-2",)"
                            R"("k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})";
constexpr char kSign2Jwk[] = R"({"kty":"okp","alg":"ed25519","kid":"sign-key-2",)"
                             R"("d":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",)"
                             R"("x":"6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw="})";

// First bytes of the decoded keys, enough to tell them apart.
constexpr uint8_t kEncKeyPrefix[] = {0x2f, 0xec, 0x65, 0xdf};
constexpr uint8_t kEnc2KeyPrefix[] = {0x00, 0x01, 0x02, 0x03};
constexpr uint8_t kSignPubPrefix[] = {0xc6, 0x4a, 0x85, 0x70};
constexpr uint8_t kSign2PubPrefix[] = {0xea, 0x4a, 0x6c, 0x63};

std::string Set(const std::vector<std::string>& keys) {
  std::string out = R"({"keys":[)";
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) out += ",";
    out += keys[i];
  }
  return out + "]}";
}

template <size_t N>
bool HasPrefix(const uint8_t* data, size_t len, const uint8_t (&prefix)[N]) {
  if (len < N) return false;
  for (size_t i = 0; i < N; ++i) {
    if (data[i] != prefix[i]) return false;
  }
  return true;
}

bool IsEncKey(const Jwk& k) {
  return k.kty == "oct" && k.kid == "enc-key" && k.k.size() == 32 &&
         HasPrefix(k.k.data(), k.k.size(), kEncKeyPrefix);
}
bool IsEnc2Key(const Jwk& k) {
  return k.kty == "oct" && k.kid == "enc-key-2" && k.k.size() == 32 &&
         HasPrefix(k.k.data(), k.k.size(), kEnc2KeyPrefix);
}
bool IsSignKey(const Jwk& k) {
  return k.kty == "okp" && k.kid == "sign-key" && k.d.size() == 32 &&
         HasPrefix(k.x.data(), k.x.size(), kSignPubPrefix);
}
bool IsSign2Key(const Jwk& k) {
  return k.kty == "okp" && k.kid == "sign-key-2" && k.d.size() == 32 &&
         HasPrefix(k.x.data(), k.x.size(), kSign2PubPrefix);
}

// Saves an environment variable and restores it on destruction.
class ScopedEnv {
 public:
  explicit ScopedEnv(const char* name) : name_(name) {
    const char* v = std::getenv(name);
    if (v != nullptr) saved_ = std::string(v);
  }
  ~ScopedEnv() {
    if (saved_) {
      ::setenv(name_, saved_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  void Set(const std::string& value) { ::setenv(name_, value.c_str(), 1); }
  void Unset() { ::unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> saved_;
};

class KeyResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.Unset();
    std::string tmpl = (std::filesystem::temp_directory_path() / "ctfs-keys-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Write creates dir_/name with `content` and mode `mode` (fchmod'ed, so umask is moot).
  std::string Write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    std::string path = dir_ + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0) << path;
    if (fd < 0) return path;
    EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    EXPECT_EQ(::fchmod(fd, mode), 0);
    ::close(fd);
    return path;
  }

  // A resolver with only explicit files.
  static Result<KeyResolver> Explicit(std::vector<std::string> files) {
    KeySourceOptions o;
    o.key_files = std::move(files);
    o.use_env = false;
    return KeyResolver::Create(o);
  }

  ScopedEnv env_{"CRYPTOTENSOR_KEYS"};
  ScopedEnv home_{"HOME"};
  std::string dir_;
};

TEST_F(KeyResolverTest, KidMatchAmongSeveralKeys) {
  std::string f = Write("keys.jwk", Set({kEnc2Jwk, kSign2Jwk, kEncJwk, kSignJwk}));
  auto r = Explicit({f});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->explicit_keys().size(), 4u);

  auto enc = r->FindKey("oct", "enc-key", std::nullopt);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_TRUE(IsEncKey(*enc));
  auto enc2 = r->FindKey("oct", "enc-key-2", std::nullopt);
  ASSERT_TRUE(enc2.ok()) << enc2.status().ToString();
  EXPECT_TRUE(IsEnc2Key(*enc2));
  auto sign = r->FindKey("okp", "sign-key", std::nullopt);
  ASSERT_TRUE(sign.ok()) << sign.status().ToString();
  EXPECT_TRUE(IsSignKey(*sign));
  auto sign2 = r->FindKey("okp", "sign-key-2", std::nullopt);
  ASSERT_TRUE(sign2.ok()) << sign2.status().ToString();
  EXPECT_TRUE(IsSign2Key(*sign2));
}

TEST_F(KeyResolverTest, KidMustMatchKty) {
  // The kid exists, but for the other key type.
  std::string f = Write("keys.jwk", Set({kEncJwk, kSignJwk}));
  auto r = Explicit({f});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto k = r->FindKey("okp", "enc-key", std::nullopt);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kNotFound);
}

TEST_F(KeyResolverTest, NoKidTakesFirstOfKty) {
  std::string a = Write("a.jwk", Set({kSign2Jwk, kEnc2Jwk}));
  std::string b = Write("b.jwk", Set({kEncJwk, kSignJwk}));
  auto r = Explicit({a, b});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto enc = r->FindKey("oct", std::nullopt, std::nullopt);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_TRUE(IsEnc2Key(*enc));
  auto sign = r->FindKey("okp", std::nullopt, std::nullopt);
  ASSERT_TRUE(sign.ok()) << sign.status().ToString();
  EXPECT_TRUE(IsSign2Key(*sign));
}

TEST_F(KeyResolverTest, SingleJwkFile) {
  std::string f = Write("enc.jwk", kEncJwk);
  auto r = Explicit({f});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto enc = r->FindKey("oct", "enc-key", std::nullopt);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_TRUE(IsEncKey(*enc));
}

TEST_F(KeyResolverTest, MissingKidIsNotFoundNamingKid) {
  std::string f = Write("keys.jwk", Set({kEncJwk, kSignJwk}));
  auto r = Explicit({f});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto k = r->FindKey("oct", "no-such-kid", std::nullopt);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kNotFound);
  EXPECT_NE(k.status().message().find("no-such-kid"), std::string::npos) << k.status().message();
  EXPECT_NE(k.status().message().find("--key"), std::string::npos) << k.status().message();
  EXPECT_NE(k.status().message().find("CRYPTOTENSOR_KEYS"), std::string::npos);
  // Never key bytes.
  EXPECT_EQ(k.status().message().find("L+xl38"), std::string::npos);
}

TEST_F(KeyResolverTest, NoSourcesIsNotFound) {
  auto r = Explicit({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto k = r->FindKey("oct", std::nullopt, std::nullopt);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kNotFound);
}

TEST_F(KeyResolverTest, UnknownKtyIsInvalidArgument) {
  std::string f = Write("keys.jwk", Set({kEncJwk}));
  auto r = Explicit({f});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto k = r->FindKey("OCT", "enc-key", std::nullopt);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(KeyResolverTest, JkuAbsoluteFileUrl) {
  std::string f = Write("jku.jwk", Set({kEncJwk, kSignJwk}));
  auto r = Explicit({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto enc = r->FindKey("oct", "enc-key", "file://" + f);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_TRUE(IsEncKey(*enc));
  // Scheme is case-insensitive.
  auto sign = r->FindKey("okp", "sign-key", "FILE://" + f);
  ASSERT_TRUE(sign.ok()) << sign.status().ToString();
  EXPECT_TRUE(IsSignKey(*sign));
}

TEST_F(KeyResolverTest, JkuIsReReadOnEachLookup) {
  std::string f = Write("jku.jwk", Set({kEnc2Jwk}));
  auto r = Explicit({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->FindKey("oct", "enc-key", "file://" + f).ok());
  Write("jku.jwk", Set({kEnc2Jwk, kEncJwk}));
  auto enc = r->FindKey("oct", "enc-key", "file://" + f);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_TRUE(IsEncKey(*enc));
}

TEST_F(KeyResolverTest, JkuTildeUsesHome) {
  home_.Set(dir_);
  Write("home.jwk", Set({kEncJwk}));
  auto r = Explicit({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto enc = r->FindKey("oct", "enc-key", std::string("file://~/home.jwk"));
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_TRUE(IsEncKey(*enc));
}

TEST_F(KeyResolverTest, RelativeJkuIgnored) {
  Write("rel.jwk", Set({kEncJwk}));
  std::string cwd = std::filesystem::current_path().string();
  ASSERT_EQ(::chdir(dir_.c_str()), 0);
  auto r = Explicit({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto k = r->FindKey("oct", "enc-key", std::string("file://rel.jwk"));
  ASSERT_EQ(::chdir(cwd.c_str()), 0);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kNotFound);
  EXPECT_NE(k.status().message().find("file://rel.jwk"), std::string::npos) << k.status().message();
}

TEST_F(KeyResolverTest, NonFileJkuIgnored) {
  auto r = Explicit({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto k = r->FindKey("oct", "enc-key", std::string("https://example.com/keys.jwk"));
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kNotFound);
  EXPECT_NE(k.status().message().find("enc-key"), std::string::npos);
}

TEST_F(KeyResolverTest, JkuDisabledIsNotFollowed) {
  std::string f = Write("jku.jwk", Set({kEncJwk}));
  KeySourceOptions o;
  o.use_env = false;
  o.use_jku = false;
  auto r = KeyResolver::Create(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto k = r->FindKey("oct", "enc-key", "file://" + f);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kNotFound);
}

TEST_F(KeyResolverTest, JkuErrorReportedWhenNoLaterSourceHasKey) {
  std::string f = Write("bad.jwk", "{not json");
  auto r = Explicit({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto k = r->FindKey("oct", "enc-key", "file://" + f);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kNotFound);
  EXPECT_NE(k.status().message().find("enc-key"), std::string::npos) << k.status().message();
  EXPECT_NE(k.status().message().find(f), std::string::npos) << k.status().message();

  // A broken jku is skipped when the env has the key.
  env_.Set(kEncJwk);
  KeySourceOptions o;
  auto r2 = KeyResolver::Create(o);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  auto enc = r2->FindKey("oct", "enc-key", "file://" + f);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_TRUE(IsEncKey(*enc));
}

TEST_F(KeyResolverTest, EnvSingleJwk) {
  env_.Set(kEncJwk);
  auto r = KeyResolver::Create(KeySourceOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->explicit_keys().empty());
  auto enc = r->FindKey("oct", "enc-key", std::nullopt);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_TRUE(IsEncKey(*enc));
  auto none = r->FindKey("okp", std::nullopt, std::nullopt);
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
}

TEST_F(KeyResolverTest, EnvJwkSet) {
  env_.Set(Set({kEncJwk, kSignJwk, kEnc2Jwk, kSign2Jwk}));
  auto r = KeyResolver::Create(KeySourceOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto sign2 = r->FindKey("okp", "sign-key-2", std::nullopt);
  ASSERT_TRUE(sign2.ok()) << sign2.status().ToString();
  EXPECT_TRUE(IsSign2Key(*sign2));
  auto enc = r->FindKey("oct", std::nullopt, std::nullopt);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_TRUE(IsEncKey(*enc));
}

TEST_F(KeyResolverTest, EnvIsSnapshottedAtCreate) {
  env_.Set(kEncJwk);
  auto r = KeyResolver::Create(KeySourceOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  env_.Unset();
  EXPECT_TRUE(r->FindKey("oct", "enc-key", std::nullopt).ok());
}

// The daemon wipes the variable's value in place once Create has parsed it: the variable stays
// (empty), every byte of the old value is zero, and the resolver still has the keys.
TEST_F(KeyResolverTest, WipeKeysFromEnvironmentZeroesTheValueInPlace) {
  env_.Set(kEncJwk);
  const char* value = std::getenv("CRYPTOTENSOR_KEYS");
  ASSERT_NE(value, nullptr);
  const size_t len = std::strlen(value);
  auto r = KeyResolver::Create(KeySourceOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  WipeKeysFromEnvironment();
  EXPECT_EQ(std::getenv("CRYPTOTENSOR_KEYS"), value);  // same storage, now ""
  for (size_t i = 0; i < len; ++i) ASSERT_EQ(value[i], '\0') << i;
  EXPECT_TRUE(r->FindKey("oct", "enc-key", std::nullopt).ok());
  env_.Unset();
  WipeKeysFromEnvironment();  // unset: nothing to do
}

TEST_F(KeyResolverTest, EnvIgnoredWhenDisabled) {
  env_.Set(kEncJwk);
  KeySourceOptions o;
  o.use_env = false;
  auto r = KeyResolver::Create(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->FindKey("oct", "enc-key", std::nullopt).status().code(), StatusCode::kNotFound);
}

TEST_F(KeyResolverTest, BadEnvIsReportedOnlyOnMiss) {
  env_.Set("{not json");
  std::string f = Write("keys.jwk", Set({kEncJwk}));
  KeySourceOptions o;
  o.key_files = {f};
  auto r = KeyResolver::Create(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->FindKey("oct", "enc-key", std::nullopt).ok());
  auto k = r->FindKey("oct", "other", std::nullopt);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), StatusCode::kNotFound);
  EXPECT_NE(k.status().message().find("CRYPTOTENSOR_KEYS:"), std::string::npos)
      << k.status().message();
}

TEST_F(KeyResolverTest, ExplicitFileWinsOverEnvAndJku) {
  // Same kid in all three sources, different key bytes: --key must win.
  std::string enc_as_2 = R"({"kty":"oct","alg":"aes256gcm","kid":"enc-key",)"
                         R"("k":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})";
  env_.Set(enc_as_2);
  std::string jku = Write("jku.jwk", enc_as_2);
  std::string f = Write("keys.jwk", kEncJwk);
  KeySourceOptions o;
  o.key_files = {f};
  auto r = KeyResolver::Create(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto enc = r->FindKey("oct", "enc-key", "file://" + jku);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_TRUE(IsEncKey(*enc));

  // Without --key, jku wins over env.
  auto r2 = KeyResolver::Create(KeySourceOptions{});
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  std::string jku_real = Write("jku-real.jwk", kEncJwk);
  auto enc2 = r2->FindKey("oct", "enc-key", "file://" + jku_real);
  ASSERT_TRUE(enc2.ok()) << enc2.status().ToString();
  EXPECT_TRUE(IsEncKey(*enc2));
  auto from_env = r2->FindKey("oct", "enc-key", std::nullopt);
  ASSERT_TRUE(from_env.ok()) << from_env.status().ToString();
  ASSERT_EQ(from_env->k.size(), 32u);
  EXPECT_TRUE(HasPrefix(from_env->k.data(), from_env->k.size(), kEnc2KeyPrefix));
}

TEST_F(KeyResolverTest, BadJsonInKeyFileFailsCreateNamingFile) {
  std::string good = Write("good.jwk", kEncJwk);
  std::string bad = Write("bad.jwk", "{\"kty\":\"oct\",");
  auto r = Explicit({good, bad});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
}

TEST_F(KeyResolverTest, InvalidJwkInKeyFileFailsCreate) {
  // Valid JSON, but k has the wrong length for aes256gcm.
  std::string bad = Write(
      "short.jwk", R"({"kty":"oct","alg":"aes256gcm","kid":"x","k":"AAECAwQFBgcICQoLDA0ODw=="})");
  auto r = Explicit({bad});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find("AAECAwQF"), std::string::npos) << r.status().message();
}

TEST_F(KeyResolverTest, MissingKeyFileFailsCreate) {
  std::string missing = dir_ + "/missing.jwk";
  auto r = Explicit({missing});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(missing), std::string::npos);
}

TEST_F(KeyResolverTest, WorldWritableFileRefused) {
  std::string f = Write("ww.jwk", Set({kEncJwk}), 0666);
  auto r = Explicit({f});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find(f), std::string::npos) << r.status().message();
}

TEST_F(KeyResolverTest, GroupWritableFileRefused) {
  std::string f = Write("gw.jwk", Set({kEncJwk}), 0620);
  auto l = LoadJwkFile(f);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), StatusCode::kPermissionDenied);
}

TEST_F(KeyResolverTest, ReadOnlyForOthersIsAccepted) {
  std::string f = Write("ro.jwk", Set({kEncJwk}), 0644);
  auto l = LoadJwkFile(f);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->size(), 1u);
}

TEST_F(KeyResolverTest, WorldWritableJkuRefused) {
  std::string f = Write("ww.jwk", Set({kEncJwk}), 0666);
  auto r = Explicit({});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto k = r->FindKey("oct", "enc-key", "file://" + f);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find("writable"), std::string::npos) << k.status().message();
}

TEST_F(KeyResolverTest, ForeignOwnerRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown";
  std::string f = Write("foreign.jwk", Set({kEncJwk}));
  ASSERT_EQ(::chown(f.c_str(), 65534, 65534), 0);
  auto l = LoadJwkFile(f);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(l.status().message().find("65534"), std::string::npos) << l.status().message();
}

TEST_F(KeyResolverTest, LoadJwkFileMissingIsNotFoundNamingPath) {
  std::string missing = dir_ + "/nope.jwk";
  auto l = LoadJwkFile(missing);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), StatusCode::kNotFound);
  EXPECT_NE(l.status().message().find(missing), std::string::npos) << l.status().message();
}

TEST_F(KeyResolverTest, LoadJwkFileRefusesDirectoryAndLargeFile) {
  auto d = LoadJwkFile(dir_);
  EXPECT_FALSE(d.ok());
  std::string big = Write("big.jwk", std::string((1 << 20) + 1, ' '));
  auto b = LoadJwkFile(big);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find(big), std::string::npos);
}

TEST_F(KeyResolverTest, LoadJwkFileFollowsSymlink) {
  std::string f = Write("target.jwk", Set({kEncJwk, kSignJwk}));
  std::string link = dir_ + "/link.jwk";
  ASSERT_EQ(::symlink(f.c_str(), link.c_str()), 0);
  auto l = LoadJwkFile(link);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->size(), 2u);
}

TEST_F(KeyResolverTest, PublicKeyDerivedFromSeed) {
  // A sign key with only d gets its x derived.
  std::string f = Write("d-only.jwk", R"({"kty":"okp","alg":"ed25519","kid":"sign-key",)"
                                      R"("d":"uTKTjQL6pX1Tqb7Hpor4A1s+TdgHReQEITZWWAf7DIc="})");
  auto r = Explicit({f});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto sign = r->FindKey("okp", "sign-key", std::nullopt);
  ASSERT_TRUE(sign.ok()) << sign.status().ToString();
  EXPECT_TRUE(IsSignKey(*sign));
}

TEST(FileUrlToPathTest, Table) {
  ScopedEnv home("HOME");
  home.Set("/home/alice");
  struct Case {
    const char* jku;
    std::optional<std::string> want;
  };
  const Case cases[] = {
      {"file:///abs/keys.jwk", "/abs/keys.jwk"},
      {"FILE:///abs/keys.jwk", "/abs/keys.jwk"},
      {"File:///a", "/a"},
      {"file:///", "/"},
      {"file:////double", "//double"},
      {"file://~/keys.jwk", "/home/alice/keys.jwk"},
      {"file://~/", "/home/alice/"},
      {"file://~", "/home/alice"},
      {"file://~bob/keys.jwk", std::nullopt},
      {"file://keys.jwk", std::nullopt},
      {"file://./keys.jwk", std::nullopt},
      {"file://localhost/abs", std::nullopt},
      {"file://", std::nullopt},
      {"file:/abs", std::nullopt},
      {"file:", std::nullopt},
      {"/abs/keys.jwk", std::nullopt},
      {"https://example.com/keys.jwk", std::nullopt},
      {"http:///abs", std::nullopt},
      {"filex:///abs", std::nullopt},
      {"", std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FileUrlToPath(c.jku), c.want) << c.jku;
  }

  home.Unset();
  EXPECT_EQ(FileUrlToPath("file://~/keys.jwk"), std::nullopt);
  EXPECT_EQ(FileUrlToPath("file:///abs"), "/abs");
  home.Set("relative/home");
  EXPECT_EQ(FileUrlToPath("file://~/keys.jwk"), std::nullopt);
}

}  // namespace
}  // namespace ctfs::keys
