// SPDX-License-Identifier: Apache-2.0
// Tests for keys/key_provider (file, passphrase-protected file, systemd credential, exec
// helper) and keys/passphrase (seal/open of key files). Each test works in a fresh mkdtemp
// directory (removed afterwards) and restores CREDENTIALS_DIRECTORY / CRYPTOTENSOR_KEYS.
// Helpers are small /bin/sh scripts written by the test.
#include "keys/key_provider.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "format/encrypted_jwks.h"
#include "keys/key_resolver.h"
#include "keys/passphrase.h"

namespace ctfs::keys {
namespace {

// §1.8 test master key (public test vector) and its first bytes.
constexpr char kEncJwk[] = R"({"kty":"oct","alg":"aes256gcm","kid":"enc-key",)"
                           R"("k":"L+xl38kCEteXk+6Tm1mzu5JvFriVibzAsgpYX2WmAgA="})";
constexpr uint8_t kEncKeyPrefix[] = {0x2f, 0xec, 0x65, 0xdf};
// Cheap scrypt for tests (the default costs ~0.1 s per derivation).
constexpr crypto::ScryptParams kFastScrypt{uint64_t{1} << 10, 8, 1};

SecretBytes Secret(const std::string& s) {
  return SecretBytes::CopyFrom({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

bool IsEncKey(const format::Jwk& k) {
  return k.kty == "oct" && k.kid == std::optional<std::string>("enc-key") && k.k.size() == 32 &&
         std::equal(std::begin(kEncKeyPrefix), std::end(kEncKeyPrefix), k.k.data());
}

class KeyProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ctfs-key-provider-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::unsetenv("CREDENTIALS_DIRECTORY");
  }
  void TearDown() override {
    ::unsetenv("CREDENTIALS_DIRECTORY");
    ::unsetenv("CRYPTOTENSOR_KEYS");
    std::filesystem::remove_all(dir_);
  }

  std::string Write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
  std::string Script(const std::string& name, const std::string& body) {
    return Write(name, "#!/bin/sh\n" + body + "\n", 0700);
  }
  std::string Sealed(const std::string& passphrase) {
    Result<std::string> env = SealKeyText(Secret(kEncJwk), Secret(passphrase), kFastScrypt);
    EXPECT_TRUE(env.ok()) << env.status().message();
    return env.ok() ? *env : "";
  }

  std::string dir_;
};

TEST_F(KeyProviderTest, PlainFile) {
  auto p = MakeFileKeyProvider(Write("k.jwk", kEncJwk), "");
  Result<ProvidedKeys> got = p->Load();
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->keys.size(), 1u);
  EXPECT_TRUE(IsEncKey(got->keys[0]));
  EXPECT_EQ(p->Describe(), "key file " + dir_ + "/k.jwk");
}

TEST_F(KeyProviderTest, PassphraseRoundTrip) {
  const std::string file = Write("k.jwk.enc", Sealed("correct horse"));
  std::ifstream in(file);
  const std::string stored((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(stored.find("\"ctfs_encrypted_jwks\":1"), std::string::npos);
  EXPECT_EQ(stored.find("L+xl"), std::string::npos);  // the key text is not in the envelope
  // One trailing newline is stripped from the passphrase file.
  auto p = MakeFileKeyProvider(file, Write("pass", "correct horse\n"));
  Result<ProvidedKeys> got = p->Load();
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->keys.size(), 1u);
  EXPECT_TRUE(IsEncKey(got->keys[0]));
  // KeyResolver with --key + --passphrase-file.
  Result<KeyResolver> r = KeyResolver::Create({{file}, false, false, dir_ + "/pass"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  Result<format::Jwk> k = r->FindKey("oct", std::string("enc-key"), std::nullopt);
  ASSERT_TRUE(k.ok()) << k.status().message();
  EXPECT_TRUE(IsEncKey(*k));
}

TEST_F(KeyProviderTest, WrongPassphrase) {
  const std::string file = Write("k.jwk.enc", Sealed("correct horse"));
  for (const char* wrong : {"correct horse\n\n", "Correct horse", "correct hors"}) {
    Result<ProvidedKeys> got = MakeFileKeyProvider(file, Write("pass", wrong))->Load();
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(got.status().message().find("wrong passphrase or damaged key file " + file),
              std::string::npos)
        << got.status().message();
  }
}

TEST_F(KeyProviderTest, TamperedEnvelope) {
  const std::string good = Sealed("pw");
  Result<format::EncryptedJwks> env = format::ParseEncryptedJwks(good);
  ASSERT_TRUE(env.ok()) << env.status().message();
  EXPECT_EQ(env->scrypt_n, 1024u);
  EXPECT_EQ(env->salt.size(), 16u);
  EXPECT_EQ(env->nonce.size(), 12u);
  EXPECT_EQ(env->ciphertext.size(), std::string(kEncJwk).size() + 16);
  const std::string pass = Write("pass", "pw");

  auto expect_damaged = [&](const format::EncryptedJwks& e, const char* what) {
    const std::string file = Write("t.enc", format::SerializeEncryptedJwks(e));
    Result<ProvidedKeys> got = MakeFileKeyProvider(file, pass)->Load();
    ASSERT_FALSE(got.ok()) << what;
    EXPECT_EQ(got.status().code(), StatusCode::kDataLoss) << what << ": " << got.status().message();
  };
  format::EncryptedJwks e = *env;
  e.ciphertext[3] ^= 1;
  expect_damaged(e, "ciphertext bit");
  e = *env;
  e.ciphertext.back() ^= 0x80;
  expect_damaged(e, "tag bit");
  e = *env;
  e.salt[0] ^= 1;
  expect_damaged(e, "salt");
  e = *env;
  e.nonce[0] ^= 1;
  expect_damaged(e, "nonce");
  e = *env;
  e.scrypt_r = 4;  // a parameter changed: a different key and a different AAD
  expect_damaged(e, "r");
  e = *env;
  e.ciphertext.resize(8);
  expect_damaged(e, "truncated");

  // Malformed envelopes and hostile parameters: InvalidArgument, no allocation storm.
  std::string huge_n = good;
  huge_n.replace(huge_n.find("\"n\":1024"), 8, "\"n\":1073741824");
  Result<ProvidedKeys> got = MakeFileKeyProvider(Write("n.enc", huge_n), pass)->Load();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument) << got.status().message();
  EXPECT_NE(got.status().message().find("scrypt: n must be"), std::string::npos);
  std::string extra = good;
  extra.insert(1, "\"x\":1,");
  got = MakeFileKeyProvider(Write("x.enc", extra), pass)->Load();
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("unknown member \"x\""), std::string::npos);
}

TEST_F(KeyProviderTest, EncryptedWithoutPassphrase) {
  if (StdinIsTerminal()) GTEST_SKIP() << "stdin is a terminal: the provider would prompt";
  const std::string file = Write("k.jwk.enc", Sealed("pw"));
  Result<ProvidedKeys> got = MakeFileKeyProvider(file, "")->Load();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(got.status().message().find("is passphrase-protected: give its passphrase with "
                                        "--passphrase-file"),
            std::string::npos)
      << got.status().message();
  Result<std::vector<format::Jwk>> old = LoadJwkFile(file);
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.status().message().find("passphrase-protected"), std::string::npos);
}

TEST_F(KeyProviderTest, PassphraseFileChecks) {
  EXPECT_EQ(ReadPassphraseFile(Write("p1", "pw", 0620)).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(ReadPassphraseFile(Write("p2", "\n")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadPassphraseFile(dir_ + "/none").status().code(), StatusCode::kNotFound);
  Result<SecretBytes> crlf = ReadPassphraseFile(Write("p3", "pw\r\n"));
  ASSERT_TRUE(crlf.ok());
  EXPECT_EQ(crlf->size(), 2u);
}

TEST_F(KeyProviderTest, Credential) {
  auto p = MakeCredentialKeyProvider("llama.jwk");
  Result<ProvidedKeys> got = p->Load();
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("credential \"llama.jwk\": $CREDENTIALS_DIRECTORY is "
                                        "not set"),
            std::string::npos)
      << got.status().message();

  ::setenv("CREDENTIALS_DIRECTORY", dir_.c_str(), 1);
  got = p->Load();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_NE(
      got.status().message().find("credential \"llama.jwk\" ($CREDENTIALS_DIRECTORY=" + dir_ + ")"),
      std::string::npos)
      << got.status().message();

  Write("llama.jwk", std::string(R"({"keys":[)") + kEncJwk + R"(],"exp":1900000000})", 0400);
  got = p->Load();
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->keys.size(), 1u);
  EXPECT_TRUE(IsEncKey(got->keys[0]));
  EXPECT_EQ(got->exp_unix, std::optional<int64_t>(1900000000));

  // Through KeyResolver and its spec checks.
  KeySourceSpec spec;
  spec.credential = "llama.jwk";
  Result<KeyResolver> r = KeyResolver::Create({{}, false, false, "", {spec}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->FindKey("oct", std::string("enc-key"), std::nullopt).ok());
  for (const char* bad : {"../x", "a/b", ".", ".."}) {
    spec.credential = bad;
    Result<KeyResolver> rb = KeyResolver::Create({{}, false, false, "", {spec}});
    ASSERT_FALSE(rb.ok()) << bad;
    EXPECT_NE(rb.status().message().find("must be a plain file name"), std::string::npos);
  }
}

TEST_F(KeyProviderTest, SpecNeedsExactlyOneKind) {
  KeySourceSpec spec;
  EXPECT_FALSE(MakeKeyProvider(spec).ok());
  spec.file = "/x";
  spec.credential = "c";
  EXPECT_FALSE(MakeKeyProvider(spec).ok());
  spec = {};
  spec.exec = {"relative/helper"};
  EXPECT_NE(MakeKeyProvider(spec).status().message().find("must be an absolute path"),
            std::string::npos);
  spec.exec = {"/bin/true"};
  spec.timeout_s = 0;
  EXPECT_FALSE(MakeKeyProvider(spec).ok());
}

// ExecLoad runs a helper script, collecting its forwarded stderr lines.
struct ExecRun {
  Result<ProvidedKeys> result = InternalError("not run");
  std::vector<std::string> lines;
  double seconds = 0;
};

ExecRun RunHelper(const std::vector<std::string>& argv, double timeout_s) {
  ExecRun run;
  auto p = MakeExecKeyProvider(argv, timeout_s,
                               [&run](std::string_view line) { run.lines.emplace_back(line); });
  const auto t0 = std::chrono::steady_clock::now();
  run.result = p->Load();
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return run;
}

TEST_F(KeyProviderTest, ExecGood) {
  ::setenv("CRYPTOTENSOR_KEYS", kEncJwk, 1);
  const std::string helper =
      Script("good.sh",
             "echo \"fetching $1\" >&2\n"
             "[ -z \"$CRYPTOTENSOR_KEYS\" ] || echo 'leaked CRYPTOTENSOR_KEYS' >&2\n"
             "read line && echo 'stdin not empty' >&2\n"
             "printf '%s' '{\"exp\":1900000001,\"keys\":[" +
                 std::string(kEncJwk) + "]}'");
  ExecRun run = RunHelper({helper, "llama"}, 10);
  ASSERT_TRUE(run.result.ok()) << run.result.status().message();
  ASSERT_EQ(run.result->keys.size(), 1u);
  EXPECT_TRUE(IsEncKey(run.result->keys[0]));
  EXPECT_EQ(run.result->exp_unix, std::optional<int64_t>(1900000001));
  EXPECT_EQ(run.lines, (std::vector<std::string>{"fetching llama"}));
}

TEST_F(KeyProviderTest, ExecHangsIsKilled) {
  // The helper and a grandchild holding stdout open both hang: the group is killed.
  const std::string helper = Script("hang.sh", "echo started >&2\nsleep 30 &\nsleep 30\n");
  ExecRun run = RunHelper({helper}, 0.5);
  ASSERT_FALSE(run.result.ok());
  EXPECT_NE(run.result.status().message().find("did not finish within 0.5 s (killed)"),
            std::string::npos)
      << run.result.status().message();
  EXPECT_NE(run.result.status().message().find("last stderr line: started"), std::string::npos);
  EXPECT_LT(run.seconds, 5);
}

TEST_F(KeyProviderTest, ExecWithdrawn) {
  // Exit status 77 is the documented "withdrawn" answer: not an error, no keys.
  ExecRun run = RunHelper({Script("withdrawn.sh", "echo 'revoked by vault' >&2\nexit 77")}, 10);
  ASSERT_TRUE(run.result.ok()) << run.result.status().message();
  EXPECT_TRUE(run.result->withdrawn);
  EXPECT_TRUE(run.result->keys.empty());
  // Any other status stays a failure.
  run = RunHelper({Script("exit76.sh", "exit 76")}, 10);
  ASSERT_FALSE(run.result.ok());
  EXPECT_NE(run.result.status().message().find("exited with status 76"), std::string::npos);
}

TEST_F(KeyProviderTest, ExecGarbage) {
  ExecRun run = RunHelper({Script("garbage.sh", "echo 'not json {'")}, 10);
  ASSERT_FALSE(run.result.ok());
  EXPECT_NE(run.result.status().message().find("stdout is not a JWK or JWK Set"), std::string::npos)
      << run.result.status().message();
  run = RunHelper({Script("empty.sh", "exit 0")}, 10);
  ASSERT_FALSE(run.result.ok());
  EXPECT_NE(run.result.status().message().find("printed nothing on stdout"), std::string::npos);
}

TEST_F(KeyProviderTest, ExecHugeOutput) {
  ExecRun run = RunHelper({Script("huge.sh", "head -c 104857600 /dev/zero")}, 20);
  ASSERT_FALSE(run.result.ok());
  EXPECT_NE(run.result.status().message().find("printed more than 1048576 bytes on stdout"),
            std::string::npos)
      << run.result.status().message();
  EXPECT_LT(run.seconds, 10);
}

TEST_F(KeyProviderTest, ExecNonZeroExit) {
  ExecRun run = RunHelper(
      {Script("fail.sh", "echo 'vault: permission denied' >&2\nprintf 'x\\033y\\n' >&2\nexit 3")},
      10);
  ASSERT_FALSE(run.result.ok());
  EXPECT_NE(run.result.status().message().find("exited with status 3: x\\x1by"), std::string::npos)
      << run.result.status().message();
  EXPECT_EQ(run.lines, (std::vector<std::string>{"vault: permission denied", "x\\x1by"}));
  run = RunHelper({Script("sig.sh", "kill -9 $$")}, 10);
  ASSERT_FALSE(run.result.ok());
  EXPECT_NE(run.result.status().message().find("killed by signal 9"), std::string::npos);
  run = RunHelper({dir_ + "/does-not-exist"}, 10);
  ASSERT_FALSE(run.result.ok());
  EXPECT_NE(run.result.status().message().find("cannot start it"), std::string::npos);
}

TEST_F(KeyProviderTest, ExecStderrIsBounded) {
  ExecRun run =
      RunHelper({Script("noisy.sh",
                        "i=0\nwhile [ $i -lt 300 ]; do echo line$i >&2; i=$((i+1)); done\n"
                        "head -c 5000 /dev/zero | tr '\\0' a >&2\necho >&2\nexit 1")},
                10);
  ASSERT_FALSE(run.result.ok());
  ASSERT_EQ(run.lines.size(), 101u);  // 100 lines, then the count of the rest
  EXPECT_EQ(run.lines[0], "line0");
  EXPECT_EQ(run.lines[100], "(201 more stderr lines not shown)");
  // The last line is cut to 512 bytes in the message.
  EXPECT_NE(run.result.status().message().find(std::string(512, 'a') + "..."), std::string::npos);
  EXPECT_EQ(run.result.status().message().find(std::string(600, 'a')), std::string::npos);
}

}  // namespace
}  // namespace ctfs::keys
