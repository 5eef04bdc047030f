// SPDX-License-Identifier: Apache-2.0
// The figures of a MountStatus in the Prometheus text exposition format (version 0.0.4), for
// node_exporter's textfile collector (`ctfs mount --metrics-file`). Every sample carries a
// `mountpoint` label, so several mounts can write files into one collector folder; per-file
// samples also carry `path`. Counters end in _total; sizes are in bytes, times in seconds.
#ifndef CTFS_FORMAT_PROMETHEUS_TEXT_H_
#define CTFS_FORMAT_PROMETHEUS_TEXT_H_

#include <string>
#include <string_view>

#include "format/mount_status.h"

namespace ctfs::format {

// PrometheusLabelValue escapes a label value: backslash, double quote and line feed as the
// format requires; bytes that are not valid UTF-8 become U+FFFD.
std::string PrometheusLabelValue(std::string_view raw);

// MountStatusToPrometheus renders `s`; the text ends with a line feed.
std::string MountStatusToPrometheus(const MountStatus& s);

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_PROMETHEUS_TEXT_H_
