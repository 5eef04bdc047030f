# SPDX-License-Identifier: Apache-2.0
# Real-mount integration tests of `ctfs mount` / `ctfs umount` (needs /dev/fuse; run as root).
