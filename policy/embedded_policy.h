// SPDX-License-Identifier: Apache-2.0
// The access policy embedded in a CryptoTensors file (`__policy__.local`, cryptotensors-format.md
// §5). The reference (cryptotensors 0.2.3) adds that text to a regorus 0.4 engine as one module
// and evaluates `data.model.allow` with no input document: boolean true opens the file; false,
// undefined, a non-boolean, a parse error or a rule conflict refuses it. Its writer stores
// whatever string the user passes as policy["local"] (default "package model\nallow = true").
//
// ctfs has no Rego engine. With no input, only constant modules have a fixed meaning, so it
// decides exactly this subset, the way the reference does, and fails closed on anything else:
//   package model                     (required first; any other package leaves
//                                      data.model.allow undefined: deny)
//   import rego.v1                    (alone), or import future.keywords[.if|.in|.contains|
//                                      .every] (each at most once), before the rules
//   default allow := B                (at most one; `=` also accepted)
//   allow := B   allow = B            (complete rules)
//   allow if BODY   allow := B if BODY   allow = B if BODY
//   BODY: `true` / `false`, or { L (; or newline) L ... } of those literals (not empty)
//   # comments; spaces, tabs, CRLF, blank lines anywhere; each rule on its own line(s)
// where B is true or false. A body holds iff all its literals are true. The value is that of
// the rules whose bodies hold (true and false together: conflict, deny); none: the default;
// no default: undefined (deny). Old syntax without `if` (`allow { true }`) is a parse error in
// the reference (deny). Everything else (input, built-ins, other rules, strings, numbers,
// `else`, two defaults, an empty body, control characters) is unsupported: refused, naming the
// line, even where the reference would allow, so a file whose author restricted access is
// never opened by mistake. `embedded_policy: operator` (config) lets the operator's own rules
// decide instead; the caller then logs the override once per file.
#ifndef CTFS_POLICY_EMBEDDED_POLICY_H_
#define CTFS_POLICY_EMBEDDED_POLICY_H_

#include <string>
#include <string_view>

#include "base/status.h"

namespace ctfs::policy {

enum class EmbeddedVerdict {
  kAllow,        // the reference allows
  kDeny,         // the reference refuses (false, undefined, conflict, parse error)
  kUnsupported,  // outside the subset above: refused (fail closed)
};

struct EmbeddedDecision {
  EmbeddedVerdict verdict = EmbeddedVerdict::kUnsupported;
  // Empty for kAllow; otherwise why, quoting the deciding or offending line (escaped: quotes,
  // backslashes, control and non-ASCII bytes; truncated to 80 bytes) with its line number.
  std::string reason;
};

// DecideEmbeddedPolicy classifies `local_rego` (the module text, as stored in the file).
EmbeddedDecision DecideEmbeddedPolicy(std::string_view local_rego);

// EvaluateEmbeddedPolicy applies the reference's decision: OK for kAllow, PermissionDenied
// with the reason otherwise ("the file's embedded policy denies access (...)" or "unsupported
// embedded Rego policy: ...").
Status EvaluateEmbeddedPolicy(std::string_view local_rego);

// ApplyEmbeddedPolicy is EvaluateEmbeddedPolicy, unless `operator_decides` (config
// `embedded_policy: operator`): then the file opens whatever the module says, and a module
// that would not allow sets `overridden` with `note` (the refusal it overrides and the module's
// first line, quoted) for the caller to log once per file.
struct EmbeddedPolicyOutcome {
  Status status;
  bool overridden = false;
  std::string note;
};
EmbeddedPolicyOutcome ApplyEmbeddedPolicy(std::string_view local_rego, bool operator_decides);

}  // namespace ctfs::policy

#endif  // CTFS_POLICY_EMBEDDED_POLICY_H_
