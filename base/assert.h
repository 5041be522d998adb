// Assertions for programmer errors. They stay on in release builds: a broken invariant in a
// ledger must stop the process before it writes anything wrong, never limp on.
#pragma once

namespace ledger::internal {
[[noreturn]] void AssertionFailed(const char* condition, const char* message, const char* file,
                                  int line);
}  // namespace ledger::internal

#define LEDGER_ASSERT(condition, message)                                             \
  do {                                                                                \
    if (!(condition)) [[unlikely]] {                                                  \
      ::ledger::internal::AssertionFailed(#condition, (message), __FILE__, __LINE__); \
    }                                                                                 \
  } while (false)
