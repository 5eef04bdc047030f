// SPDX-License-Identifier: Apache-2.0
// The locked-shard marker (ctfs's own; `ctfs encrypt --lock`): a user `__metadata__` entry
// "ctfs.locked" whose presence marks a CryptoTensors file as a locked shard, encrypted under a
// lock key that only chosen readers hold. User metadata is part of the signed header message
// (cryptotensors-format.md §1.2, §3.1), so the marker is as trustworthy as the signature that
// was checked; the reference package reads it as ordinary user metadata. Its value is an
// informational label (the lock patterns); only its presence counts.
#ifndef CTFS_FORMAT_LOCKED_SHARD_H_
#define CTFS_FORMAT_LOCKED_SHARD_H_

#include "format/safetensors_header.h"

namespace ctfs::format {

inline constexpr char kLockedKey[] = "ctfs.locked";

// HasLockedMarker: `header` carries the marker (not verified: check the signature first).
inline bool HasLockedMarker(const SafetensorsHeader& header) {
  return header.FindMetadata(kLockedKey) != nullptr;
}

}  // namespace ctfs::format

#endif  // CTFS_FORMAT_LOCKED_SHARD_H_
