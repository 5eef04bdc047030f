// SPDX-License-Identifier: Apache-2.0
// WipedBytes: a heap buffer for plaintext (decrypted chunks, staging buffers) that is zeroed
// on destruction. Not for keys (use SecretBytes, which is also mlocked).
#ifndef CTFS_BASE_WIPED_BYTES_H_
#define CTFS_BASE_WIPED_BYTES_H_

#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/secret_bytes.h"

namespace ctfs {

class WipedBytes {
 public:
  explicit WipedBytes(size_t len) : bytes_(len) {}
  ~WipedBytes() { WipeMemory(bytes_.data(), bytes_.size()); }
  WipedBytes(const WipedBytes&) = delete;
  WipedBytes& operator=(const WipedBytes&) = delete;

  MutableByteSpan span() { return bytes_; }
  ByteSpan span() const { return bytes_; }
  uint8_t* data() { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }

 private:
  Bytes bytes_;
};

}  // namespace ctfs

#endif  // CTFS_BASE_WIPED_BYTES_H_
