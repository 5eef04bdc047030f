// SPDX-License-Identifier: Apache-2.0
// PKCS#11 URIs (RFC 7512) naming a master key in a token, as the config's `pkcs11:` key entry
// and the CLI's --pkcs11 take them:
//   pkcs11:token=ctfs;object=llama-kek?module-path=/usr/lib/softhsm/libsofthsm2.so
//          &pin-source=file:/etc/ctfs/hsm.pin
// Path attributes (';'-separated): token (the token label, required), serial, object (the
// key's CKA_LABEL), id (its CKA_ID, percent-encoded bytes), type (only "secret-key").
// Query attributes ('&'-separated): module-path (absolute, required), pin-source ("file:/abs"
// or "/abs": a file holding the user PIN, one trailing newline stripped). RFC 7512's pin-value
// is refused: it would keep the PIN in the config, in argv and in ordinary strings.
// Values are percent-decoded. Unknown or repeated attributes are errors: a URI that names
// something ctfs would ignore could select another key than the operator meant.
#ifndef CTFS_KEYS_PKCS11_URI_H_
#define CTFS_KEYS_PKCS11_URI_H_

#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace ctfs::keys {

struct Pkcs11Uri {
  std::string token;
  std::optional<std::string> serial;
  std::optional<std::string> object;
  std::optional<Bytes> id;
  std::string module_path;
  std::optional<std::string> pin_file;  // from pin-source; none: a token without login

  // Describe: the URI for messages.
  std::string Describe() const;
};

// ParsePkcs11Uri: InvalidArgument naming the attribute at fault.
Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view uri);

}  // namespace ctfs::keys

#endif  // CTFS_KEYS_PKCS11_URI_H_
