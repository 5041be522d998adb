#include "domain/money.h"

#include <algorithm>
#include <array>
#include <limits>

namespace ledger::domain {
namespace {

// ISO 4217 (list one, 2024), sorted by code so that FindCurrency can bisect; a test checks the
// order. Minor digits: 0 for yen-like currencies, 3 for the dinars of the Gulf, 4 for the
// Chilean and Uruguayan units of account.
constexpr std::array kCurrencies = {
    Currency{"AED", 2}, Currency{"AFN", 2}, Currency{"ALL", 2}, Currency{"AMD", 2},
    Currency{"ANG", 2}, Currency{"AOA", 2}, Currency{"ARS", 2}, Currency{"AUD", 2},
    Currency{"AWG", 2}, Currency{"AZN", 2}, Currency{"BAM", 2}, Currency{"BBD", 2},
    Currency{"BDT", 2}, Currency{"BGN", 2}, Currency{"BHD", 3}, Currency{"BIF", 0},
    Currency{"BMD", 2}, Currency{"BND", 2}, Currency{"BOB", 2}, Currency{"BOV", 2},
    Currency{"BRL", 2}, Currency{"BSD", 2}, Currency{"BTN", 2}, Currency{"BWP", 2},
    Currency{"BYN", 2}, Currency{"BZD", 2}, Currency{"CAD", 2}, Currency{"CDF", 2},
    Currency{"CHE", 2}, Currency{"CHF", 2}, Currency{"CHW", 2}, Currency{"CLF", 4},
    Currency{"CLP", 0}, Currency{"CNY", 2}, Currency{"COP", 2}, Currency{"COU", 2},
    Currency{"CRC", 2}, Currency{"CUP", 2}, Currency{"CVE", 2}, Currency{"CZK", 2},
    Currency{"DJF", 0}, Currency{"DKK", 2}, Currency{"DOP", 2}, Currency{"DZD", 2},
    Currency{"EGP", 2}, Currency{"ERN", 2}, Currency{"ETB", 2}, Currency{"EUR", 2},
    Currency{"FJD", 2}, Currency{"FKP", 2}, Currency{"GBP", 2}, Currency{"GEL", 2},
    Currency{"GHS", 2}, Currency{"GIP", 2}, Currency{"GMD", 2}, Currency{"GNF", 0},
    Currency{"GTQ", 2}, Currency{"GYD", 2}, Currency{"HKD", 2}, Currency{"HNL", 2},
    Currency{"HTG", 2}, Currency{"HUF", 2}, Currency{"IDR", 2}, Currency{"ILS", 2},
    Currency{"INR", 2}, Currency{"IQD", 3}, Currency{"IRR", 2}, Currency{"ISK", 0},
    Currency{"JMD", 2}, Currency{"JOD", 3}, Currency{"JPY", 0}, Currency{"KES", 2},
    Currency{"KGS", 2}, Currency{"KHR", 2}, Currency{"KMF", 0}, Currency{"KPW", 2},
    Currency{"KRW", 0}, Currency{"KWD", 3}, Currency{"KYD", 2}, Currency{"KZT", 2},
    Currency{"LAK", 2}, Currency{"LBP", 2}, Currency{"LKR", 2}, Currency{"LRD", 2},
    Currency{"LSL", 2}, Currency{"LYD", 3}, Currency{"MAD", 2}, Currency{"MDL", 2},
    Currency{"MGA", 2}, Currency{"MKD", 2}, Currency{"MMK", 2}, Currency{"MNT", 2},
    Currency{"MOP", 2}, Currency{"MRU", 2}, Currency{"MUR", 2}, Currency{"MVR", 2},
    Currency{"MWK", 2}, Currency{"MXN", 2}, Currency{"MXV", 2}, Currency{"MYR", 2},
    Currency{"MZN", 2}, Currency{"NAD", 2}, Currency{"NGN", 2}, Currency{"NIO", 2},
    Currency{"NOK", 2}, Currency{"NPR", 2}, Currency{"NZD", 2}, Currency{"OMR", 3},
    Currency{"PAB", 2}, Currency{"PEN", 2}, Currency{"PGK", 2}, Currency{"PHP", 2},
    Currency{"PKR", 2}, Currency{"PLN", 2}, Currency{"PYG", 0}, Currency{"QAR", 2},
    Currency{"RON", 2}, Currency{"RSD", 2}, Currency{"RUB", 2}, Currency{"RWF", 0},
    Currency{"SAR", 2}, Currency{"SBD", 2}, Currency{"SCR", 2}, Currency{"SDG", 2},
    Currency{"SEK", 2}, Currency{"SGD", 2}, Currency{"SHP", 2}, Currency{"SLE", 2},
    Currency{"SOS", 2}, Currency{"SRD", 2}, Currency{"SSP", 2}, Currency{"STN", 2},
    Currency{"SVC", 2}, Currency{"SYP", 2}, Currency{"SZL", 2}, Currency{"THB", 2},
    Currency{"TJS", 2}, Currency{"TMT", 2}, Currency{"TND", 3}, Currency{"TOP", 2},
    Currency{"TRY", 2}, Currency{"TTD", 2}, Currency{"TWD", 2}, Currency{"TZS", 2},
    Currency{"UAH", 2}, Currency{"UGX", 0}, Currency{"USD", 2}, Currency{"USN", 2},
    Currency{"UYI", 0}, Currency{"UYU", 2}, Currency{"UYW", 4}, Currency{"UZS", 2},
    Currency{"VED", 2}, Currency{"VES", 2}, Currency{"VND", 0}, Currency{"VUV", 0},
    Currency{"WST", 2}, Currency{"XAF", 0}, Currency{"XCD", 2}, Currency{"XOF", 0},
    Currency{"XPF", 0}, Currency{"YER", 2}, Currency{"ZAR", 2}, Currency{"ZMW", 2},
    Currency{"ZWG", 2}, Currency{"ZWL", 2},
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::span<const Currency> Currencies() { return kCurrencies; }

std::optional<Currency> FindCurrency(std::string_view code) {
  const auto it = std::lower_bound(
      kCurrencies.begin(), kCurrencies.end(), code,
      [](const Currency& currency, std::string_view wanted) { return currency.code < wanted; });
  if (it == kCurrencies.end() || it->code != code) return std::nullopt;
  return *it;
}

std::string_view MoneyErrorName(MoneyError error) {
  switch (error) {
    case MoneyError::kUnknownCurrency:
      return "unknown_currency";
    case MoneyError::kMalformed:
      return "malformed";
    case MoneyError::kTooManyDecimals:
      return "too_many_decimals";
    case MoneyError::kOverflow:
      return "overflow";
  }
  return "unknown_money_error";
}

Result<int64_t, MoneyError> ParseMinorUnits(std::string_view text, std::string_view currency_code) {
  const std::optional<Currency> currency = FindCurrency(currency_code);
  if (!currency) return Unexpected(MoneyError::kUnknownCurrency);

  const bool negative = !text.empty() && text.front() == '-';
  if (negative) text.remove_prefix(1);
  const size_t point = text.find('.');
  const std::string_view whole = text.substr(0, point);
  const std::string_view fraction =
      point == std::string_view::npos ? std::string_view() : text.substr(point + 1);
  const bool has_point = point != std::string_view::npos;
  if (whole.empty() || (has_point && fraction.empty())) return Unexpected(MoneyError::kMalformed);
  if (!std::all_of(whole.begin(), whole.end(), IsDigit) ||
      !std::all_of(fraction.begin(), fraction.end(), IsDigit)) {
    return Unexpected(MoneyError::kMalformed);  // Also catches a second '.'.
  }
  if (fraction.size() > static_cast<size_t>(currency->minor_digits)) {
    return Unexpected(MoneyError::kTooManyDecimals);
  }

  // Accumulates the magnitude digit by digit: whole digits, the fraction, then zero padding.
  int64_t magnitude = 0;
  auto push_digit = [&magnitude](char digit) {
    const std::optional<int64_t> shifted = CheckedMultiply(magnitude, 10);
    if (!shifted) return false;
    const std::optional<int64_t> added = CheckedAdd(*shifted, digit - '0');
    if (!added) return false;
    magnitude = *added;
    return true;
  };
  for (char digit : whole) {
    if (!push_digit(digit)) return Unexpected(MoneyError::kOverflow);
  }
  for (char digit : fraction) {
    if (!push_digit(digit)) return Unexpected(MoneyError::kOverflow);
  }
  for (size_t i = fraction.size(); i < static_cast<size_t>(currency->minor_digits); ++i) {
    if (!push_digit('0')) return Unexpected(MoneyError::kOverflow);
  }
  return negative ? -magnitude : magnitude;
}

Result<Money, MoneyError> ParseMoney(std::string_view text, std::string_view currency_code) {
  Result<int64_t, MoneyError> minor_units = ParseMinorUnits(text, currency_code);
  if (!minor_units) return Unexpected(minor_units.error());
  return Money{*minor_units, std::string(currency_code)};
}

std::string FormatMinorUnits(int64_t minor_units, const Currency& currency) {
  // The magnitude as unsigned so that INT64_MIN formats too.
  const uint64_t magnitude =
      minor_units < 0 ? 0 - static_cast<uint64_t>(minor_units) : static_cast<uint64_t>(minor_units);
  std::string digits = std::to_string(magnitude);
  const size_t minor_digits = static_cast<size_t>(currency.minor_digits);
  if (digits.size() <= minor_digits) digits.insert(0, minor_digits + 1 - digits.size(), '0');
  if (minor_digits > 0) digits.insert(digits.size() - minor_digits, 1, '.');
  if (minor_units < 0) digits.insert(0, 1, '-');
  return digits;
}

Result<std::string, MoneyError> FormatMoney(const Money& money) {
  const std::optional<Currency> currency = FindCurrency(money.currency);
  if (!currency) return Unexpected(MoneyError::kUnknownCurrency);
  return FormatMinorUnits(money.minor_units, *currency);
}

std::optional<int64_t> CheckedAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return std::nullopt;
  return sum;
}

std::optional<int64_t> CheckedSubtract(int64_t a, int64_t b) {
  int64_t difference = 0;
  if (__builtin_sub_overflow(a, b, &difference)) return std::nullopt;
  return difference;
}

std::optional<int64_t> CheckedMultiply(int64_t a, int64_t b) {
  int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}

std::optional<Money> Add(const Money& a, const Money& b) {
  if (a.currency != b.currency) return std::nullopt;
  const std::optional<int64_t> sum = CheckedAdd(a.minor_units, b.minor_units);
  if (!sum) return std::nullopt;
  return Money{*sum, a.currency};
}

std::optional<Money> Subtract(const Money& a, const Money& b) {
  if (a.currency != b.currency) return std::nullopt;
  const std::optional<int64_t> difference = CheckedSubtract(a.minor_units, b.minor_units);
  if (!difference) return std::nullopt;
  return Money{*difference, a.currency};
}

}  // namespace ledger::domain
