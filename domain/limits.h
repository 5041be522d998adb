// Limits on everything an order holds, so that every loop in the domain is bounded and every sum
// of amounts fits in int64 (kCapturesMax x kAmountMinorMax and kLinesMax x kAmountMinorMax stay
// far below 2^63). A command beyond a limit is rejected with RejectionCode::kLimitExceeded.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ledger::domain {

// 10^15 minor units: ten trillion dollars, a billion dinars of three digits.
inline constexpr int64_t kAmountMinorMax = 1'000'000'000'000'000;
inline constexpr int64_t kQuantityMax = 100'000;
inline constexpr size_t kLinesMax = 1'000;
inline constexpr size_t kAttributesPerLineMax = 64;
// Enrollment codes: a line's codes are one LineFulfilled event (32 bytes each once encoded), and
// the order's are in its status row, so they are capped per order at placement: 10,000 codes
// are about 320 KB, well inside the log's 1 MiB per event.
inline constexpr size_t kCodesPerLineMax = 10'000;
inline constexpr size_t kCodesPerOrderMax = 10'000;
inline constexpr size_t kCapturesMax = 100;
inline constexpr uint32_t kAttemptsMax = 1'000;
// Bytes of any one text field (UTF-8).
inline constexpr size_t kTextBytesMax = 4'096;
// Order numbers are also payment gateway references and stream names: short and plain.
inline constexpr size_t kOrderNumberBytesMax = 64;
inline constexpr size_t kPartnerBytesMax = 32;
// Time bounds, microseconds since the Unix epoch: 0 .. the end of the year 9999.
inline constexpr int64_t kTimeUsMax = 253'402'300'799'999'999;

// Automatic fulfillment retries, as the original: 2^n seconds after the (n+1)-th failed attempt,
// 11 retries (about half an hour), then a human retries by hand.
inline constexpr uint32_t kAutomaticRetriesMax = 11;
inline constexpr int64_t kFirstRetryDelayUs = 1'000'000;

}  // namespace ledger::domain
