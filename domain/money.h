// Money: an amount in integer minor units of an ISO 4217 currency (cents for USD, yen for JPY,
// fils for BHD). Amounts never pass through floating point: they cross the API as decimal
// strings ("49.00") and are parsed here, digit by digit, against the currency's number of minor
// digits. Arithmetic is checked: an overflow is a value, never undefined behaviour.
//
// Thread safety: plain values and pure functions; the currency table is immutable.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace ledger::domain {

// One row of ISO 4217: the alphabetic code and how many digits follow the decimal point.
struct Currency {
  std::string_view code{};
  int minor_digits = 2;
};

// Every active ISO 4217 currency, sorted by code. Funds and precious metals without minor units
// (XAU, XDR, ...) are left out: nobody pays for a course seat in troy ounces.
std::span<const Currency> Currencies();

// The currency with this exact (upper case) code; nullopt when ISO 4217 has none.
std::optional<Currency> FindCurrency(std::string_view code);

struct Money {
  int64_t minor_units = 0;
  std::string currency{};  // ISO 4217 code, e.g. "USD".

  friend bool operator==(const Money&, const Money&) = default;
};

// Why a text could not become money. Stable codes: they reach API answers. Never renumber.
enum class MoneyError : uint8_t {
  kUnknownCurrency = 1,
  // Not `-?DIGITS(.DIGITS)?`: empty, spaces, '+', exponent, a lone '.', several '.', ...
  kMalformed = 2,
  // More digits after the point than the currency has ("1.234" USD, "100.5" JPY).
  kTooManyDecimals = 3,
  // The amount does not fit in int64 minor units.
  kOverflow = 4,
};

// "unknown_currency", "malformed", "too_many_decimals", "overflow".
std::string_view MoneyErrorName(MoneyError error);

// Parses a decimal text into minor units of `currency_code`. Accepts an optional leading '-',
// at least one integer digit, and an optional '.' followed by 1..minor_digits digits (fewer
// digits are padded: "49.5" USD is 4950). Anything else is an error; nothing is rounded.
Result<int64_t, MoneyError> ParseMinorUnits(std::string_view text, std::string_view currency_code);

// ParseMinorUnits, packaged with its currency.
Result<Money, MoneyError> ParseMoney(std::string_view text, std::string_view currency_code);

// The decimal text of an amount: exactly minor_digits digits after the point, none (and no point)
// for a zero-digit currency, '-' for negatives. ParseMinorUnits(FormatMinorUnits(x, c)) == x.
std::string FormatMinorUnits(int64_t minor_units, const Currency& currency);

// FormatMinorUnits for a Money; kUnknownCurrency when its currency is not in the table.
Result<std::string, MoneyError> FormatMoney(const Money& money);

// Checked arithmetic on minor units: nullopt instead of overflow.
std::optional<int64_t> CheckedAdd(int64_t a, int64_t b);
std::optional<int64_t> CheckedSubtract(int64_t a, int64_t b);
std::optional<int64_t> CheckedMultiply(int64_t a, int64_t b);

// Checked arithmetic on Money: nullopt on overflow or when the currencies differ.
std::optional<Money> Add(const Money& a, const Money& b);
std::optional<Money> Subtract(const Money& a, const Money& b);

}  // namespace ledger::domain
