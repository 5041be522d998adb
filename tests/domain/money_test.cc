#include "domain/money.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <limits>
#include <string>

namespace ledger::domain {
namespace {

TEST_CASE("the currency table holds real ISO 4217 currencies with their minor digits", "[money]") {
  CHECK(FindCurrency("USD")->minor_digits == 2);
  CHECK(FindCurrency("EUR")->minor_digits == 2);
  CHECK(FindCurrency("JPY")->minor_digits == 0);
  CHECK(FindCurrency("KRW")->minor_digits == 0);
  CHECK(FindCurrency("BHD")->minor_digits == 3);
  CHECK(FindCurrency("KWD")->minor_digits == 3);
  CHECK(FindCurrency("CLF")->minor_digits == 4);
  CHECK_FALSE(FindCurrency("usd").has_value());  // Codes are upper case.
  CHECK_FALSE(FindCurrency("XYZ").has_value());
  CHECK_FALSE(FindCurrency("").has_value());
  CHECK_FALSE(FindCurrency("XAU").has_value());  // Metals have no minor units.
}

TEST_CASE("the currency table is sorted, without duplicates, for bisection", "[money]") {
  const auto currencies = Currencies();
  REQUIRE(currencies.size() > 150);
  for (size_t i = 1; i < currencies.size(); ++i) {
    INFO(currencies[i].code);
    CHECK(currencies[i - 1].code < currencies[i].code);
  }
  for (const Currency& currency : currencies) {
    INFO(currency.code);
    CHECK(currency.code.size() == 3);
    CHECK(FindCurrency(currency.code)->code == currency.code);
  }
}

TEST_CASE("decimal text parses into minor units of its currency", "[money]") {
  struct Case {
    std::string text;
    std::string currency;
    int64_t minor_units;
  };
  const Case cases[] = {
      {"49.00", "USD", 4900},
      {"49", "USD", 4900},
      {"49.5", "USD", 4950},
      {"0.01", "USD", 1},
      {"0", "USD", 0},
      {"-0", "USD", 0},
      {"-1.25", "EUR", -125},
      {"007.50", "USD", 750},
      {"1000", "JPY", 1000},
      {"1.234", "BHD", 1234},
      {"1.2", "BHD", 1200},
      {"0.0001", "CLF", 1},
      {"92233720368547758.07", "USD", std::numeric_limits<int64_t>::max()},
      {"9223372036854775807", "JPY", std::numeric_limits<int64_t>::max()},
  };
  for (const Case& c : cases) {
    INFO(c.text << " " << c.currency);
    auto parsed = ParseMinorUnits(c.text, c.currency);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == c.minor_units);
  }
}

TEST_CASE("money text that is not exact is rejected, never rounded", "[money]") {
  struct Case {
    std::string text;
    std::string currency;
    MoneyError error;
  };
  const Case cases[] = {
      {"49.00", "XYZ", MoneyError::kUnknownCurrency},
      {"49.00", "usd", MoneyError::kUnknownCurrency},
      {"1.234", "USD", MoneyError::kTooManyDecimals},
      {"49.000", "USD", MoneyError::kTooManyDecimals},
      {"100.5", "JPY", MoneyError::kTooManyDecimals},
      {"1.2345", "BHD", MoneyError::kTooManyDecimals},
      {"", "USD", MoneyError::kMalformed},
      {"-", "USD", MoneyError::kMalformed},
      {".5", "USD", MoneyError::kMalformed},
      {"5.", "USD", MoneyError::kMalformed},
      {"1.2.3", "USD", MoneyError::kMalformed},
      {"+1", "USD", MoneyError::kMalformed},
      {"--1", "USD", MoneyError::kMalformed},
      {" 1", "USD", MoneyError::kMalformed},
      {"1 ", "USD", MoneyError::kMalformed},
      {"1e3", "USD", MoneyError::kMalformed},
      {"1,000.00", "USD", MoneyError::kMalformed},
      {"abc", "USD", MoneyError::kMalformed},
      {"92233720368547758.08", "USD", MoneyError::kOverflow},
      {"9223372036854775808", "JPY", MoneyError::kOverflow},
      {"100000000000000000000", "USD", MoneyError::kOverflow},
      {"-9223372036854775808", "JPY", MoneyError::kOverflow},
  };
  for (const Case& c : cases) {
    INFO("'" << c.text << "' " << c.currency);
    auto parsed = ParseMinorUnits(c.text, c.currency);
    REQUIRE_FALSE(parsed.has_value());
    CHECK(MoneyErrorName(parsed.error()) == MoneyErrorName(c.error));
  }
}

TEST_CASE("money errors have stable names", "[money]") {
  CHECK(MoneyErrorName(MoneyError::kUnknownCurrency) == "unknown_currency");
  CHECK(MoneyErrorName(MoneyError::kMalformed) == "malformed");
  CHECK(MoneyErrorName(MoneyError::kTooManyDecimals) == "too_many_decimals");
  CHECK(MoneyErrorName(MoneyError::kOverflow) == "overflow");
}

TEST_CASE("minor units format with exactly the currency's digits", "[money]") {
  const Currency usd = *FindCurrency("USD");
  CHECK(FormatMinorUnits(4900, usd) == "49.00");
  CHECK(FormatMinorUnits(5, usd) == "0.05");
  CHECK(FormatMinorUnits(0, usd) == "0.00");
  CHECK(FormatMinorUnits(-5, usd) == "-0.05");
  CHECK(FormatMinorUnits(-12345, usd) == "-123.45");
  CHECK(FormatMinorUnits(std::numeric_limits<int64_t>::min(), usd) == "-92233720368547758.08");
  CHECK(FormatMinorUnits(1000, *FindCurrency("JPY")) == "1000");
  CHECK(FormatMinorUnits(1234, *FindCurrency("BHD")) == "1.234");
  CHECK(FormatMinorUnits(7, *FindCurrency("BHD")) == "0.007");

  auto formatted = FormatMoney(Money{14900, "USD"});
  REQUIRE(formatted.has_value());
  CHECK(*formatted == "149.00");
  auto unknown = FormatMoney(Money{1, "XYZ"});
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error() == MoneyError::kUnknownCurrency);
}

TEST_CASE("formatting then parsing gives back the amount, in every currency", "[money]") {
  const int64_t amounts[] = {0,
                             1,
                             -1,
                             9,
                             10,
                             99,
                             100,
                             12345,
                             -98765,
                             1000000,
                             4900,
                             123456789012345,
                             std::numeric_limits<int64_t>::max(),
                             std::numeric_limits<int64_t>::min() + 1};
  for (const Currency& currency : Currencies()) {
    for (int64_t amount : amounts) {
      const std::string text = FormatMinorUnits(amount, currency);
      INFO(currency.code << " " << text);
      auto parsed = ParseMinorUnits(text, currency.code);
      REQUIRE(parsed.has_value());
      CHECK(*parsed == amount);
    }
  }
}

TEST_CASE("ParseMoney carries the currency", "[money]") {
  auto money = ParseMoney("49.00", "USD");
  REQUIRE(money.has_value());
  CHECK(*money == Money{4900, "USD"});
  CHECK_FALSE(ParseMoney("49.001", "USD").has_value());
}

TEST_CASE("arithmetic on minor units is checked", "[money]") {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  CHECK(CheckedAdd(2, 3) == 5);
  CHECK_FALSE(CheckedAdd(kMax, 1).has_value());
  CHECK_FALSE(CheckedAdd(kMin, -1).has_value());
  CHECK(CheckedSubtract(2, 3) == -1);
  CHECK_FALSE(CheckedSubtract(kMin, 1).has_value());
  CHECK(CheckedMultiply(4900, 3) == 14700);
  CHECK_FALSE(CheckedMultiply(kMax / 2 + 1, 2).has_value());
  CHECK_FALSE(CheckedMultiply(kMin, -1).has_value());
}

TEST_CASE("arithmetic on money refuses to mix currencies", "[money]") {
  CHECK(Add(Money{100, "USD"}, Money{250, "USD"}) == Money{350, "USD"});
  CHECK(Subtract(Money{100, "USD"}, Money{250, "USD"}) == Money{-150, "USD"});
  CHECK_FALSE(Add(Money{100, "USD"}, Money{100, "EUR"}).has_value());
  CHECK_FALSE(Subtract(Money{100, "USD"}, Money{100, "EUR"}).has_value());
  CHECK_FALSE(Add(Money{std::numeric_limits<int64_t>::max(), "USD"}, Money{1, "USD"}).has_value());
}

}  // namespace
}  // namespace ledger::domain
