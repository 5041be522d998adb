#include "base/bytes.h"

#include <catch2/catch.hpp>

namespace ledger {
namespace {

TEST_CASE("big-endian integers sort like the numbers they encode", "[bytes]") {
  std::string small, large;
  AppendBigEndian64(small, 255);
  AppendBigEndian64(large, 256);
  CHECK(small < large);
  CHECK(ReadBigEndian64(small.data()) == 255);
  CHECK(ReadBigEndian64(large.data()) == 256);
  std::string max;
  AppendBigEndian64(max, UINT64_MAX);
  CHECK(ReadBigEndian64(max.data()) == UINT64_MAX);
}

TEST_CASE("hex round-trips and rejects bad text", "[bytes]") {
  const std::string raw("\x00\x7f\xff\x10", 4);
  CHECK(ToHex(raw) == "007fff10");
  CHECK(FromHex("007FFF10") == raw);
  CHECK_FALSE(FromHex("abc").has_value());
  CHECK_FALSE(FromHex("zz").has_value());
}

}  // namespace
}  // namespace ledger
