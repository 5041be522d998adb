// Decimal numbers and RFC 3339 times as the API, ledgerctl and the audit tools read and write
// them.
#include "base/text.h"

#include <catch2/catch.hpp>

namespace ledger {
namespace {

TEST_CASE("ParseDecimal takes 1 to 19 digits and nothing else") {
  CHECK(ParseDecimal("0") == 0u);
  CHECK(ParseDecimal("42") == 42u);
  CHECK(ParseDecimal("9999999999999999999") == 9999999999999999999u);
  for (const char* bad :
       {"", "-1", "+1", " 1", "1 ", "1.0", "0x10", "12a", "10000000000000000000"}) {
    INFO(bad);
    CHECK_FALSE(ParseDecimal(bad).has_value());
  }
}

TEST_CASE("ParseRfc3339 reads UTC and offsets, fractions, and refuses invalid dates") {
  CHECK(ParseRfc3339("1970-01-01T00:00:00Z") == 0);
  CHECK(ParseRfc3339("2026-11-22T10:00:00Z") == int64_t{1'795'341'600} * 1'000'000);
  CHECK(ParseRfc3339("2026-11-22T10:00:00.5Z") == int64_t{1'795'341'600} * 1'000'000 + 500'000);
  CHECK(ParseRfc3339("2026-11-22T10:00:00.1234567Z") ==
        int64_t{1'795'341'600} * 1'000'000 + 123'456);
  CHECK(ParseRfc3339("2026-11-22T12:00:00+02:00") == ParseRfc3339("2026-11-22T10:00:00Z"));
  CHECK(ParseRfc3339("2026-11-22T08:30:00-01:30") == ParseRfc3339("2026-11-22T10:00:00Z"));
  CHECK(ParseRfc3339("2024-02-29T00:00:00Z").has_value());
  // A leap second: 23:59:60 UTC, also written in another offset; it reads as the next second.
  CHECK(ParseRfc3339("2016-12-31T23:59:60Z") == ParseRfc3339("2017-01-01T00:00:00Z"));
  CHECK(ParseRfc3339("2016-12-31T18:59:60-05:00") == ParseRfc3339("2017-01-01T00:00:00Z"));
  CHECK(ParseRfc3339("2017-01-01T05:29:60+05:30") == ParseRfc3339("2017-01-01T00:00:00Z"));
  CHECK(ParseRfc3339("2026-11-22T23:59:00+23:59").has_value());
  for (const char* bad :
       {"", "2026-11-22", "2026-11-22T10:00:00", "2026-11-22 10:00:00Z", "2026-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z", "2026-11-22T24:00:00Z", "2026-11-22T10:00:00.Z",
        "2026-11-22T10:00:00+0200", "2026-11-22T10:00:00Zjunk",
        // Offsets beyond 23:59, and a second 60 anywhere but at the end of a UTC day.
        "2026-11-22T10:00:00+99:99", "2026-11-22T10:00:00+24:00", "2026-11-22T10:00:00-00:60",
        "2026-11-22T10:00:60Z", "2016-12-31T23:59:60+01:00"}) {
    INFO(bad);
    CHECK_FALSE(ParseRfc3339(bad).has_value());
  }
}

TEST_CASE("FormatRfc3339 writes UTC with microseconds, and reads back") {
  CHECK(FormatRfc3339(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(FormatRfc3339(int64_t{1'795'341'600} * 1'000'000 + 42) == "2026-11-22T10:00:00.000042Z");
  CHECK(FormatRfc3339(-1) == "1969-12-31T23:59:59.999999Z");
  for (int64_t time_us : {int64_t{0}, int64_t{1}, int64_t{1'795'341'600'123'456}, int64_t{-5}}) {
    CHECK(ParseRfc3339(FormatRfc3339(time_us)) == time_us);
  }
}

}  // namespace
}  // namespace ledger
