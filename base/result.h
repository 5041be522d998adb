// Result<T, E>: a value or an error, shaped like C++23 std::expected so that a move to C++23 is a
// rename. Operational failures (I/O, corruption) and business rejections travel in the error
// side; exceptions are not used for either.
//
// Thread safety: a Result is a plain value type.
#pragma once

#include <cstdlib>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/assert.h"

namespace ledger {

// Wraps an error so that Result<T, E> can be constructed from it even when T and E convert
// into each other (mirrors std::unexpected).
template <typename E>
class Unexpected {
 public:
  explicit Unexpected(E error) : error_(std::move(error)) {}
  E& error() & { return error_; }
  E&& error() && { return std::move(error_); }

 private:
  E error_;
};

template <typename E>
Unexpected(E) -> Unexpected<E>;

template <typename T, typename E>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  using error_type = E;

  Result(T value) : storage_(std::in_place_index<0>, std::move(value)) {}  // NOLINT implicit
  Result(Unexpected<E> error)                                              // NOLINT implicit
      : storage_(std::in_place_index<1>, std::move(error).error()) {}

  bool has_value() const { return storage_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    LEDGER_ASSERT(has_value(), "Result::value() on an error");
    return std::get<0>(storage_);
  }
  const T& value() const& {
    LEDGER_ASSERT(has_value(), "Result::value() on an error");
    return std::get<0>(storage_);
  }
  T&& value() && {
    LEDGER_ASSERT(has_value(), "Result::value() on an error");
    return std::get<0>(std::move(storage_));
  }
  const E& error() const& {
    LEDGER_ASSERT(!has_value(), "Result::error() on a value");
    return std::get<1>(storage_);
  }
  E&& error() && {
    LEDGER_ASSERT(!has_value(), "Result::error() on a value");
    return std::get<1>(std::move(storage_));
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, E> storage_;
};

// Result<void, E>: success carries nothing.
template <typename E>
class [[nodiscard]] Result<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  Result() = default;
  Result(Unexpected<E> error) : error_(std::move(error).error()), ok_(false) {}  // NOLINT

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  void value() const { LEDGER_ASSERT(ok_, "Result::value() on an error"); }
  const E& error() const& {
    LEDGER_ASSERT(!ok_, "Result::error() on a value");
    return error_;
  }
  E&& error() && {
    LEDGER_ASSERT(!ok_, "Result::error() on a value");
    return std::move(error_);
  }

 private:
  E error_{};
  bool ok_ = true;
};

}  // namespace ledger
