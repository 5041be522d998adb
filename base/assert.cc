#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace ledger::internal {

void AssertionFailed(const char* condition, const char* message, const char* file, int line) {
  std::fprintf(stderr, "assertion failed: %s (%s) at %s:%d\n", condition, message, file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace ledger::internal
