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
#include "cmd/subcommands.h"
#include "crypto/constant_time.h"
#include "crypto/random.h"
#include "crypto/signature.h"
#include "format/jwk.h"
#include "keys/passphrase.h"

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

Status Keygen(const KeygenArgs& args) {
  CTFS_ASSIGN_OR_RETURN(AeadAlg alg, ParseAeadAlg(args.alg));
  CTFS_ASSIGN_OR_RETURN(std::optional<SecretBytes> passphrase, KeygenPassphrase(args));
  const SecretBytes* pass = passphrase ? &*passphrase : nullptr;
  std::string suffix = RandomHex(4);
  format::Jwk enc;
  enc.kty = "oct";
  enc.alg = std::string(AeadAlgName(alg));
  enc.kid = args.enc_kid.empty() ? "ctfs-enc-" + suffix : args.enc_kid;
  CTFS_ASSIGN_OR_RETURN(enc.k, crypto::RandomSecret(AeadKeyLen(alg)));
  format::Jwk sign;
  sign.kty = "okp";
  sign.alg = "ed25519";
  sign.kid = args.sign_kid.empty() ? "ctfs-sign-" + suffix : args.sign_kid;
  CTFS_ASSIGN_OR_RETURN(sign.d, crypto::RandomSecret(crypto::kEd25519SeedLen));
  CTFS_ASSIGN_OR_RETURN(auto x, crypto::Ed25519PublicKeyFromSeed(sign.d));
  sign.x.assign(x.begin(), x.end());

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
  return c;
}

int RunKeygen(const KeygenArgs& args) { return ExitWith(Keygen(args)); }

}  // namespace ctfs::cmd
