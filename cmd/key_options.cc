// SPDX-License-Identifier: Apache-2.0
#include "cmd/key_options.h"

namespace ctfs::cmd {

CLI::Option* AddPkcs11Option(CLI::App* c, std::vector<std::string>& uris, const std::string& what) {
  return c->add_option(
      "--pkcs11", uris,
      what + ": a master key in a PKCS#11 token, as a URI (repeatable): "
             "'pkcs11:token=LABEL;object=KEY?module-path=/path/module.so&pin-source=file:/path/pin'"
             " (README \"PKCS#11 tokens\")");
}

std::vector<keys::KeySourceSpec> Pkcs11Sources(const std::vector<std::string>& uris) {
  std::vector<keys::KeySourceSpec> out;
  for (const std::string& uri : uris) {
    keys::KeySourceSpec spec;
    spec.pkcs11 = uri;
    out.push_back(std::move(spec));
  }
  return out;
}

}  // namespace ctfs::cmd
