// SPDX-License-Identifier: Apache-2.0
#include "policy/embedded_policy.h"

#include <string>

namespace ctfs::policy {
namespace {

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

}  // namespace

Status EvaluateEmbeddedPolicy(std::string_view local_rego) {
  std::string_view text = Trim(local_rego);
  if (text == "package model\nallow = true") return Status::Ok();
  if (text == "package model\nallow = false") {
    return PermissionDeniedError("the file's embedded policy denies access");
  }
  return PermissionDeniedError(
      "unsupported embedded Rego policy (ctfs evaluates only the default "
      "'package model / allow = true' and 'allow = false' modules; refusing to open)");
}

}  // namespace ctfs::policy
