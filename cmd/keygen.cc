// SPDX-License-Identifier: Apache-2.0
// ctfs keygen: a new master (encryption) key and Ed25519 signing key pair as a JWK Set file
// (mode 0600), plus optionally a "reader" copy without the signing private key, for hosts
// that only decrypt and verify.
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "base/aead_alg.h"
#include "base/file_io.h"
#include "cmd/common.h"
#include "cmd/exit_codes.h"
#include "cmd/key_options.h"
#include "cmd/subcommands.h"
#include "crypto/constant_time.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "format/jwk.h"
#include "keys/key_resolver.h"
#include "keys/passphrase.h"
#include "keys/pkcs11_token.h"
#include "keys/pkcs11_uri.h"

namespace ctfs::cmd {
namespace {

std::string RandomHex(size_t n_bytes) {
  Bytes b(n_bytes);
  if (!crypto::RandomBytes(b).ok()) return "00000000";
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

// WriteKeyFile writes the JWK Set, sealed under `passphrase` (keys/passphrase.h) if one is
// given.
Status WriteKeyFile(const std::string& path, const std::vector<const format::Jwk*>& keys,
                    bool include_private, bool force, const SecretBytes* passphrase) {
  CTFS_RETURN_IF_ERROR(CheckOutputPath(path, force));
  // The key JSON exists only in this SecretBytes (no growing string leaves freed copies).
  const SecretBytes text = format::SerializeJwkSetSecret(keys, include_private);
  CTFS_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Create(path, 0600));
  if (passphrase != nullptr) {
    CTFS_ASSIGN_OR_RETURN(std::string sealed, keys::SealKeyText(text, *passphrase));
    CTFS_RETURN_IF_ERROR(out.Write(AsBytes(std::string_view(sealed))));
  } else {
    CTFS_RETURN_IF_ERROR(out.Write(text.span()));
  }
  CTFS_RETURN_IF_ERROR(out.Write(AsBytes(std::string_view("\n"))));
  return out.Commit();
}

// KeygenPassphrase: the passphrase to seal the files with, if any (--passphrase-file, or
// --ask-passphrase: prompted twice on the terminal).
Result<std::optional<SecretBytes>> KeygenPassphrase(const KeygenArgs& args) {
  if (!args.passphrase_file.empty() && args.ask_passphrase) {
    return InvalidArgumentError("give --passphrase-file or --ask-passphrase, not both");
  }
  if (!args.passphrase_file.empty()) {
    CTFS_ASSIGN_OR_RETURN(SecretBytes p, keys::ReadPassphraseFile(args.passphrase_file));
    return std::optional<SecretBytes>(std::move(p));
  }
  if (!args.ask_passphrase) return std::optional<SecretBytes>();
  CTFS_ASSIGN_OR_RETURN(SecretBytes p, keys::PromptPassphrase("New passphrase: "));
  CTFS_ASSIGN_OR_RETURN(SecretBytes again, keys::PromptPassphrase("Repeat the passphrase: "));
  if (!crypto::ConstantTimeEquals(p.span(), again.span())) {
    return InvalidArgumentError("the passphrases do not match");
  }
  return std::optional<SecretBytes>(std::move(p));
}

// NewSigningKey: a fresh Ed25519 key pair, kid from --sign-kid or "ctfs-sign-SUFFIX".
Result<format::Jwk> NewSigningKey(const KeygenArgs& args, const std::string& suffix) {
  format::Jwk sign;
  sign.kty = "okp";
  sign.alg = "ed25519";
  sign.kid = args.sign_kid.empty() ? "ctfs-sign-" + suffix : args.sign_kid;
  CTFS_ASSIGN_OR_RETURN(sign.d, crypto::RandomSecret(crypto::kEd25519SeedLen));
  CTFS_ASSIGN_OR_RETURN(auto x, crypto::Ed25519PublicKeyFromSeed(sign.d));
  sign.x.assign(x.begin(), x.end());
  return sign;
}

// KeygenInToken: the master key is created inside a PKCS#11 token (generated there, or
// imported from --import-key); the files get the signing key only.
Status KeygenInToken(const KeygenArgs& args, AeadAlg alg, const SecretBytes* pass) {
  if (alg == AeadAlg::kChaCha20Poly1305) {
    return InvalidArgumentError("--pkcs11: token keys support AES-GCM only (--alg aes256gcm or "
                                "aes128gcm)");
  }
  CTFS_ASSIGN_OR_RETURN(keys::Pkcs11Uri uri, keys::ParsePkcs11Uri(args.pkcs11_uri));
  std::optional<format::Jwk> imported;
  if (!args.import_key.empty()) {
    CTFS_ASSIGN_OR_RETURN(keys::KeyResolver from,
                          keys::KeyResolver::Create({{args.import_key}, false, false,
                                                     args.passphrase_file}));
    for (const format::Jwk& k : from.explicit_keys()) {
      if (k.kty == "oct" && !k.k.empty() && !imported) imported = k.Clone();
    }
    if (!imported) return NotFoundError(args.import_key + ": no master key (kty oct) to import");
    CTFS_ASSIGN_OR_RETURN(alg, ParseAeadAlg(imported->alg));
    if (alg == AeadAlg::kChaCha20Poly1305) {
      return InvalidArgumentError(args.import_key + ": its master key is chacha20poly1305; "
                                  "token keys support AES-GCM only");
    }
  }
  // The key id is the token label: the URI's object=, else --enc-kid, else (import) the
  // imported key's kid, so that files written with it still find it.
  std::string kid = uri.object.value_or(args.enc_kid);
  if (kid.empty() && imported) kid = imported->kid.value_or("");
  if (kid.empty()) {
    return InvalidArgumentError("--pkcs11: name the new key with object=LABEL in the URI (it "
                                "becomes the key id)");
  }
  if (!args.enc_kid.empty() && args.enc_kid != kid) {
    return InvalidArgumentError("--enc-kid " + args.enc_kid + " differs from the URI's object=" +
                                kid + " (a token key's id is its label)");
  }
  if (imported && imported->kid && *imported->kid != kid) {
    std::fprintf(stderr,
                 "ctfs: warning: the imported key's kid is %s but its token label is %s: files "
                 "written with the key name %s and will not find it\n",
                 imported->kid->c_str(), kid.c_str(), imported->kid->c_str());
  }
  uri.object = kid;
  CTFS_RETURN_IF_ERROR(CheckOutputPath(args.out, args.force));
  if (!args.reader_out.empty()) CTFS_RETURN_IF_ERROR(CheckOutputPath(args.reader_out, args.force));
  CTFS_RETURN_IF_ERROR(
      keys::CreatePkcs11Key(uri, AeadKeyLen(alg), imported ? &imported->k : nullptr));
  // It must open as the mount will open it (type, size, protection).
  CTFS_ASSIGN_OR_RETURN(keys::Pkcs11Key made, keys::OpenPkcs11Key(uri));
  std::printf("%s %s key \"%s\" in token \"%s\" (sensitive, non-extractable)\n",
              imported ? "imported" : "created", std::string(AeadAlgName(alg)).c_str(),
              made.label.c_str(), uri.token.c_str());

  CTFS_ASSIGN_OR_RETURN(format::Jwk sign, NewSigningKey(args, RandomHex(4)));
  CTFS_RETURN_IF_ERROR(WriteKeyFile(args.out, {&sign}, /*include_private=*/true, args.force, pass));
  std::printf("wrote %s (signing key %s, ed25519%s; the master key stays in the token)\n",
              args.out.c_str(), sign.kid->c_str(), pass != nullptr ? "; passphrase-protected" : "");
  if (!args.reader_out.empty()) {
    CTFS_RETURN_IF_ERROR(
        WriteKeyFile(args.reader_out, {&sign}, /*include_private=*/false, args.force, pass));
    std::printf("wrote %s (reader copy: the public verification key)\n", args.reader_out.c_str());
  }
  return Status::Ok();
}

Status Keygen(const KeygenArgs& args) {
  CTFS_ASSIGN_OR_RETURN(AeadAlg alg, ParseAeadAlg(args.alg));
  CTFS_ASSIGN_OR_RETURN(std::optional<SecretBytes> passphrase, KeygenPassphrase(args));
  const SecretBytes* pass = passphrase ? &*passphrase : nullptr;
  if (!args.pkcs11_uri.empty()) return KeygenInToken(args, alg, pass);
  if (!args.import_key.empty()) return InvalidArgumentError("--import-key goes with --pkcs11");
  std::string suffix = RandomHex(4);
  format::Jwk enc;
  enc.kty = "oct";
  enc.alg = std::string(AeadAlgName(alg));
  enc.kid = args.enc_kid.empty() ? "ctfs-enc-" + suffix : args.enc_kid;
  CTFS_ASSIGN_OR_RETURN(enc.k, crypto::RandomSecret(AeadKeyLen(alg)));
  CTFS_ASSIGN_OR_RETURN(format::Jwk sign, NewSigningKey(args, suffix));

  CTFS_RETURN_IF_ERROR(
      WriteKeyFile(args.out, {&enc, &sign}, /*include_private=*/true, args.force, pass));
  std::printf("wrote %s (encryption key %s, %s; signing key %s, ed25519%s)\n", args.out.c_str(),
              enc.kid->c_str(), enc.alg.c_str(), sign.kid->c_str(),
              pass != nullptr ? "; passphrase-protected" : "");
  if (!args.reader_out.empty()) {
    CTFS_RETURN_IF_ERROR(
        WriteKeyFile(args.reader_out, {&enc, &sign}, /*include_private=*/false, args.force, pass));
    std::printf("wrote %s (reader copy: encryption key and public verification key)\n",
                args.reader_out.c_str());
  }
  return Status::Ok();
}

}  // namespace

CLI::App* AddKeygen(CLI::App& app, KeygenArgs& args) {
  CLI::App* c = app.add_subcommand(
      "keygen",
      "Generate a master encryption key and an Ed25519 signing key pair as a JWK Set file "
      "(mode 0600). Keep it secret: it decrypts and signs models.");
  c->add_option("-o,--out", args.out, "Key file to write (JWK Set with private keys)")->required();
  c->add_option("--reader-out", args.reader_out,
                "Also write a reader key file: the master key and the public verification key, "
                "without the signing private key");
  c->add_option("--alg", args.alg, "aes256gcm (default), aes128gcm or chacha20poly1305");
  c->add_option("--enc-kid", args.enc_kid, "Key id of the encryption key (default random)");
  c->add_option("--sign-kid", args.sign_kid, "Key id of the signing key (default random)");
  c->add_flag("--force", args.force, "Overwrite existing key files");
  c->add_option("--passphrase-file", args.passphrase_file,
                "Protect the written files with the passphrase in this file (scrypt + "
                "AES-256-GCM; one trailing newline is stripped)");
  c->add_flag("--ask-passphrase", args.ask_passphrase,
              "Protect the written files with a passphrase typed on the terminal");
  c->add_option("--pkcs11", args.pkcs11_uri,
                "Create the master key inside this PKCS#11 token instead (sensitive, "
                "non-extractable AES key labelled by the URI's object=, which is its key id); "
                "the files then hold the signing key only. URI: 'pkcs11:token=LABEL;object=KEY"
                "?module-path=/path/module.so&pin-source=file:/path'");
  c->add_option("--import-key", args.import_key,
                "With --pkcs11: put the master key of this JWK file into the token instead of "
                "generating one (for moving file keys into an HSM; delete the file afterwards)");
  return c;
}

int RunKeygen(const KeygenArgs& args) { return ExitWith(Keygen(args)); }

}  // namespace ctfs::cmd
