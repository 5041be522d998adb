// Rejection: why the domain refused a command. A business answer, returned as a value (never
// thrown), with a stable number and a stable snake_case name that API answers, logs and metrics
// carry. The numbers are part of the API: never renumber, never reuse; add at the end.
//
// Precedence: when a command breaks several rules, the rejection is the first one that applies,
// in the order of the enumeration below. Rules about the command alone come first (a malformed
// command is rejected the same way whatever the stream holds), then rules about the stream's
// state. Idempotent repeats (the same capture, the same placement, fulfilling a Complete line,
// revoking a Revoked line) are answered, with no new event, just before the state rules that
// would otherwise reject them. kLimitExceeded is also given, last, when the state is full (too
// many captures, too many attempts on a line).
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ledger::domain {

// Never renumber: stable codes in API answers and logs.
enum class RejectionCode : uint16_t {
  // --- The command alone ---
  // Order number empty, too long or not [A-Za-z0-9._-], or "." or ".." for a capture or a
  // placement; or none given and none can be
  // generated (no partner short code, no positive basket id).
  kInvalidOrderNumber = 1,
  // A required field is empty (processor, reference, username, line id, module, ...).
  kMissingField = 2,
  // A text field is not valid UTF-8, or an identifier holds a control character.
  kInvalidText = 3,
  // A text, a list or a quantity beyond domain/limits.h; also the state's limits (see above).
  kLimitExceeded = 4,
  // A time outside 0 .. kTimeUsMax.
  kInvalidTime = 5,
  // A currency ISO 4217 does not have.
  kUnknownCurrency = 6,
  // A FailureKind outside the enumeration.
  kInvalidFailureKind = 7,
  // A payment capture of zero or less.
  kCaptureNotPositive = 8,
  // A placement without lines.
  kEmptyBasket = 9,
  // Two basket lines with one line id.
  kDuplicateLineId = 10,
  // A line quantity of zero or less.
  kNonPositiveQuantity = 11,
  // A negative unit price, shipping charge or total.
  kNegativeAmount = 12,
  // An amount, a line amount (quantity x unit price) or a sum beyond kAmountMinorMax.
  kAmountOverflow = 13,
  // The total is not the sum of quantity x unit price plus shipping.
  kTotalMismatch = 14,
  // --- The command against the stream's state ---
  // The command names another order than the stream holds (a bug in the caller).
  kStreamMismatch = 15,
  // A capture with a known (processor, reference) but other content.
  kCaptureReferenceReused = 16,
  // The order number exists with other content.
  kDuplicateOrderAttempt = 17,
  // A non-free order without any captured payment.
  kPaymentMissing = 18,
  // Captured payments exist, none in the order's currency.
  kCurrencyMismatch = 19,
  // Captured payments in the order's currency do not cover its total.
  kPaymentShort = 20,
  // A fulfillment, retry or revocation command for an order that was never placed.
  kOrderNotFound = 21,
  // A line id the order does not have.
  kUnknownLine = 22,
  // A failure reported for a Complete line: it is never fulfilled again.
  kLineAlreadyComplete = 23,
  // Fulfilling or failing a Revoked (or Revocation Error) line, or failing to revoke a Revoked
  // line.
  kLineRevoked = 24,
  // Revoking, or failing to revoke, a line that was never fulfilled.
  kLineNotFulfilled = 25,
  // A retry of every fulfillable line when no line is fulfillable (the original's 406).
  kNothingToFulfill = 26,
  // A retry naming a line that is Complete, Revoked or Revocation Error.
  kLineNotFulfillable = 27,
  // A revocation asked for with another refund reference while one is pending for the line.
  kRevocationPending = 28,
};

// Every code, in order of precedence.
std::span<const RejectionCode> AllRejectionCodes();

// Stable snake_case name, e.g. "payment_short".
std::string_view RejectionName(RejectionCode code);
// One sentence for humans, e.g. "captured payments do not cover the order total".
std::string_view RejectionMessage(RejectionCode code);

struct Rejection {
  RejectionCode code = RejectionCode::kMissingField;
  // What exactly: the field, the line id, the amounts involved. For humans; never parsed.
  std::string detail;

  // "payment_short (20): captured payments do not cover the order total: <detail>".
  std::string ToString() const;

  friend bool operator==(const Rejection&, const Rejection&) = default;
};

}  // namespace ledger::domain
