// SPDX-License-Identifier: Apache-2.0
// The key options several subcommands share: --pkcs11 URI (a master key in a PKCS#11 token,
// keys/pkcs11_uri.h), turned into key sources searched after the --key files.
#ifndef CTFS_CMD_KEY_OPTIONS_H_
#define CTFS_CMD_KEY_OPTIONS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "keys/key_provider.h"

namespace ctfs::cmd {

// AddPkcs11Option adds --pkcs11 URI (repeatable) to `c`; `what` says what the key is for.
CLI::Option* AddPkcs11Option(CLI::App* c, std::vector<std::string>& uris, const std::string& what);

// Pkcs11Sources: one key source per URI, in order.
std::vector<keys::KeySourceSpec> Pkcs11Sources(const std::vector<std::string>& uris);

}  // namespace ctfs::cmd

#endif  // CTFS_CMD_KEY_OPTIONS_H_
