// SPDX-License-Identifier: Apache-2.0
#include "base/secret_bytes.h"

#include <string.h>

#include <new>
#include <utility>

#include "base/secret_arena.h"

namespace ctfs {

void WipeMemory(void* p, size_t len) {
  if (p != nullptr && len > 0) explicit_bzero(p, len);
}

SecretBytes::SecretBytes(size_t len) : len_(len) {
  if (len == 0) return;
  data_ = SecretArena::Allocate(len);  // zero-filled, locked, not dumped, not inherited
  if (data_ == nullptr) throw std::bad_alloc();
}

SecretBytes SecretBytes::CopyFrom(std::span<const uint8_t> bytes) {
  SecretBytes s(bytes.size());
  if (!bytes.empty()) memcpy(s.data_, bytes.data(), bytes.size());
  return s;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), len_(std::exchange(other.len_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::exchange(other.data_, nullptr);
    len_ = std::exchange(other.len_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() { Wipe(); }

void SecretBytes::Wipe() {
  SecretArena::Free(data_, len_);  // wipes
  data_ = nullptr;
  len_ = 0;
}

}  // namespace ctfs
