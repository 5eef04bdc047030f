// SPDX-License-Identifier: Apache-2.0
// Result<T>: either a value or a non-OK Status (StatusOr-like). Accessing the value of an
// error Result is a bug and aborts.
#ifndef CTFS_BASE_RESULT_H_
#define CTFS_BASE_RESULT_H_

#include <optional>
#include <type_traits>
#include <utility>

#include "base/check.h"
#include "base/status.h"

namespace ctfs {

template <typename T>
class [[nodiscard]] Result {
 public:
  // A Result from a non-OK Status. REQUIRES: !status.ok().
  Result(Status status) : status_(std::move(status)) { CTFS_CHECK(!status_.ok()); }  // NOLINT
  Result(T value) : value_(std::move(value)) {}                                      // NOLINT
  template <typename U, typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                                    !std::is_same_v<std::decay_t<U>, T> &&
                                                    !std::is_same_v<std::decay_t<U>, Status>>>
  Result(U&& value) : value_(T(std::forward<U>(value))) {}  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    CTFS_CHECK(ok());
    return *value_;
  }
  const T& value() const& {
    CTFS_CHECK(ok());
    return *value_;
  }
  T&& value() && {
    CTFS_CHECK(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace ctfs

#define CTFS_CONCAT_INNER_(a, b) a##b
#define CTFS_CONCAT_(a, b) CTFS_CONCAT_INNER_(a, b)

// CTFS_ASSIGN_OR_RETURN(lhs, expr): evaluates expr (a Result); on error returns its Status,
// otherwise moves the value into lhs (which may be a declaration such as `auto x`).
#define CTFS_ASSIGN_OR_RETURN(lhs, expr) \
  CTFS_ASSIGN_OR_RETURN_IMPL_(CTFS_CONCAT_(ctfs_result_, __LINE__), lhs, expr)
#define CTFS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

#endif  // CTFS_BASE_RESULT_H_
