// SPDX-License-Identifier: Apache-2.0
// Fuzzes policy/embedded_policy (the decision on a file's embedded Rego module). Input: the
// module text. Oracles:
//   * deterministic: two calls give the same verdict and reason;
//   * kAllow has an empty reason, kDeny and kUnsupported a non-empty one, printable ASCII only
//     (quoted lines are escaped), of bounded length (each quoted line is cut at 80 bytes);
//     an unsupported reason starts "line N: " with N a line of the text;
//   * the same module with CRLF line ends (when it has no CR) gets the same verdict and reason,
//     and with a trailing newline (when it does not end in CR) the same verdict;
//   * EvaluateEmbeddedPolicy is OK iff kAllow, else PermissionDenied carrying the reason;
//     ApplyEmbeddedPolicy(operator) always opens, and marks the override iff not kAllow.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"
#include "policy/embedded_policy.h"
#include "tests/fuzz/fuzz_util.h"

namespace ctfs::fuzz {
namespace {

using policy::EmbeddedDecision;
using policy::EmbeddedVerdict;

// A reason quotes at most two lines (a conflict), each at most 80 source bytes escaped to at
// most 4 bytes each, plus fixed text and line numbers.
constexpr size_t kMaxReasonLen = 2 * (4 * 80 + 40) + 200;

const char* Name(EmbeddedVerdict v) {
  switch (v) {
    case EmbeddedVerdict::kAllow:
      return "allow";
    case EmbeddedVerdict::kDeny:
      return "deny";
    case EmbeddedVerdict::kUnsupported:
      return "unsupported";
  }
  return "?";
}

void CheckReason(const EmbeddedDecision& d, std::string_view text) {
  if (d.verdict == EmbeddedVerdict::kAllow) {
    FUZZ_CHECK(d.reason.empty(), "allow with a reason: " + d.reason);
    return;
  }
  FUZZ_CHECK(!d.reason.empty(), std::string(Name(d.verdict)) + " without a reason");
  FUZZ_CHECK(d.reason.size() <= kMaxReasonLen,
             "reason of " + std::to_string(d.reason.size()) + " bytes: " + d.reason.substr(0, 300));
  FUZZ_CHECK(
      std::all_of(d.reason.begin(), d.reason.end(), [](char c) { return c >= 0x20 && c < 0x7f; }),
      "unescaped byte in the reason");
  if (d.verdict == EmbeddedVerdict::kUnsupported) {
    FUZZ_CHECK(d.reason.rfind("line ", 0) == 0, "reason: " + d.reason);
    const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    size_t n = 0, i = 5;
    for (; i < d.reason.size() && d.reason[i] >= '0' && d.reason[i] <= '9' && n <= lines; ++i) {
      n = n * 10 + static_cast<size_t>(d.reason[i] - '0');
    }
    FUZZ_CHECK(i > 5 && n >= 1 && n <= lines && d.reason.compare(i, 2, ": ") == 0,
               "line number of " + std::to_string(lines) + " lines: " + d.reason);
  }
}

void FuzzEmbeddedPolicy(ByteSpan input) {
  const std::string_view text = AsStringView(input);
  const EmbeddedDecision d = policy::DecideEmbeddedPolicy(text);
  const EmbeddedDecision again = policy::DecideEmbeddedPolicy(text);
  FUZZ_CHECK(d.verdict == again.verdict && d.reason == again.reason, "not deterministic");
  CheckReason(d, text);

  if (text.find('\r') == std::string_view::npos) {
    std::string crlf;
    for (char c : text) {
      if (c == '\n') crlf += '\r';
      crlf += c;
    }
    const EmbeddedDecision c = policy::DecideEmbeddedPolicy(crlf);
    FUZZ_CHECK(c.verdict == d.verdict && c.reason == d.reason,
               std::string("with CRLF: ") + Name(c.verdict) + " (" + c.reason +
                   "), with LF: " + Name(d.verdict) + " (" + d.reason + ")");
  }
  if (text.empty() || text.back() != '\r') {
    const EmbeddedDecision n = policy::DecideEmbeddedPolicy(std::string(text) + "\n");
    FUZZ_CHECK(n.verdict == d.verdict, std::string("with a final newline: ") + Name(n.verdict) +
                                           " (" + n.reason + "), without: " + Name(d.verdict) +
                                           " (" + d.reason + ")");
  }

  const Status s = policy::EvaluateEmbeddedPolicy(text);
  if (d.verdict == EmbeddedVerdict::kAllow) {
    FUZZ_CHECK(s.ok(), "allow, but Evaluate says " + s.ToString());
  } else {
    FUZZ_CHECK(s.code() == StatusCode::kPermissionDenied &&
                   s.message().find(d.reason) != std::string::npos,
               "Evaluate: " + s.ToString());
  }
  const policy::EmbeddedPolicyOutcome op = policy::ApplyEmbeddedPolicy(text, true);
  FUZZ_CHECK(op.status.ok(), "operator mode refused: " + op.status.ToString());
  FUZZ_CHECK(
      op.overridden == (d.verdict != EmbeddedVerdict::kAllow) && op.note.empty() == !op.overridden,
      "override flag or note: " + op.note);
  const policy::EmbeddedPolicyOutcome ref = policy::ApplyEmbeddedPolicy(text, false);
  FUZZ_CHECK(!ref.overridden && ref.status.code() == s.code(), "reference mode differs");
}

}  // namespace
}  // namespace ctfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctfs::fuzz::FuzzEmbeddedPolicy(ctfs::ByteSpan(data, size));
  return 0;
}
