// SPDX-License-Identifier: Apache-2.0
// PKCS#11 master keys: an AES key that lives in a token (an HSM, or SoftHSM2 for tests) as a
// sensitive, non-extractable secret key object. The module named by the URI
// (keys/pkcs11_uri.h) is loaded with dlopen and initialised once per process; data keys are
// unwrapped and wrapped inside the token with CKM_AES_GCM (C_Decrypt / C_Encrypt), so the
// master key never enters this process (with an in-process software token such as SoftHSM2
// it is in the process's memory, in SoftHSM's own encrypted form; a real HSM, or SoftHSM
// behind `p11-kit server`, keeps it out).
// Only AES keys (16 or 32 bytes: aes128gcm, aes256gcm) are used; an extractable or
// non-sensitive key is refused, as its bytes could leave the token.
// The PIN is read from the URI's pin-source file into SecretBytes and wiped after C_Login.
// Thread safety: a TokenKey serializes its operations on its session with a mutex.
#ifndef CTFS_KEYS_PKCS11_TOKEN_H_
#define CTFS_KEYS_PKCS11_TOKEN_H_

#include <memory>
#include <string>

#include "base/result.h"
#include "base/secret_bytes.h"
#include "base/status.h"
#include "base/token_key.h"
#include "keys/pkcs11_uri.h"

namespace ctfs::keys {

struct Pkcs11Key {
  std::shared_ptr<const TokenKey> key;
  std::string label;  // CKA_LABEL: the key's kid
};

// OpenPkcs11Key finds the key the URI names (exactly one secret key object matching object
// and id) in the token it names, logs in with the PIN, and checks the key's type, size and
// protection. Errors name the URI (Describe()) and the cause, with the PKCS#11 return value.
Result<Pkcs11Key> OpenPkcs11Key(const Pkcs11Uri& uri);

// CreatePkcs11Key creates an AES key of `key_len` bytes (16 or 32) in the token, labelled with
// the URI's object (required) and id (default: the label's bytes): generated inside the token,
// or, with `import_value`, made from those bytes. Either way it is a token object, private,
// sensitive, non-extractable, usable to encrypt and decrypt only. AlreadyExists if a secret
// key with that label is there.
Status CreatePkcs11Key(const Pkcs11Uri& uri, size_t key_len, const SecretBytes* import_value);

}  // namespace ctfs::keys

#endif  // CTFS_KEYS_PKCS11_TOKEN_H_
