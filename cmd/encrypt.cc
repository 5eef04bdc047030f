// SPDX-License-Identifier: Apache-2.0
// ctfs encrypt SRC DST: a .safetensors file, or a model directory (every *.safetensors
// encrypted, every other file copied unchanged), into CryptoTensors files. Directory output is
// staged and renamed at the end: a failure or an interrupting signal (cmd/interrupt.h) leaves
// nothing at DST and no temporary behind.
#include <cstdio>
#include <filesystem>
#include <string>

#include "cmd/common.h"
#include "cmd/exit_codes.h"
#include "cmd/interrupt.h"
#include "cmd/subcommands.h"
#include "fs/encryptor.h"
#include "keys/key_resolver.h"

namespace ctfs::cmd {
namespace {

struct WriterKeys {
  const format::Jwk* enc = nullptr;
  const format::Jwk* sign = nullptr;
};

Result<WriterKeys> PickWriterKeys(const keys::KeyResolver& resolver, const std::string& alg) {
  WriterKeys w;
  for (const format::Jwk& k : resolver.explicit_keys()) {
    if (k.kty == "oct" && w.enc == nullptr) w.enc = &k;
    if (k.kty == "okp" && !k.d.empty() && w.sign == nullptr) w.sign = &k;
  }
  if (w.enc == nullptr) return NotFoundError("no encryption key (kty oct) in the --key files");
  if (w.sign == nullptr) {
    return NotFoundError(
        "no signing key with a private part (kty okp with d) in the --key files; a reader key "
        "file cannot sign");
  }
  if (!alg.empty()) {
    CTFS_ASSIGN_OR_RETURN(AeadAlg want, ParseAeadAlg(alg));
    CTFS_ASSIGN_OR_RETURN(AeadAlg have, ParseAeadAlg(w.enc->alg));
    if (want != have) {
      return InvalidArgumentError("--alg " + alg + " does not match the encryption key (" +
                                  w.enc->alg + "); generate a key with `ctfs keygen --alg " + alg +
                                  "`");
    }
  }
  return w;
}

Status Encrypt(const EncryptArgs& args) {
  CTFS_ASSIGN_OR_RETURN(keys::KeyResolver resolver,
                        keys::KeyResolver::Create({args.key_files, false, false}));
  CTFS_ASSIGN_OR_RETURN(WriterKeys wk, PickWriterKeys(resolver, args.alg));
  fs::EncryptOptions opt;
  opt.tensor_globs = args.tensors;
  if (args.chunk_size != 0) opt.chunk_size = args.chunk_size;
  opt.version = args.format_version;

  if (!PathExists(args.src)) return NotFoundError(args.src + ": no such file or directory");
  if (!IsDirectory(args.src)) {
    CTFS_ASSIGN_OR_RETURN(uint64_t size, FileSizeOf(args.src));
    CTFS_ASSIGN_OR_RETURN(StagedFile out, StagedFile::Create(args.dst, args.force));
    ProgressBar bar(size, !args.quiet);
    bar.SetLabel(args.src);
    CTFS_RETURN_IF_ERROR(fs::EncryptFile(args.src, out.path(), *wk.enc, *wk.sign, opt, bar.Fn()));
    CTFS_RETURN_IF_ERROR(out.Commit());
    bar.Finish();
    if (!args.quiet) std::printf("encrypted %s -> %s\n", args.src.c_str(), args.dst.c_str());
    return Status::Ok();
  }

  return TransformTree(args.src, args.dst, args.force, args.quiet, "encrypted",
                       [&](const std::string& from, const std::string& to, ProgressBar& bar) {
                         return fs::EncryptFile(from, to, *wk.enc, *wk.sign, opt, bar.Fn());
                       });
}

}  // namespace

CLI::App* AddEncrypt(CLI::App& app, EncryptArgs& args) {
  CLI::App* c = app.add_subcommand(
      "encrypt",
      "Encrypt a .safetensors file, or a model directory (every *.safetensors encrypted, other "
      "files copied unchanged), into CryptoTensors format");
  c->add_option("SRC", args.src, "Plain .safetensors file or model directory")->required();
  c->add_option("DST", args.dst, "Output file or directory (must not exist)")->required();
  c->add_option("-k,--key", args.key_files,
                "JWK / JWK Set file with the master key and the signing key (from ctfs keygen)")
      ->required();
  c->add_option("--tensors", args.tensors,
                "Encrypt only tensors whose name matches this glob (repeatable); others stay "
                "plain and are NOT integrity-protected");
  c->add_option(
       "--chunk-size", args.chunk_size,
       "Chunk size in bytes (default " + std::to_string(fs::kDefaultEncryptChunkSize) + ")")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  c->add_option("--alg", args.alg, "Check that the key is for this AEAD algorithm");
  c->add_option("--format-version", args.format_version,
                "2 = chunked (default), 1 = whole-tensor AEAD")
      ->check(CLI::IsMember({"1", "2"}));
  c->add_flag("--force", args.force, "Replace DST if it exists");
  c->add_flag("-q,--quiet", args.quiet, "No progress bar or summary");
  return c;
}

int RunEncrypt(const EncryptArgs& args) {
  auto watch = InterruptWatch::Start();
  if (!watch.ok()) return Fail(watch.status());
  Status st = Encrypt(args);
  watch->Stop();  // does not return if a signal is being handled
  return ExitWith(st);
}

}  // namespace ctfs::cmd
