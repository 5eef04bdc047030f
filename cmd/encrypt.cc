// SPDX-License-Identifier: Apache-2.0
// ctfs encrypt SRC DST: a .safetensors file, or a model directory (every *.safetensors
// encrypted, every other file copied unchanged), into CryptoTensors files. Directory output is
// staged and renamed at the end: a failure or an interrupting signal (cmd/interrupt.h) leaves
// nothing at DST and no temporary behind.
//
// --lock GLOB --lock-key K (locked layers, fs/lock_split.h): the matching tensors move into one
// locked shard per model directory, encrypted under K's oct key and marked locked
// (format/locked_shard.h); the index is rewritten. The plain split is staged next to DST first
// ("<DST>.split.ctfs-tmp-*", removed at the end; unchanged files are hard links where possible),
// then every file is encrypted as usual. The locked shard is signed with the main (--key)
// signing key; a signing key in K is ignored. So every reader that verifies the rest of the
// model also verifies the locked shard's signed marker, and a reader without the lock key sees
// a known "locked" state rather than a file it cannot verify (fs/encrypted_file.h
// ProbeLockedShard).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include "cmd/common.h"
#include "cmd/exit_codes.h"
#include "cmd/key_options.h"
#include "cmd/interrupt.h"
#include "cmd/subcommands.h"
#include "base/file_io.h"
#include "format/model_index.h"
#include "fs/encrypted_file.h"
#include "fs/encryptor.h"
#include "fs/lock_split.h"
#include "keys/key_resolver.h"

namespace ctfs::cmd {
namespace {

struct WriterKeys {
  const format::Jwk* enc = nullptr;
  const format::Jwk* sign = nullptr;
};

Result<WriterKeys> PickWriterKeys(const keys::KeyResolver& resolver, const std::string& alg) {
  WriterKeys w;
  // A token key (--pkcs11) is the master key even where a --key file also holds one.
  for (const format::Jwk& k : resolver.explicit_keys()) {
    if (k.kty == "oct" && k.token != nullptr && w.enc == nullptr) w.enc = &k;
  }
  for (const format::Jwk& k : resolver.explicit_keys()) {
    if (k.kty == "oct" && w.enc == nullptr) w.enc = &k;
    if (k.kty == "okp" && !k.d.empty() && w.sign == nullptr) w.sign = &k;
  }
  if (w.enc == nullptr) {
    return NotFoundError("no encryption key (kty oct) in the --key files, and no --pkcs11 key");
  }
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

// PickLockKeys: the lock key set's oct key, and `main`'s signing key (see above). The lock key
// needs a kid of its own: readers find keys by kid, and a reader holding both key sets must not
// confuse them.
Result<WriterKeys> PickLockKeys(const keys::KeyResolver& lock, const WriterKeys& main) {
  WriterKeys w;
  for (const format::Jwk& k : lock.explicit_keys()) {
    if (k.kty == "oct" && w.enc == nullptr) w.enc = &k;
  }
  if (w.enc == nullptr) {
    return InvalidArgumentError("no encryption key (kty oct) in the --lock-key files");
  }
  w.sign = main.sign;
  if (!w.enc->kid || w.enc->kid->empty()) {
    return InvalidArgumentError("the lock key has no kid; readers find keys by kid (use a key "
                                "from `ctfs keygen`)");
  }
  if (main.enc->kid && *main.enc->kid == *w.enc->kid) {
    return InvalidArgumentError("the lock key has the same kid as the model key (" +
                                *w.enc->kid + "); use a separate key (`ctfs keygen`)");
  }
  return w;
}

// StageLockSplit writes the plain split of model directory `src` (fs/lock_split.h) into
// `stage`: rewritten shards, the locked shard, the index, and every other file (hard-linked,
// or copied across file systems). Returns the plan.
Result<fs::LockSplitPlan> StageLockSplit(const std::string& src,
                                         const std::vector<std::string>& globs,
                                         const std::string& stage) {
  CTFS_ASSIGN_OR_RETURN(std::vector<std::string> files, ListTree(src));
  std::vector<fs::SourceShard> shards;
  std::vector<fs::SourceIndex> indexes;
  std::vector<std::string> top;
  const std::string_view index_suffix = format::kModelIndexSuffix;
  for (const std::string& rel : files) {
    if (rel.find('/') != std::string::npos) continue;
    top.push_back(rel);
    const std::string path = src + "/" + rel;
    if (rel.size() > index_suffix.size() &&
        rel.compare(rel.size() - index_suffix.size(), index_suffix.size(), index_suffix) == 0) {
      constexpr size_t kMaxIndexLen = 64 << 20;
      CTFS_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path, kMaxIndexLen));
      indexes.push_back({rel, std::move(text)});
    } else if (IsSafetensorsName(rel)) {
      CTFS_ASSIGN_OR_RETURN(fs::HeaderAndFd hf, fs::ReadHeader(path));
      shards.push_back({rel, std::move(hf.header)});
    }
  }
  CTFS_ASSIGN_OR_RETURN(fs::LockSplitPlan plan, fs::PlanLockSplit(shards, indexes, globs, top));
  std::set<std::string> replaced(plan.replaced.begin(), plan.replaced.end());
  for (const std::string& rel : files) {
    if (replaced.count(rel)) continue;
    const std::string to = stage + "/" + rel;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(to).parent_path(), ec);
    if (ec) return ErrnoError(ec.value(), "create directories for " + rel);
    if (::link((src + "/" + rel).c_str(), to.c_str()) != 0) {
      CTFS_RETURN_IF_ERROR(CopyFileExact(src + "/" + rel, to));
    }
  }
  for (const fs::LockSplitPlan::Output& o : plan.outputs) {
    CTFS_RETURN_IF_ERROR(fs::WritePlainShard(o, src, stage + "/" + o.name));
  }
  CTFS_ASSIGN_OR_RETURN(AtomicFileWriter index,
                        AtomicFileWriter::Create(stage + "/" + plan.index_name, 0644));
  CTFS_RETURN_IF_ERROR(index.Write(AsBytes(plan.index_text)));
  CTFS_RETURN_IF_ERROR(index.Commit());
  return plan;
}

Status EncryptLocked(const EncryptArgs& args, const WriterKeys& wk, const fs::EncryptOptions& opt) {
  if (args.lock_key_files.empty()) return InvalidArgumentError("--lock needs --lock-key");
  if (!IsDirectory(args.src)) {
    return InvalidArgumentError(args.src + ": --lock needs a model directory as SRC");
  }
  CTFS_ASSIGN_OR_RETURN(
      keys::KeyResolver lock_resolver,
      keys::KeyResolver::Create({args.lock_key_files, false, false, args.passphrase_file}));
  CTFS_ASSIGN_OR_RETURN(WriterKeys lk, PickLockKeys(lock_resolver, wk));
  CTFS_RETURN_IF_ERROR(CheckOutputPath(args.dst, args.force));
  // Never committed: removed when it goes out of scope (or by the interrupt handler).
  CTFS_ASSIGN_OR_RETURN(StagedDirectory split, StagedDirectory::Create(args.dst + ".split", true));
  CTFS_ASSIGN_OR_RETURN(fs::LockSplitPlan plan,
                        StageLockSplit(args.src, args.lock_globs, split.path()));
  const std::string locked_path = split.path() + "/" + plan.locked_name;
  fs::EncryptOptions lock_opt = opt;
  lock_opt.tensor_globs.clear();  // every locked tensor is encrypted, --tensors or not
  CTFS_RETURN_IF_ERROR(TransformTree(
      split.path(), args.dst, args.force, args.quiet, "encrypted",
      [&](const std::string& from, const std::string& to, ProgressBar& bar) {
        const bool locked = from == locked_path;
        const WriterKeys& k = locked ? lk : wk;
        return fs::EncryptFile(from, to, *k.enc, *k.sign, locked ? lock_opt : opt, bar.Fn());
      },
      args.src));
  if (!args.quiet) {
    std::printf("locked %zu tensor(s) into %s (lock key %s)\n", plan.locked_tensors,
                plan.locked_name.c_str(), lk.enc->kid->c_str());
  }
  return Status::Ok();
}

Status Encrypt(const EncryptArgs& args) {
  if (!args.lock_key_files.empty() && args.lock_globs.empty()) {
    return InvalidArgumentError("--lock-key needs --lock GLOB");
  }
  CTFS_ASSIGN_OR_RETURN(
      keys::KeyResolver resolver,
      keys::KeyResolver::Create({args.key_files, false, false, args.passphrase_file,
                                 Pkcs11Sources(args.pkcs11_uris)}));
  CTFS_ASSIGN_OR_RETURN(WriterKeys wk, PickWriterKeys(resolver, args.alg));
  fs::EncryptOptions opt;
  opt.tensor_globs = args.tensors;
  if (args.chunk_size != 0) opt.chunk_size = args.chunk_size;
  opt.version = args.format_version;
  if (!args.lock_globs.empty()) return EncryptLocked(args, wk, opt);

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
                "JWK / JWK Set file with the master key and the signing key (from ctfs keygen; "
                "with --pkcs11, the signing key)")
      ->required();
  AddPkcs11Option(c, args.pkcs11_uris,
                  "Wrap the data keys inside a token with this master key (AES-GCM)");
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
  c->add_option("--lock", args.lock_globs,
                "Lock the tensors whose name matches this glob (repeatable): move them into a "
                "locked shard encrypted under --lock-key; SRC must be a model directory");
  c->add_option("--passphrase-file", args.passphrase_file,
                "Passphrase of passphrase-protected --key / --lock-key files (one trailing "
                "newline is stripped)");
  c->add_option("--lock-key", args.lock_key_files,
                "JWK / JWK Set file with the lock key (kty oct, its own kid; e.g. from `ctfs "
                "keygen`); the locked shard is signed with the --key signing key");
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
