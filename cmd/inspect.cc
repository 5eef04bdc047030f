// SPDX-License-Identifier: Apache-2.0
// ctfs inspect FILE: show a safetensors / CryptoTensors file's structure without any key:
// tensors, dtypes, shapes, which are encrypted, format version, chunk size, algorithms, key
// ids, policy. --json prints one JSON object for scripts. Nothing is decrypted or verified
// (use `ctfs verify` for that).
#include <cstdio>
#include <string>

#include "cmd/common.h"
#include "cmd/exit_codes.h"
#include "cmd/subcommands.h"
#include "format/crypt_metadata.h"
#include "format/locked_shard.h"
#include "format/plain_view.h"
#include "format/reserved_keys.h"
#include "fs/encrypted_file.h"

namespace ctfs::cmd {
namespace {

using format::JsonQuote;

std::string ShapeText(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string OptQuote(const std::optional<std::string>& s) { return s ? JsonQuote(*s) : "null"; }

std::string DescriptorJson(const format::KeyDescriptor& d) {
  return "{\"kty\":" + JsonQuote(d.kty) + ",\"alg\":" + JsonQuote(d.alg) +
         ",\"kid\":" + OptQuote(d.kid) + ",\"jku\":" + OptQuote(d.jku) + "}";
}

bool IsUserKey(const std::string& key) {
  return !format::IsReservedKey(key) && key != format::kPlainHeaderKey;
}

void PrintJson(const std::string& path, const format::SafetensorsHeader& h,
               const format::CryptMetadata* cm) {
  std::string o = "{\"file\":" + JsonQuote(path) + ",\"encrypted\":" + (cm ? "true" : "false");
  const auto reserved = format::ReservedKeyInUse(h);
  o += ",\"damaged\":" + std::string(reserved && cm == nullptr ? "true" : "false");
  o += ",\"locked\":" + std::string(cm && format::HasLockedMarker(h) ? "true" : "false");
  o += ",\"header_bytes\":" + std::to_string(h.header_len);
  o += ",\"data_bytes\":" + std::to_string(h.data_len);
  if (cm) {
    o += ",\"version\":" + JsonQuote(cm->keys.version);
    o += ",\"chunked\":" + std::string(cm->keys.chunked() ? "true" : "false");
    o += ",\"chunk_size\":" +
         (cm->keys.chunked() ? std::to_string(cm->keys.EffectiveChunkSize()) : "null");
    o += ",\"enc\":" + DescriptorJson(cm->keys.enc) + ",\"sign\":" + DescriptorJson(cm->keys.sign);
    o += ",\"policy\":{\"local\":" + JsonQuote(cm->policy.local) +
         ",\"remote\":" + JsonQuote(cm->policy.remote) + "}";
  } else {
    o += ",\"version\":null,\"chunked\":false,\"chunk_size\":null,\"enc\":null,\"sign\":null,"
         "\"policy\":null";
  }
  o += ",\"metadata\":{";
  bool first = true;
  for (const auto& e : h.metadata) {
    if (!IsUserKey(e.key)) continue;
    o += (first ? "" : ",") + JsonQuote(e.key) + ":" + JsonQuote(e.value);
    first = false;
  }
  o += "},\"tensors\":[";
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const auto& t = h.tensors[i];
    bool enc = cm && cm->FindEntry(t.name) != nullptr;
    o += (i ? "," : "") + std::string("{\"name\":") + JsonQuote(t.name) +
         ",\"dtype\":" + JsonQuote(std::string(format::DtypeName(t.dtype))) +
         ",\"shape\":" + ShapeText(t.shape) + ",\"data_offsets\":[" + std::to_string(t.begin) +
         "," + std::to_string(t.end) + "],\"encrypted\":" + (enc ? "true" : "false") + "}";
  }
  o += "]}";
  std::printf("%s\n", o.c_str());
}

void PrintText(const std::string& path, const format::SafetensorsHeader& h,
               const format::CryptMetadata* cm) {
  std::printf("file:       %s\n", path.c_str());
  std::printf("format:     %s\n",
              cm ? "CryptoTensors (encrypted safetensors)" : "plain safetensors");
  if (auto key = format::ReservedKeyInUse(h); key && cm == nullptr) {
    std::printf("DAMAGED:    uses the reserved name %s without __encryption__ (a damaged or "
                "stripped CryptoTensors file, whose data may be ciphertext; the mount and "
                "verify refuse it)\n",
                key->c_str());
  }
  std::printf("header:     %llu bytes; data: %s\n", static_cast<unsigned long long>(h.header_len),
              HumanBytes(h.data_len).c_str());
  size_t n_enc = 0;
  if (cm) {
    const auto& k = cm->keys;
    std::printf(
        "version:    %s (%s)\n", k.version.c_str(),
        k.chunked()
            ? ("chunked, chunk size " + std::to_string(k.EffectiveChunkSize()) + " bytes").c_str()
            : "whole-tensor AEAD");
    std::printf("encryption: %s, key id %s%s\n", k.enc.alg.c_str(),
                k.enc.kid ? k.enc.kid->c_str() : "(none)",
                k.enc.jku ? (", jku " + *k.enc.jku).c_str() : "");
    std::printf("signature:  %s, key id %s%s\n", k.sign.alg.c_str(),
                k.sign.kid ? k.sign.kid->c_str() : "(none)",
                k.sign.jku ? (", jku " + *k.sign.jku).c_str() : "");
    if (format::HasLockedMarker(h)) {
      std::printf("locked:     yes: a locked shard (`encrypt --lock`); readers without the lock "
                  "key %s get EACCES (locked (lock key not available)); inspect checks no key\n",
                  k.enc.kid ? k.enc.kid->c_str() : "(no kid)");
    }
    bool default_policy = cm->policy.local == format::kDefaultPolicyText &&
                          cm->policy.remote == format::kDefaultPolicyText;
    std::printf("policy:     %s\n", default_policy ? "default (allow)" : "custom:");
    if (!default_policy) {
      std::printf("  local:  %s\n  remote: %s\n", cm->policy.local.c_str(),
                  cm->policy.remote.c_str());
    }
    n_enc = cm->entries.size();
  }
  for (const auto& e : h.metadata) {
    if (IsUserKey(e.key)) std::printf("metadata:   %s = %s\n", e.key.c_str(), e.value.c_str());
  }
  std::printf("tensors:    %zu (%zu encrypted, %zu plain)\n", h.tensors.size(), n_enc,
              h.tensors.size() - n_enc);
  for (const auto& t : h.tensors) {
    bool enc = cm && cm->FindEntry(t.name) != nullptr;
    std::printf("  %-4s %-10s %-18s %12llu..%-12llu %s\n", enc ? "enc" : "-",
                std::string(format::DtypeName(t.dtype)).c_str(), ShapeText(t.shape).c_str(),
                static_cast<unsigned long long>(t.begin), static_cast<unsigned long long>(t.end),
                t.name.c_str());
  }
}

Status Inspect(const InspectArgs& args) {
  if (IsDirectory(args.file)) {
    return InvalidArgumentError(args.file +
                                ": is a directory (inspect takes one file; `ctfs verify DIR` "
                                "checks every *.safetensors below a directory)");
  }
  CTFS_ASSIGN_OR_RETURN(fs::HeaderAndFd hf, fs::ReadHeader(args.file));
  std::optional<format::CryptMetadata> cm;
  if (format::IsEncrypted(hf.header)) {
    auto parsed = format::ParseCryptMetadata(hf.header);
    if (!parsed.ok()) return parsed.status().WithContext(args.file);
    cm = std::move(*parsed);
  }
  if (args.json) {
    PrintJson(args.file, hf.header, cm ? &*cm : nullptr);
  } else {
    PrintText(args.file, hf.header, cm ? &*cm : nullptr);
  }
  return Status::Ok();
}

}  // namespace

CLI::App* AddInspect(CLI::App& app, InspectArgs& args) {
  CLI::App* c = app.add_subcommand(
      "inspect", "Show a (CryptoTensors) safetensors file's structure; needs no key");
  c->add_option("FILE", args.file, "File to inspect")->required();
  c->add_flag("--json", args.json, "Print one JSON object");
  return c;
}

int RunInspect(const InspectArgs& args) { return ExitWith(Inspect(args)); }

}  // namespace ctfs::cmd
