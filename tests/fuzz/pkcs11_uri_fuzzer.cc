// SPDX-License-Identifier: Apache-2.0
// Fuzzes keys/pkcs11_uri (RFC 7512 URIs from configs and the command line). Oracles:
//   * no crash, no leak; errors are InvalidArgument and do not depend on the value of a
//     pin-value attribute (so none is ever echoed);
//   * an accepted URI has a token, an object or an id, an absolute module path and, if any,
//     an absolute PIN file;
//   * Describe() of an accepted URI parses again to the same fields (it is what messages and
//     `ctfs status` show, and must name the same key).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "keys/pkcs11_uri.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ctfs::keys::ParsePkcs11Uri;
  using ctfs::keys::Pkcs11Uri;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ctfs::Result<Pkcs11Uri> u = ParsePkcs11Uri(text);
  if (!u.ok()) {
    FUZZ_CHECK(u.status().code() == ctfs::StatusCode::kInvalidArgument, u.status().message());
    // The error does not depend on the value of any pin-value attribute: the same URI with
    // each such value overwritten gives the same message (so no PIN can be echoed).
    std::string masked(text);
    const size_t query = masked.find('?');
    for (size_t at = masked.find("pin-value="); at != std::string::npos;
         at = masked.find("pin-value=", at + 1)) {
      // An attribute starts right after "pkcs11:" or after ';' in the path (which ends at the
      // first '?'), right after that '?' or after '&' in the query; elsewhere "pin-value=" is
      // inside another attribute's value.
      const bool in_query = query != std::string::npos && at > query;
      const bool starts = at > 0 && (in_query ? (at == query + 1 || masked[at - 1] == '&')
                                              : (at == 7 || masked[at - 1] == ';'));
      if (!starts) continue;
      for (size_t j = at + 10; j < masked.size(); ++j) {
        if (in_query ? masked[j] == '&' : (masked[j] == ';' || j == query)) break;
        masked[j] = 'Z';
      }
    }
    ctfs::Result<Pkcs11Uri> m = ParsePkcs11Uri(masked);
    FUZZ_CHECK(!m.ok() && m.status().message() == u.status().message(),
               "the error depends on a pin-value: " + u.status().message() + " | " +
                   (m.ok() ? std::string("(accepted)") : m.status().message()));
    return 0;
  }
  FUZZ_CHECK(!u->token.empty(), "no token");
  FUZZ_CHECK(u->object.has_value() || u->id.has_value(), "no object and no id");
  FUZZ_CHECK(!u->module_path.empty() && u->module_path[0] == '/', "module path not absolute");
  FUZZ_CHECK(!u->pin_file || (!u->pin_file->empty() && (*u->pin_file)[0] == '/'),
             "PIN file not absolute");
  const std::string again_text = u->Describe();
  ctfs::Result<Pkcs11Uri> again = ParsePkcs11Uri(again_text);
  FUZZ_CHECK(again.ok(), "Describe() does not parse: " + again_text + ": " +
                             again.status().message());
  FUZZ_CHECK(again->token == u->token && again->serial == u->serial &&
                 again->object == u->object && again->id == u->id &&
                 again->module_path == u->module_path && again->pin_file == u->pin_file,
             "Describe() names another key: " + again_text);
  return 0;
}
