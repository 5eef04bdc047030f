// SPDX-License-Identifier: Apache-2.0
// ctfs decrypt SRC DST: CryptoTensors file(s) back to plain safetensors. For files written by
// `ctfs encrypt` the output is byte-identical to the original. In a directory, plain
// safetensors and other files are copied unchanged. Output is staged like encrypt's: a failure
// or an interrupting signal leaves nothing at DST.
#include <cstdio>

#include "cmd/common.h"
#include "cmd/exit_codes.h"
#include "cmd/key_options.h"
#include "cmd/interrupt.h"
#include "cmd/subcommands.h"
#include "format/crypt_metadata.h"
#include "fs/encrypted_file.h"
#include "fs/whole_file_ops.h"
#include "keys/key_resolver.h"

namespace ctfs::cmd {
namespace {

// DecryptOne decrypts `from` to `to`; a plain safetensors file is copied (in directory mode)
// or rejected (in file mode, where the user asked to decrypt that file).
Status DecryptOne(const keys::KeyResolver& resolver, const std::string& from, const std::string& to,
                  bool copy_plain, ProgressBar& bar) {
  CTFS_ASSIGN_OR_RETURN(fs::HeaderAndFd hf, fs::ReadHeader(from));
  if (!format::IsEncrypted(hf.header)) {
    if (!copy_plain) return FailedPreconditionError(from + ": not encrypted (plain safetensors)");
    CTFS_RETURN_IF_ERROR(CopyFileExact(from, to));
    bar.Add(hf.header.file_len());
    return Status::Ok();
  }
  CTFS_ASSIGN_OR_RETURN(auto file, fs::EncryptedFile::Open(from, resolver));
  return fs::DecryptToFile(*file, to, bar.Fn());
}

Status Decrypt(const DecryptArgs& args) {
  CTFS_ASSIGN_OR_RETURN(
      keys::KeyResolver resolver,
      keys::KeyResolver::Create({args.key_files, true, true, args.passphrase_file,
                                 Pkcs11Sources(args.pkcs11_uris)}));
  if (!PathExists(args.src)) return NotFoundError(args.src + ": no such file or directory");
  if (!IsDirectory(args.src)) {
    CTFS_ASSIGN_OR_RETURN(uint64_t size, FileSizeOf(args.src));
    CTFS_ASSIGN_OR_RETURN(StagedFile out, StagedFile::Create(args.dst, args.force));
    ProgressBar bar(size, !args.quiet);
    bar.SetLabel(args.src);
    CTFS_RETURN_IF_ERROR(DecryptOne(resolver, args.src, out.path(), false, bar));
    CTFS_RETURN_IF_ERROR(out.Commit());
    bar.Finish();
    if (!args.quiet) std::printf("decrypted %s -> %s\n", args.src.c_str(), args.dst.c_str());
    return Status::Ok();
  }
  return TransformTree(args.src, args.dst, args.force, args.quiet, "decrypted",
                       [&](const std::string& from, const std::string& to, ProgressBar& bar) {
                         return DecryptOne(resolver, from, to, /*copy_plain=*/true, bar);
                       });
}

}  // namespace

CLI::App* AddDecrypt(CLI::App& app, DecryptArgs& args) {
  CLI::App* c = app.add_subcommand(
      "decrypt", "Decrypt CryptoTensors file(s) back to plain safetensors (file or directory)");
  c->add_option("SRC", args.src, "Encrypted file or model directory")->required();
  c->add_option("DST", args.dst, "Output file or directory (must not exist)")->required();
  c->add_option("-k,--key", args.key_files,
                "JWK / JWK Set key file (repeatable). Keys are also looked up in "
                "CRYPTOTENSOR_KEYS and a file:// jku in the header");
  c->add_option("--passphrase-file", args.passphrase_file,
                "Passphrase of passphrase-protected --key files (one trailing newline is "
                "stripped; without it such a file is prompted for on a terminal)");
  AddPkcs11Option(c, args.pkcs11_uris, "Master key to decrypt with");
  c->add_flag("--force", args.force, "Replace DST if it exists");
  c->add_flag("-q,--quiet", args.quiet, "No progress bar or summary");
  return c;
}

int RunDecrypt(const DecryptArgs& args) {
  auto watch = InterruptWatch::Start();
  if (!watch.ok()) return Fail(watch.status());
  Status st = Decrypt(args);
  watch->Stop();  // does not return if a signal is being handled
  return ExitWith(st);
}

}  // namespace ctfs::cmd
