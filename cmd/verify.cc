// SPDX-License-Identifier: Apache-2.0
// ctfs verify PATH: for each CryptoTensors file (PATH or every *.safetensors below it), check
// the header, the signature, the policy, every key unwrap and every chunk tag. Prints one line
// per file; exits non-zero naming the first bad file, tensor and chunk.
//
// A plain (unencrypted) safetensors file is a failure (exit 3, like `decrypt` of a plain file)
// unless --allow-plain: a deployment gate `ctfs verify DIR && deploy DIR` must not pass a model
// that was never encrypted. Every file is still checked, so the error lists all plain files.
// What the mount refuses (fs/source_file_class.h: an invalid *.safetensors, a plain file using
// a reserved CryptoTensors name, a CryptoTensors header in a file of another name) fails
// verification too, --allow-plain or not.
//
// A locked shard (`encrypt --lock`) whose lock key is not given is not a failure if its signed
// header verifies with the signing key: it prints "LOCKED" (its data is not checked) and the
// exit status is that of the other files. Without the signing key it fails like any file
// whose keys are missing.
#include <cstdio>
#include <optional>

#include "cmd/common.h"
#include "cmd/exit_codes.h"
#include "cmd/key_options.h"
#include "cmd/subcommands.h"
#include "format/crypt_metadata.h"
#include "base/random_access_file.h"
#include "fs/encrypted_file.h"
#include "fs/source_file_class.h"
#include "fs/whole_file_ops.h"
#include "keys/key_resolver.h"

namespace ctfs::cmd {
namespace {

// MountWouldServe: OK unless the mount would refuse the file at `path` (named `name`).
Status MountWouldServe(const std::string& path, const std::string& name) {
  CTFS_ASSIGN_OR_RETURN(std::unique_ptr<PosixFile> file, PosixFile::Open(path));
  CTFS_ASSIGN_OR_RETURN(uint64_t len, file->Size());
  const fs::SourceFileClass c = fs::ClassifySourceFile(*file, len, name);
  return c.kind == fs::SourceFileClass::Kind::kRefused ? c.refusal : Status::Ok();
}

// VerifyOne checks one file; `*plain` tells whether it is a plain safetensors file (valid, but
// neither encrypted nor authenticated).
Status VerifyOne(const keys::KeyResolver& resolver, const std::string& path, bool quiet,
                 bool allow_plain, ProgressBar& bar, bool* plain) {
  CTFS_ASSIGN_OR_RETURN(fs::HeaderAndFd hf, fs::ReadHeader(path));
  *plain = !format::IsEncrypted(hf.header);
  if (*plain) {
    bar.Add(hf.header.file_len());
    bar.Finish();
    if (!quiet) {
      std::printf(allow_plain
                      ? "PLAIN %s (valid safetensors; NOT encrypted, NOT authenticated; "
                        "accepted by --allow-plain)\n"
                      : "PLAIN %s (NOT ENCRYPTED: plain safetensors; --allow-plain accepts it)\n",
                  path.c_str());
    }
    return Status::Ok();
  }
  auto opened = fs::EncryptedFile::Open(path, resolver);
  if (!opened.ok() && opened.status().code() == StatusCode::kNotFound) {
    // A locked shard without its lock key is a known state (the mount lists it and denies
    // opens): its signed header verifies, its data cannot be checked without the key.
    CTFS_ASSIGN_OR_RETURN(std::unique_ptr<PosixFile> raw, PosixFile::Open(path));
    if (std::optional<fs::LockedShard> locked = fs::ProbeLockedShard(*raw, resolver)) {
      bar.Add(hf.header.file_len());
      bar.Finish();
      if (!quiet) {
        std::printf("LOCKED %s (signature valid; locked (lock key %s not available): data not "
                    "checked)\n",
                    path.c_str(), locked->lock_kid.c_str());
      }
      return Status::Ok();
    }
  }
  if (!opened.ok()) return opened.status();
  std::unique_ptr<fs::EncryptedFile> file = std::move(*opened);
  CTFS_ASSIGN_OR_RETURN(fs::VerifyReport r, fs::VerifyAllChunks(*file, bar.Fn()));
  bar.Finish();
  if (!quiet) {
    std::printf("OK    %s (signature valid; %llu encrypted tensors, %llu chunks authenticated",
                path.c_str(), static_cast<unsigned long long>(r.tensors_encrypted),
                static_cast<unsigned long long>(r.units_verified));
    if (r.tensors_plain > 0) {
      std::printf("; %llu tensors stored unencrypted, not integrity-protected",
                  static_cast<unsigned long long>(r.tensors_plain));
    }
    std::printf(")\n");
  }
  return Status::Ok();
}

Status Verify(const VerifyArgs& args) {
  CTFS_ASSIGN_OR_RETURN(
      keys::KeyResolver resolver,
      keys::KeyResolver::Create({args.key_files, true, true, args.passphrase_file,
                                 Pkcs11Sources(args.pkcs11_uris)}));
  if (!PathExists(args.path)) return NotFoundError(args.path + ": no such file or directory");
  std::vector<std::string> paths;
  if (IsDirectory(args.path)) {
    CTFS_ASSIGN_OR_RETURN(std::vector<std::string> files, ListTree(args.path));
    for (const std::string& rel : files) {
      const std::string path = args.path + "/" + rel;
      if (Status st = MountWouldServe(path, rel); !st.ok()) {
        if (!args.quiet) std::printf("FAIL  %s\n", path.c_str());
        return st;
      }
      if (IsSafetensorsName(rel)) paths.push_back(path);
    }
    if (paths.empty()) return NotFoundError(args.path + ": no *.safetensors file in it");
  } else {
    // A file named on the command line is checked as what it claims to be.
    if (IsSafetensorsName(args.path)) CTFS_RETURN_IF_ERROR(MountWouldServe(args.path, args.path));
    paths.push_back(args.path);
  }
  uint64_t total = 0;
  for (const std::string& p : paths) {
    CTFS_ASSIGN_OR_RETURN(uint64_t size, FileSizeOf(p));
    total += size;
  }
  ProgressBar bar(total, !args.quiet);
  std::vector<std::string> plain;
  for (const std::string& p : paths) {
    bar.SetLabel(p);
    bool is_plain = false;
    Status st = VerifyOne(resolver, p, args.quiet, args.allow_plain, bar, &is_plain);
    if (!st.ok()) {
      bar.Finish();
      if (!args.quiet) std::printf("FAIL  %s\n", p.c_str());
      return st;
    }
    if (is_plain) plain.push_back(p);
  }
  if (plain.empty() || args.allow_plain) return Status::Ok();
  std::string names;
  for (size_t i = 0; i < plain.size() && i < 5; ++i) names += (i ? ", " : "") + plain[i];
  if (plain.size() > 5) names += ", ... (" + std::to_string(plain.size()) + " in all)";
  const bool one = plain.size() == 1;
  return FailedPreconditionError(
      names + ": NOT ENCRYPTED (" + (one ? "a plain safetensors file" : "plain safetensors files") +
      ", neither encrypted nor authenticated; --allow-plain accepts " + (one ? "it)" : "them)"));
}

}  // namespace

CLI::App* AddVerify(CLI::App& app, VerifyArgs& args) {
  CLI::App* c = app.add_subcommand(
      "verify", "Verify CryptoTensors file(s): header, signature, key unwrap and every chunk tag");
  c->add_option("PATH", args.path, "Encrypted file or model directory")->required();
  c->add_option("-k,--key", args.key_files,
                "JWK / JWK Set key file (repeatable); also CRYPTOTENSOR_KEYS and file:// jku");
  c->add_option("--passphrase-file", args.passphrase_file,
                "Passphrase of passphrase-protected --key files (one trailing newline is "
                "stripped; without it such a file is prompted for on a terminal)");
  AddPkcs11Option(c, args.pkcs11_uris, "Master key to verify with");
  c->add_flag("--allow-plain", args.allow_plain,
              "Accept plain (unencrypted, unauthenticated) safetensors files instead of failing "
              "with exit 3");
  c->add_flag("-q,--quiet", args.quiet, "Print nothing on success");
  return c;
}

int RunVerify(const VerifyArgs& args) { return ExitWith(Verify(args)); }

}  // namespace ctfs::cmd
