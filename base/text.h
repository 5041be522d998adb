// Text forms shared by the API, the command line and the audit tools: decimal numbers and
// RFC 3339 times.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ledger {

// A decimal number of 1 to 19 digits and nothing else ("0", "42"); nullopt otherwise (signs,
// spaces, empty, too long).
std::optional<uint64_t> ParseDecimal(std::string_view text);

// "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" as microseconds since the Unix epoch
// (fraction digits beyond microseconds ignored); nullopt for anything else, invalid dates
// included.
std::optional<int64_t> ParseRfc3339(std::string_view text);

// "2026-11-22T10:00:00.000000Z": UTC with microseconds.
std::string FormatRfc3339(int64_t time_us);

}  // namespace ledger
