// SPDX-License-Identifier: Apache-2.0
// ParseRfc3339: a time with an explicit zone, as written in config files (`not_before`,
// `not_after`): "2027-06-30T00:00:00Z", "2027-06-30T02:00:00+02:00", optional fractional
// seconds (dropped: the result is whole seconds), 't'/'z' and a space instead of 'T' accepted
// (RFC 3339 section 5.6). A leap second (":60") counts as the next second.
#ifndef CTFS_CONFIG_RFC3339_H_
#define CTFS_CONFIG_RFC3339_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace ctfs::config {

// Returns unix seconds, or nullopt if `text` is not such a time (wrong shape, a field out of
// range, a day the month does not have, no zone, a year outside 0001-9999).
std::optional<int64_t> ParseRfc3339(std::string_view text);

}  // namespace ctfs::config

#endif  // CTFS_CONFIG_RFC3339_H_
