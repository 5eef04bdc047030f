#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# folio_orders.sh: how big the page-cache pieces (folios) are that the kernel adds while a
# command runs, per device. A diagnosis aid for bench/RESULTS.md, not a benchmark: on kernels
# where FUSE fills its page cache with order-0 (4 KiB) folios and ext4 with large ones, a
# reader of a FUSE mount takes many more page faults to map the same bytes.
#
# Usage: bench/folio_orders.sh COMMAND [ARGS...]
# Prints one line per (device, order): "dev MAJ:MIN order=N folios=COUNT bytes=BYTES". A FUSE
# mount's device is the one `mountpoint -d MOUNTPOINT` names (major 0). Needs root and perf
# (Debian: linux-perf) with the filemap:mm_filemap_add_to_page_cache tracepoint. Drop the page
# cache first (echo 3 > /proc/sys/vm/drop_caches) to see what a cold read adds.
set -euo pipefail
if [ $# -eq 0 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -eq 0 ] && exit 2 || exit 0
fi
if ! command -v perf > /dev/null; then
  echo "folio_orders.sh: perf not found (Debian: apt-get install linux-perf)" >&2
  exit 2
fi
event=filemap:mm_filemap_add_to_page_cache
if ! perf list 2> /dev/null | grep -F "$event" > /dev/null; then
  echo "folio_orders.sh: this kernel has no $event tracepoint (or perf may not read it)" >&2
  exit 2
fi
data="$(mktemp /tmp/folio_orders.XXXXXX)"
trap 'rm -f "$data"' EXIT
perf record -q -a -e "$event" -o "$data" -- "$@" > /dev/null
# Lines look like: "... dev 0:39 ino 3 pfn=0x... ofs=8192 order=0".
perf script -i "$data" 2> /dev/null |
  grep -oE 'dev [0-9]+:[0-9]+ .*order=[0-9]+' |
  awk -v page="$(getconf PAGESIZE)" '
       { split($NF, o, "="); k = $2 " order=" o[2]; n[k]++; b[k] += page * 2 ^ o[2] }
       END { for (k in n) printf "dev %s folios=%d bytes=%d\n", k, n[k], b[k] }' |
  sort -V
