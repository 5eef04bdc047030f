// SPDX-License-Identifier: Apache-2.0
// PKCS#11 URI rules (keys/pkcs11_uri.h): RFC 7512 path and query attributes, percent-decoding,
// and every refusal (unknown or repeated attributes, pin-value, relative paths, no key name).
#include "keys/pkcs11_uri.h"

#include <gtest/gtest.h>

#include <string>

namespace ctfs::keys {
namespace {

constexpr char kModule[] = "module-path=/usr/lib/softhsm/libsofthsm2.so";

std::string Uri(const std::string& path, const std::string& query = kModule) {
  return "pkcs11:" + path + "?" + query;
}

TEST(Pkcs11UriTest, ParsesTheUsualForm) {
  auto u = ParsePkcs11Uri(Uri("token=ctfs;object=llama-kek",
                              std::string(kModule) + "&pin-source=file:/etc/ctfs/hsm.pin"));
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->token, "ctfs");
  EXPECT_EQ(u->object, "llama-kek");
  EXPECT_FALSE(u->id.has_value());
  EXPECT_FALSE(u->serial.has_value());
  EXPECT_EQ(u->module_path, "/usr/lib/softhsm/libsofthsm2.so");
  EXPECT_EQ(u->pin_file, "/etc/ctfs/hsm.pin");
  EXPECT_EQ(u->Describe(),
            "pkcs11:token=ctfs;object=llama-kek?module-path=/usr/lib/softhsm/libsofthsm2.so"
            "&pin-source=file:///etc/ctfs/hsm.pin");
}

TEST(Pkcs11UriTest, PercentDecodingIdSerialAndTypeAndSchemeCase) {
  auto u = ParsePkcs11Uri("PKCS11:token=My%20Token;serial=1b18;id=%01%FFk;type=secret-key?" +
                          std::string(kModule) + "&pin-source=file:///etc/p%69n");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->token, "My Token");
  EXPECT_EQ(u->serial, "1b18");
  ASSERT_TRUE(u->id.has_value());
  EXPECT_EQ(*u->id, (Bytes{0x01, 0xFF, 'k'}));
  EXPECT_FALSE(u->object.has_value());
  EXPECT_EQ(u->pin_file, "/etc/pin");
  EXPECT_EQ(u->Describe().find("token=My%20Token"), 7u) << u->Describe();
  // A bare absolute path is a pin-source too; no pin-source at all is allowed (a token
  // without login).
  EXPECT_EQ(ParsePkcs11Uri(Uri("token=t;object=k", std::string(kModule) + "&pin-source=/p"))
                ->pin_file,
            "/p");
  // A path that starts with "//" survives Describe() (file:// + the path).
  auto odd = ParsePkcs11Uri(Uri("token=t;object=k", std::string(kModule) + "&pin-source=//p"));
  ASSERT_TRUE(odd.ok()) << odd.status().message();
  EXPECT_EQ(ParsePkcs11Uri(odd->Describe())->pin_file, "//p");
  EXPECT_FALSE(ParsePkcs11Uri(Uri("token=t;object=k"))->pin_file.has_value());
}

TEST(Pkcs11UriTest, Refusals) {
  const struct {
    std::string uri;
    std::string message;
  } cases[] = {
      {"token=t;object=k?" + std::string(kModule), "must start with \"pkcs11:\""},
      {"pkcs1:token=t;object=k", "must start with \"pkcs11:\""},
      {Uri("object=k"), "token=LABEL is required"},
      {Uri("token=;object=k"), "token=LABEL is required"},
      {Uri("token=t"), "name the key with object=LABEL or id=ID"},
      {Uri("token=t;object=k;object=j"), "attribute object given twice"},
      {Uri("token=t;object=k;slot-id=3"), "unsupported path attribute \"slot-id\""},
      {Uri("token=t;object=k;type=private"), "type=private"},
      {Uri("token=t;object=k%2"), "bad percent-encoding"},
      {Uri("token=t;object=k%zz"), "bad percent-encoding"},
      {Uri("token=t;objectk"), "is not name=value"},
      {"pkcs11:token=t;object=k", "module-path=/absolute/path"},
      {Uri("token=t;object=k", "module-path=libsofthsm2.so"), "module-path=/absolute/path"},
      {Uri("token=t;object=k", std::string(kModule) + "&module-name=softhsm2"),
       "unsupported query attribute \"module-name\""},
      {Uri("token=t;object=k", std::string(kModule) + "&" + kModule),
       "attribute module-path given twice"},
      {Uri("token=t;object=k", std::string(kModule) + "&pin-value=1234"),
       "pin-value is not accepted"},
      {Uri("token=t;object=k", std::string(kModule) + "&pin-source=pin.txt"),
       "pin-source must be file:/absolute/path"},
      {Uri("token=t;object=k", std::string(kModule) + "&pin-source=|/bin/echo"),
       "pin-source must be file:/absolute/path"},
      {"pkcs11:" + std::string(5000, 'a'), "longer than 4096 bytes"},
  };
  for (const auto& c : cases) {
    auto u = ParsePkcs11Uri(c.uri);
    ASSERT_FALSE(u.ok()) << c.uri;
    EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument) << c.uri;
    EXPECT_NE(u.status().message().find(c.message), std::string::npos)
        << c.uri << " -> " << u.status().message();
    EXPECT_EQ(u.status().message().find("1234"), std::string::npos) << "a PIN in a message";
  }
}

}  // namespace
}  // namespace ctfs::keys
