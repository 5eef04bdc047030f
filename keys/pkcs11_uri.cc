// SPDX-License-Identifier: Apache-2.0
#include "keys/pkcs11_uri.h"

#include <cctype>
#include <cstdio>
#include <utility>

namespace ctfs::keys {
namespace {

constexpr std::string_view kScheme = "pkcs11:";
constexpr size_t kMaxUriLen = 4096;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decode percent-decodes `v` (the value of attribute `name`).
Result<std::string> Decode(std::string_view name, std::string_view v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '%') {
      out += v[i];
      continue;
    }
    const int hi = i + 2 < v.size() ? HexValue(v[i + 1]) : -1;
    const int lo = i + 2 < v.size() ? HexValue(v[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError("PKCS#11 URI: attribute " + std::string(name) +
                                  ": bad percent-encoding (want %XX)");
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// Split calls `fn(name, value)` for each "name=value" of `part` separated by `sep`.
template <typename Fn>
Status Split(std::string_view part, char sep, std::string_view where, Fn fn) {
  while (!part.empty()) {
    const size_t end = part.find(sep);
    std::string_view item = part.substr(0, end);
    part = end == std::string_view::npos ? std::string_view() : part.substr(end + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgumentError("PKCS#11 URI: " + std::string(where) + " attribute \"" +
                                  std::string(item.substr(0, 64)) + "\" is not name=value");
    }
    if (eq == 0) {  // its text is not echoed: after the '=' could be anything, a PIN too
      return InvalidArgumentError("PKCS#11 URI: a " + std::string(where) +
                                  " attribute has an empty name (\"=...\")");
    }
    CTFS_RETURN_IF_ERROR(fn(item.substr(0, eq), item.substr(eq + 1)));
  }
  return Status::Ok();
}

Status SetOnce(std::string_view name, std::string value, std::optional<std::string>& slot) {
  if (slot.has_value()) {
    return InvalidArgumentError("PKCS#11 URI: attribute " + std::string(name) + " given twice");
  }
  slot = std::move(value);
  return Status::Ok();
}

bool IsUnreserved(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~' || c == '/';
}

std::string Encode(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (IsUnreserved(c)) {
      out += c;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    }
  }
  return out;
}

}  // namespace

std::string Pkcs11Uri::Describe() const {
  std::string out = "pkcs11:token=" + Encode(token);
  if (serial) out += ";serial=" + Encode(*serial);
  if (object) out += ";object=" + Encode(*object);
  if (id) out += ";id=" + Encode(AsStringView(*id));
  out += "?module-path=" + Encode(module_path);
  // file:// + an absolute path: also right for a path that starts with "//".
  if (pin_file) out += "&pin-source=file://" + Encode(*pin_file);
  return out;
}

Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view uri) {
  if (uri.size() > kMaxUriLen) {
    return InvalidArgumentError("PKCS#11 URI: longer than " + std::to_string(kMaxUriLen) +
                                " bytes");
  }
  bool scheme_ok = uri.size() >= kScheme.size();
  for (size_t i = 0; scheme_ok && i < kScheme.size(); ++i) {
    scheme_ok = std::tolower(static_cast<unsigned char>(uri[i])) == kScheme[i];
  }
  if (!scheme_ok) {
    return InvalidArgumentError(
        "PKCS#11 URI must start with \"pkcs11:\" (e.g. pkcs11:token=ctfs;object=kek"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/ctfs/hsm.pin)");
  }
  uri.remove_prefix(kScheme.size());
  const size_t q = uri.find('?');
  const std::string_view path = uri.substr(0, q);
  const std::string_view query =
      q == std::string_view::npos ? std::string_view() : uri.substr(q + 1);

  Pkcs11Uri out;
  std::optional<std::string> token, type, id, module, pin_source;
  CTFS_RETURN_IF_ERROR(Split(path, ';', "path", [&](std::string_view name, std::string_view raw) {
    std::optional<std::string>* slot = name == "token"    ? &token
                                       : name == "serial" ? &out.serial
                                       : name == "object" ? &out.object
                                       : name == "id"     ? &id
                                       : name == "type"   ? &type
                                                          : nullptr;
    if (slot == nullptr) {  // refused before its value is even decoded
      return InvalidArgumentError("PKCS#11 URI: unsupported path attribute \"" +
                                  std::string(name.substr(0, 64)) +
                                  "\" (ctfs knows token, serial, object, id, type)");
    }
    CTFS_ASSIGN_OR_RETURN(std::string v, Decode(name, raw));
    return SetOnce(name, std::move(v), *slot);
  }));
  CTFS_RETURN_IF_ERROR(Split(query, '&', "query", [&](std::string_view name, std::string_view raw) {
    if (name == "pin-value") {
      return InvalidArgumentError(
          "PKCS#11 URI: pin-value is not accepted (it would keep the PIN in the config and in "
          "process listings); put the PIN in a file only root can read and name it with "
          "pin-source=file:/path");
    }
    std::optional<std::string>* slot = name == "module-path"  ? &module
                                       : name == "pin-source" ? &pin_source
                                                              : nullptr;
    if (slot == nullptr) {
      return InvalidArgumentError("PKCS#11 URI: unsupported query attribute \"" +
                                  std::string(name.substr(0, 64)) +
                                  "\" (ctfs knows module-path, pin-source)");
    }
    CTFS_ASSIGN_OR_RETURN(std::string v, Decode(name, raw));
    return SetOnce(name, std::move(v), *slot);
  }));
  if (!token || token->empty()) {
    return InvalidArgumentError("PKCS#11 URI: token=LABEL is required");
  }
  out.token = std::move(*token);
  if (type && *type != "secret-key") {
    return InvalidArgumentError("PKCS#11 URI: type=" + type->substr(0, 64) +
                                ": the master key is a secret key (type=secret-key)");
  }
  if (!out.object && !id) {
    return InvalidArgumentError("PKCS#11 URI: name the key with object=LABEL or id=ID");
  }
  if (id) out.id = Bytes(id->begin(), id->end());
  if (!module || module->empty() || (*module)[0] != '/') {
    return InvalidArgumentError(
        "PKCS#11 URI: module-path=/absolute/path/of/the/module.so is required");
  }
  out.module_path = std::move(*module);
  if (pin_source) {
    std::string_view src = *pin_source;
    if (src.starts_with("file://")) {
      src.remove_prefix(7);  // file:///abs
    } else if (src.starts_with("file:")) {
      src.remove_prefix(5);  // file:/abs
    }
    if (src.empty() || src[0] != '/') {
      return InvalidArgumentError("PKCS#11 URI: pin-source must be file:/absolute/path or "
                                  "/absolute/path");
    }
    out.pin_file = std::string(src);
  }
  return out;
}

}  // namespace ctfs::keys
