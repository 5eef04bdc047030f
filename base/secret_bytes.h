// SPDX-License-Identifier: Apache-2.0
// SecretBytes: the only home of key material. Move-only; the bytes live in the SecretArena
// (base/secret_arena.h: locked in RAM, excluded from core dumps, zero in fork()ed children)
// and are wiped when destroyed, wiped or assigned over. No operator==, no operator<<: compare
// with crypto::ConstantTimeEquals and never log the bytes (log a key id and length instead).
// Construction throws std::bad_alloc if no memory can be mapped.
// Thread safety: like a std::vector; not synchronized.
#ifndef CTFS_BASE_SECRET_BYTES_H_
#define CTFS_BASE_SECRET_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <span>

namespace ctfs {

class SecretBytes {
 public:
  SecretBytes() = default;
  // A zero-filled secret of `len` bytes.
  explicit SecretBytes(size_t len);
  // A copy of `bytes`. The caller remains responsible for wiping its own copy.
  static SecretBytes CopyFrom(std::span<const uint8_t> bytes);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  // Clone makes an explicit deep copy (copying a secret is always a visible act).
  SecretBytes Clone() const { return CopyFrom(span()); }

  size_t size() const { return len_; }
  bool empty() const { return len_ == 0; }
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  std::span<const uint8_t> span() const { return {data_, len_}; }
  std::span<uint8_t> mutable_span() { return {data_, len_}; }

  // Wipe zeroes and frees the bytes now; size() becomes 0.
  void Wipe();

 private:
  uint8_t* data_ = nullptr;
  size_t len_ = 0;
};

// WipeMemory zeroes `len` bytes at `p` in a way the compiler may not elide.
void WipeMemory(void* p, size_t len);

}  // namespace ctfs

#endif  // CTFS_BASE_SECRET_BYTES_H_
