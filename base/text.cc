#include "base/text.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace ledger {

std::optional<uint64_t> ParseDecimal(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

std::optional<int64_t> ParseRfc3339(std::string_view text) {
  auto digits = [&text](size_t at, size_t count) -> std::optional<int> {
    if (at + count > text.size()) return std::nullopt;
    int value = 0;
    for (size_t i = at; i < at + count; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
  auto hour = digits(11, 2), minute = digits(14, 2), second = digits(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || text.size() < 20) {
    return std::nullopt;
  }
  if (text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') || text[13] != ':' ||
      text[16] != ':' || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year(*year),
                                         std::chrono::month(static_cast<unsigned>(*month)),
                                         std::chrono::day(static_cast<unsigned>(*day))};
  if (!date.ok()) return std::nullopt;
  size_t at = 19;
  int64_t fraction_us = 0;
  if (text[at] == '.') {
    ++at;
    int64_t scale = 100'000;
    const size_t start = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      fraction_us += (text[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == start) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z') && at + 1 == text.size()) {
    offset_s = 0;
  } else if (at + 6 == text.size() && (text[at] == '+' || text[at] == '-') && text[at + 3] == ':') {
    auto offset_h = digits(at + 1, 2), offset_m = digits(at + 4, 2);
    if (!offset_h || !offset_m || *offset_h > 23 || *offset_m > 59) return std::nullopt;
    offset_s = (*offset_h * 3600 + *offset_m * 60) * (text[at] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  // A leap second is the last second of a UTC day (RFC 3339, 5.7): 23:59:60 UTC, whatever the
  // offset says the local time is.
  if (*second == 60) {
    const int64_t utc_minute = ((*hour * 60 + *minute - offset_s / 60) % 1440 + 1440) % 1440;
    if (utc_minute != 23 * 60 + 59) return std::nullopt;
  }
  const int64_t days = std::chrono::sys_days(date).time_since_epoch().count();
  const int64_t seconds = days * 86'400 + *hour * 3600 + *minute * 60 + *second - offset_s;
  return seconds * 1'000'000 + fraction_us;
}

std::string FormatRfc3339(int64_t time_us) {
  int64_t seconds = time_us / 1'000'000;
  int64_t micros = time_us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --seconds;
  }
  const auto as_time = static_cast<std::time_t>(seconds);
  std::tm parts{};
  ::gmtime_r(&as_time, &parts);
  char text[48];
  const size_t length = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &parts);
  std::snprintf(text + length, sizeof(text) - length, ".%06lldZ", static_cast<long long>(micros));
  return text;
}

}  // namespace ledger
