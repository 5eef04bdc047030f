// SPDX-License-Identifier: Apache-2.0
// The PKCS#11 token side of keys/pkcs11_token.h. The Cryptoki header is p11-kit's (Debian
// libp11-kit-dev), used in its standard-name mode; no p11-kit library is linked: modules are
// loaded with dlopen, as every PKCS#11 consumer does.
#include "keys/pkcs11_token.h"

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "keys/passphrase.h"

namespace ctfs::keys {
namespace {

#define CTFS_RV(name) {name, #name}
// The return values ctfs reports by name; others as hex.
constexpr struct {
  CK_RV rv;
  const char* name;
} kRvNames[] = {
    CTFS_RV(CKR_OK),
    CTFS_RV(CKR_ARGUMENTS_BAD),
    CTFS_RV(CKR_ATTRIBUTE_SENSITIVE),
    CTFS_RV(CKR_ATTRIBUTE_VALUE_INVALID),
    CTFS_RV(CKR_CRYPTOKI_NOT_INITIALIZED),
    CTFS_RV(CKR_DATA_INVALID),
    CTFS_RV(CKR_DATA_LEN_RANGE),
    CTFS_RV(CKR_DEVICE_ERROR),
    CTFS_RV(CKR_DEVICE_REMOVED),
    CTFS_RV(CKR_ENCRYPTED_DATA_INVALID),
    CTFS_RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
    CTFS_RV(CKR_FUNCTION_FAILED),
    CTFS_RV(CKR_GENERAL_ERROR),
    CTFS_RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
    CTFS_RV(CKR_KEY_HANDLE_INVALID),
    CTFS_RV(CKR_MECHANISM_INVALID),
    CTFS_RV(CKR_MECHANISM_PARAM_INVALID),
    CTFS_RV(CKR_PIN_INCORRECT),
    CTFS_RV(CKR_PIN_LOCKED),
    CTFS_RV(CKR_SESSION_HANDLE_INVALID),
    CTFS_RV(CKR_TEMPLATE_INCOMPLETE),
    CTFS_RV(CKR_TEMPLATE_INCONSISTENT),
    CTFS_RV(CKR_TOKEN_NOT_PRESENT),
    CTFS_RV(CKR_USER_NOT_LOGGED_IN),
};
#undef CTFS_RV

std::string RvName(CK_RV rv) {
  for (const auto& r : kRvNames) {
    if (r.rv == rv) return r.name;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "CKR 0x%lx", static_cast<unsigned long>(rv));
  return buf;
}

Status RvError(CK_RV rv, const std::string& what) {
  return UnavailableError(what + " failed: " + RvName(rv));
}

// Module: a dlopen()ed PKCS#11 module, initialised once per process and finalised when the
// last key using it goes. Modules are shared through a registry keyed by path, because
// C_Initialize is per process, not per caller.
class Module {
 public:
  static Result<std::shared_ptr<Module>> Get(const std::string& path);
  ~Module() {
    if (initialized_) fn_->C_Finalize(nullptr);
    if (handle_ != nullptr) ::dlclose(handle_);
  }
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  CK_FUNCTION_LIST* fn() const { return fn_; }
  const std::string& path() const { return path_; }

 private:
  Module() = default;
  std::string path_;
  void* handle_ = nullptr;
  CK_FUNCTION_LIST* fn_ = nullptr;
  bool initialized_ = false;  // by us (C_Finalize is ours to call)
};

Result<std::shared_ptr<Module>> Module::Get(const std::string& path) {
  static Mutex mu;
  static std::map<std::string, std::weak_ptr<Module>>* registry =
      new std::map<std::string, std::weak_ptr<Module>>();
  MutexLock lock(mu);
  if (std::shared_ptr<Module> m = (*registry)[path].lock()) return m;
  std::shared_ptr<Module> m(new Module());
  m->path_ = path;
  m->handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (m->handle_ == nullptr) {
    const char* err = ::dlerror();
    return UnavailableError("PKCS#11 module " + path + ": cannot load it: " +
                            (err != nullptr ? err : "dlopen failed"));
  }
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(m->handle_, "C_GetFunctionList"));
  if (get_list == nullptr) {
    return InvalidArgumentError("PKCS#11 module " + path +
                                ": no C_GetFunctionList (not a PKCS#11 module)");
  }
  CK_RV rv = get_list(&m->fn_);
  if (rv != CKR_OK || m->fn_ == nullptr) {
    return RvError(rv, "PKCS#11 module " + path + ": C_GetFunctionList");
  }
  CK_C_INITIALIZE_ARGS args = {};
  args.flags = CKF_OS_LOCKING_OK;  // the daemon calls from several threads
  rv = m->fn_->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    return RvError(rv, "PKCS#11 module " + path + ": C_Initialize");
  }
  m->initialized_ = rv == CKR_OK;
  (*registry)[path] = m;
  return m;
}

// Padded: a PKCS#11 fixed-width, blank-padded text field, trimmed.
std::string Padded(const unsigned char* field, size_t len) {
  std::string s(reinterpret_cast<const char*>(field), len);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

std::string TokenText(const Pkcs11Uri& uri) { return "token \"" + uri.token + "\""; }

// Session: an open, logged-in session on the token the URI names; closed when destroyed.
class Session {
 public:
  static Result<std::unique_ptr<Session>> Open(const Pkcs11Uri& uri, bool read_write);
  ~Session() {
    if (handle_ != CK_INVALID_HANDLE) module_->fn()->C_CloseSession(handle_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  CK_FUNCTION_LIST* fn() const { return module_->fn(); }
  CK_SESSION_HANDLE handle() const { return handle_; }
  const std::shared_ptr<Module>& module() const { return module_; }

 private:
  Session() = default;
  std::shared_ptr<Module> module_;
  CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
};

Result<CK_SLOT_ID> FindSlot(const Module& m, const Pkcs11Uri& uri) {
  CK_ULONG n = 0;
  CK_RV rv = m.fn()->C_GetSlotList(CK_TRUE, nullptr, &n);
  if (rv != CKR_OK) return RvError(rv, "PKCS#11 module " + m.path() + ": C_GetSlotList");
  std::vector<CK_SLOT_ID> slots(n);
  rv = m.fn()->C_GetSlotList(CK_TRUE, slots.data(), &n);
  if (rv != CKR_OK) return RvError(rv, "PKCS#11 module " + m.path() + ": C_GetSlotList");
  slots.resize(n);
  std::vector<std::string> seen;
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info;
    if (m.fn()->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    const std::string label = Padded(info.label, sizeof info.label);
    const std::string serial = Padded(info.serialNumber, sizeof info.serialNumber);
    if (label == uri.token && (!uri.serial || *uri.serial == serial)) return slot;
    seen.push_back("\"" + label + "\"");
  }
  std::string list;
  for (const std::string& s : seen) list += (list.empty() ? "" : ", ") + s;
  return NotFoundError("PKCS#11 module " + m.path() + ": no " + TokenText(uri) +
                       (uri.serial ? " with serial " + *uri.serial : "") + " (tokens present: " +
                       (list.empty() ? "none" : list) + ")");
}

Status Login(const Session& s, const Pkcs11Uri& uri, CK_SLOT_ID slot) {
  CK_TOKEN_INFO info;
  CK_RV rv = s.fn()->C_GetTokenInfo(slot, &info);
  if (rv != CKR_OK) return RvError(rv, TokenText(uri) + ": C_GetTokenInfo");
  if (!uri.pin_file) {
    if ((info.flags & CKF_LOGIN_REQUIRED) != 0) {
      return FailedPreconditionError(TokenText(uri) +
                                     " needs a PIN: add pin-source=file:/path/of/the/pin to the "
                                     "URI (" + uri.Describe() + ")");
    }
    return Status::Ok();
  }
  Result<SecretBytes> pin = ReadPassphraseFile(*uri.pin_file);
  if (!pin.ok()) return pin.status().WithContext(TokenText(uri) + ": PIN file");
  rv = s.fn()->C_Login(s.handle(), CKU_USER, pin->data(), pin->size());
  if (rv == CKR_USER_ALREADY_LOGGED_IN) return Status::Ok();  // login is per application
  if (rv == CKR_PIN_INCORRECT) {
    return PermissionDeniedError(TokenText(uri) + ": wrong PIN (" + *uri.pin_file + ")");
  }
  if (rv != CKR_OK) return RvError(rv, TokenText(uri) + ": C_Login");
  return Status::Ok();
}

Result<std::unique_ptr<Session>> Session::Open(const Pkcs11Uri& uri, bool read_write) {
  std::unique_ptr<Session> s(new Session());
  CTFS_ASSIGN_OR_RETURN(s->module_, Module::Get(uri.module_path));
  CTFS_ASSIGN_OR_RETURN(CK_SLOT_ID slot, FindSlot(*s->module_, uri));
  CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
  CK_RV rv = s->fn()->C_OpenSession(slot, flags, nullptr, nullptr, &s->handle_);
  if (rv != CKR_OK) {
    s->handle_ = CK_INVALID_HANDLE;
    return RvError(rv, TokenText(uri) + ": C_OpenSession");
  }
  CTFS_RETURN_IF_ERROR(Login(*s, uri, slot));
  return s;
}

// FindKeys: the secret key objects matching the URI's object and id.
Result<std::vector<CK_OBJECT_HANDLE>> FindKeys(const Session& s, const Pkcs11Uri& uri) {
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  std::vector<CK_ATTRIBUTE> tmpl = {{CKA_CLASS, &cls, sizeof cls}};
  std::string label = uri.object.value_or("");
  Bytes id = uri.id.value_or(Bytes());
  if (uri.object) tmpl.push_back({CKA_LABEL, label.data(), label.size()});
  if (uri.id) tmpl.push_back({CKA_ID, id.data(), id.size()});
  CK_RV rv = s.fn()->C_FindObjectsInit(s.handle(), tmpl.data(), tmpl.size());
  if (rv != CKR_OK) return RvError(rv, TokenText(uri) + ": C_FindObjectsInit");
  std::vector<CK_OBJECT_HANDLE> found(4);
  CK_ULONG n = 0;
  rv = s.fn()->C_FindObjects(s.handle(), found.data(), found.size(), &n);
  s.fn()->C_FindObjectsFinal(s.handle());
  if (rv != CKR_OK) return RvError(rv, TokenText(uri) + ": C_FindObjects");
  found.resize(n);
  return found;
}

template <typename T>
Result<T> GetScalar(const Session& s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
                    const std::string& what) {
  T value{};
  CK_ATTRIBUTE a = {type, &value, sizeof value};
  CK_RV rv = s.fn()->C_GetAttributeValue(s.handle(), obj, &a, 1);
  if (rv != CKR_OK || a.ulValueLen != sizeof value) return RvError(rv, what);
  return value;
}

Result<std::string> GetLabel(const Session& s, CK_OBJECT_HANDLE obj, const std::string& what) {
  CK_ATTRIBUTE a = {CKA_LABEL, nullptr, 0};
  CK_RV rv = s.fn()->C_GetAttributeValue(s.handle(), obj, &a, 1);
  if (rv != CKR_OK || a.ulValueLen > 1024) return RvError(rv, what);
  std::string label(a.ulValueLen, '\0');
  a.pValue = label.data();
  rv = s.fn()->C_GetAttributeValue(s.handle(), obj, &a, 1);
  if (rv != CKR_OK) return RvError(rv, what);
  label.resize(a.ulValueLen);
  return label;
}

class Pkcs11TokenKey final : public TokenKey {
 public:
  Pkcs11TokenKey(std::unique_ptr<Session> session, CK_OBJECT_HANDLE key, AeadAlg alg,
                 std::string describe)
      : session_(std::move(session)), key_(key), alg_(alg), describe_(std::move(describe)) {}

  std::string Describe() const override { return describe_; }
  AeadAlg alg() const override { return alg_; }

  Status Unwrap(ByteSpan iv, ByteSpan wrapped, ByteSpan tag, MutableByteSpan dek) const override {
    if (iv.size() != kAeadNonceLen || tag.size() != kAeadTagLen || dek.size() != wrapped.size()) {
      return InvalidArgumentError(describe_ + ": unwrap: wrong nonce, tag or key length");
    }
    Bytes in(wrapped.begin(), wrapped.end());
    in.insert(in.end(), tag.begin(), tag.end());
    // Room for the whole input: some modules want it for a GCM decrypt.
    SecretBytes out(in.size());
    CK_ULONG out_len = out.size();
    CK_GCM_PARAMS gcm = Gcm(iv);
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof gcm};
    MutexLock lock(mu_);
    CK_RV rv = session_->fn()->C_DecryptInit(session_->handle(), &mech, key_);
    if (rv != CKR_OK) return RvError(rv, describe_ + ": C_DecryptInit (AES-GCM)");
    rv = session_->fn()->C_Decrypt(session_->handle(), in.data(), in.size(), out.data(), &out_len);
    // A tag that does not verify: CKR_ENCRYPTED_DATA_INVALID by the standard; SoftHSM2 2.6
    // answers CKR_GENERAL_ERROR, so the generic failures count as "does not verify" too (the
    // file is refused either way; the message says what the token answered).
    if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
        rv == CKR_DATA_INVALID || rv == CKR_DATA_LEN_RANGE || rv == CKR_GENERAL_ERROR ||
        rv == CKR_FUNCTION_FAILED) {
      std::fill(dek.begin(), dek.end(), uint8_t{0});
      return DataLossError(describe_ + ": authentication failed (" + RvName(rv) + ")");
    }
    if (rv != CKR_OK) return RvError(rv, describe_ + ": C_Decrypt (AES-GCM)");
    if (out_len != dek.size()) {
      return InternalError(describe_ + ": C_Decrypt returned " + std::to_string(out_len) +
                           " bytes, expected " + std::to_string(dek.size()));
    }
    std::copy(out.data(), out.data() + out_len, dek.begin());
    return Status::Ok();
  }

  Status Wrap(ByteSpan iv, ByteSpan dek, MutableByteSpan wrapped,
              MutableByteSpan tag) const override {
    if (iv.size() != kAeadNonceLen || tag.size() != kAeadTagLen || dek.size() != wrapped.size()) {
      return InvalidArgumentError(describe_ + ": wrap: wrong nonce, tag or key length");
    }
    // The data key goes into the token from a wiped copy (C_Encrypt takes a non-const pointer).
    SecretBytes in(dek.size());
    std::copy(dek.begin(), dek.end(), in.data());
    Bytes out(dek.size() + kAeadTagLen + 16);
    CK_ULONG out_len = out.size();
    CK_GCM_PARAMS gcm = Gcm(iv);
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof gcm};
    MutexLock lock(mu_);
    CK_RV rv = session_->fn()->C_EncryptInit(session_->handle(), &mech, key_);
    if (rv != CKR_OK) return RvError(rv, describe_ + ": C_EncryptInit (AES-GCM)");
    rv = session_->fn()->C_Encrypt(session_->handle(), in.data(), in.size(), out.data(), &out_len);
    if (rv != CKR_OK) return RvError(rv, describe_ + ": C_Encrypt (AES-GCM)");
    if (out_len != dek.size() + kAeadTagLen) {
      return InternalError(describe_ + ": C_Encrypt returned " + std::to_string(out_len) +
                           " bytes, expected " + std::to_string(dek.size() + kAeadTagLen));
    }
    std::copy(out.begin(), out.begin() + dek.size(), wrapped.begin());
    std::copy(out.begin() + dek.size(), out.begin() + out_len, tag.begin());
    return Status::Ok();
  }

 private:
  static CK_GCM_PARAMS Gcm(ByteSpan iv) {
    CK_GCM_PARAMS gcm = {};
    gcm.pIv = const_cast<CK_BYTE*>(iv.data());  // Cryptoki's pointers are not const
    gcm.ulIvLen = iv.size();
    gcm.ulIvBits = iv.size() * 8;
    gcm.pAAD = nullptr;
    gcm.ulAADLen = 0;
    gcm.ulTagBits = kAeadTagLen * 8;
    return gcm;
  }

  const std::unique_ptr<Session> session_;
  const CK_OBJECT_HANDLE key_;
  const AeadAlg alg_;
  const std::string describe_;
  mutable Mutex mu_;  // one operation at a time on the session
};

std::string KeyText(const Pkcs11Uri& uri) {
  return "PKCS#11 key " + (uri.object ? "\"" + *uri.object + "\"" : std::string("(by id)")) +
         " in token \"" + uri.token + "\"";
}

}  // namespace

Result<Pkcs11Key> OpenPkcs11Key(const Pkcs11Uri& uri) {
  const std::string what = KeyText(uri);
  CTFS_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::Open(uri, /*read_write=*/false));
  CTFS_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> found, FindKeys(*s, uri));
  if (found.empty()) {
    return NotFoundError(what + ": no such secret key (" + uri.Describe() + ")");
  }
  if (found.size() > 1) {
    return InvalidArgumentError(what + ": " + std::to_string(found.size()) +
                                " secret keys match; name one with object= and id=");
  }
  const CK_OBJECT_HANDLE key = found[0];
  CTFS_ASSIGN_OR_RETURN(CK_KEY_TYPE type,
                        GetScalar<CK_KEY_TYPE>(*s, key, CKA_KEY_TYPE, what + ": CKA_KEY_TYPE"));
  if (type != CKK_AES) {
    return InvalidArgumentError(what + ": not an AES key (token keys support AES-GCM only)");
  }
  CTFS_ASSIGN_OR_RETURN(CK_ULONG len,
                        GetScalar<CK_ULONG>(*s, key, CKA_VALUE_LEN, what + ": CKA_VALUE_LEN"));
  if (len != 16 && len != 32) {
    return InvalidArgumentError(what + ": an AES key of " + std::to_string(len) +
                                " bytes; CryptoTensors uses 16 (aes128gcm) or 32 (aes256gcm)");
  }
  CTFS_ASSIGN_OR_RETURN(CK_BBOOL extractable,
                        GetScalar<CK_BBOOL>(*s, key, CKA_EXTRACTABLE, what + ": CKA_EXTRACTABLE"));
  CTFS_ASSIGN_OR_RETURN(CK_BBOOL sensitive,
                        GetScalar<CK_BBOOL>(*s, key, CKA_SENSITIVE, what + ": CKA_SENSITIVE"));
  if (extractable != CK_FALSE || sensitive != CK_TRUE) {
    return PermissionDeniedError(
        what + " is " + (extractable != CK_FALSE ? "extractable" : "not sensitive") +
        ": its bytes could leave the token; ctfs uses only sensitive, non-extractable keys "
        "(create one with `ctfs keygen --pkcs11 URI`)");
  }
  CTFS_ASSIGN_OR_RETURN(std::string label, GetLabel(*s, key, what + ": CKA_LABEL"));
  const AeadAlg alg = len == 32 ? AeadAlg::kAes256Gcm : AeadAlg::kAes128Gcm;
  const std::string describe = "PKCS#11 key \"" + label + "\" in token \"" + uri.token + "\"";
  return Pkcs11Key{std::make_shared<Pkcs11TokenKey>(std::move(s), key, alg, describe), label};
}

Status CreatePkcs11Key(const Pkcs11Uri& uri, size_t key_len, const SecretBytes* import_value) {
  const std::string what = KeyText(uri);
  if (!uri.object || uri.object->empty()) {
    return InvalidArgumentError(what + ": name the new key with object=LABEL in the URI");
  }
  if (key_len != 16 && key_len != 32) {
    return InvalidArgumentError(what + ": AES keys of 16 or 32 bytes only (aes128gcm, aes256gcm)");
  }
  if (import_value != nullptr && import_value->size() != key_len) {
    return InvalidArgumentError(what + ": the imported key has " +
                                std::to_string(import_value->size()) + " bytes, not " +
                                std::to_string(key_len));
  }
  CTFS_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::Open(uri, /*read_write=*/true));
  Pkcs11Uri by_label = uri;
  by_label.id.reset();
  CTFS_ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> existing, FindKeys(*s, by_label));
  if (!existing.empty()) {
    return AlreadyExistsError(what + " already exists; pick another object= label");
  }
  std::string label = *uri.object;
  Bytes id = uri.id.value_or(Bytes(label.begin(), label.end()));
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_KEY_TYPE type = CKK_AES;
  CK_ULONG len = key_len;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  std::vector<CK_ATTRIBUTE> tmpl = {
      {CKA_CLASS, &cls, sizeof cls},        {CKA_KEY_TYPE, &type, sizeof type},
      {CKA_TOKEN, &yes, sizeof yes},        {CKA_PRIVATE, &yes, sizeof yes},
      {CKA_SENSITIVE, &yes, sizeof yes},    {CKA_EXTRACTABLE, &no, sizeof no},
      {CKA_ENCRYPT, &yes, sizeof yes},      {CKA_DECRYPT, &yes, sizeof yes},
      {CKA_WRAP, &no, sizeof no},           {CKA_UNWRAP, &no, sizeof no},
      {CKA_SIGN, &no, sizeof no},           {CKA_VERIFY, &no, sizeof no},
      {CKA_DERIVE, &no, sizeof no},         {CKA_LABEL, label.data(), label.size()},
      {CKA_ID, id.data(), id.size()},
  };
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  CK_RV rv;
  if (import_value == nullptr) {
    tmpl.push_back({CKA_VALUE_LEN, &len, sizeof len});
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, nullptr, 0};
    rv = s->fn()->C_GenerateKey(s->handle(), &mech, tmpl.data(), tmpl.size(), &key);
    if (rv != CKR_OK) return RvError(rv, what + ": C_GenerateKey (AES)");
  } else {
    // The value goes in from a wiped copy (the template wants a non-const pointer).
    SecretBytes value = import_value->Clone();
    tmpl.push_back({CKA_VALUE, value.data(), value.size()});
    rv = s->fn()->C_CreateObject(s->handle(), tmpl.data(), tmpl.size(), &key);
    if (rv != CKR_OK) return RvError(rv, what + ": C_CreateObject (AES key import)");
  }
  return Status::Ok();
}

}  // namespace ctfs::keys
