#include "base/result.h"

#include <catch2/catch.hpp>
#include <string>

namespace ledger {
namespace {

Result<int, std::string> Half(int value) {
  if (value % 2 != 0) return Unexpected(std::string("odd"));
  return value / 2;
}

TEST_CASE("a result holds either a value or an error", "[result]") {
  auto even = Half(8);
  REQUIRE(even.has_value());
  CHECK(*even == 4);
  auto odd = Half(3);
  REQUIRE_FALSE(odd.has_value());
  CHECK(odd.error() == "odd");
}

TEST_CASE("a void result is a success or an error", "[result]") {
  Result<void, std::string> ok;
  CHECK(ok.has_value());
  Result<void, std::string> failed = Unexpected(std::string("disk full"));
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error() == "disk full");
}

}  // namespace
}  // namespace ledger
