// SPDX-License-Identifier: Apache-2.0
// The access policy embedded in a CryptoTensors file (__policy__.local, a Rego module that the
// reference evaluates as data.model.allow with no input; cryptotensors-format.md §5).
// ctfs has no Rego engine. It recognises exactly two module texts and fails closed on every
// other one, so a file whose author restricted access is never opened by mistake:
//   "package model\nallow = true"   -> allow (the reference default, what every writer emits)
//   "package model\nallow = false"  -> deny
// Leading/trailing whitespace is ignored; nothing else is normalised.
#ifndef CTFS_POLICY_EMBEDDED_POLICY_H_
#define CTFS_POLICY_EMBEDDED_POLICY_H_

#include <string_view>

#include "base/status.h"

namespace ctfs::policy {

// EvaluateEmbeddedPolicy returns OK for the allow-all module, PermissionDenied("policy denies
// access") for the deny-all module, and PermissionDenied naming the limitation for any other
// module ("unsupported embedded Rego policy; ctfs only accepts ...").
Status EvaluateEmbeddedPolicy(std::string_view local_rego);

}  // namespace ctfs::policy

#endif  // CTFS_POLICY_EMBEDDED_POLICY_H_
