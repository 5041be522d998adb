#include "domain/rejection.h"

#include <array>

namespace ledger::domain {
namespace {

constexpr std::array kCodes = {
    RejectionCode::kInvalidOrderNumber,    RejectionCode::kMissingField,
    RejectionCode::kInvalidText,           RejectionCode::kLimitExceeded,
    RejectionCode::kInvalidTime,           RejectionCode::kUnknownCurrency,
    RejectionCode::kInvalidFailureKind,    RejectionCode::kCaptureNotPositive,
    RejectionCode::kEmptyBasket,           RejectionCode::kDuplicateLineId,
    RejectionCode::kNonPositiveQuantity,   RejectionCode::kNegativeAmount,
    RejectionCode::kAmountOverflow,        RejectionCode::kTotalMismatch,
    RejectionCode::kStreamMismatch,        RejectionCode::kCaptureReferenceReused,
    RejectionCode::kDuplicateOrderAttempt, RejectionCode::kPaymentMissing,
    RejectionCode::kCurrencyMismatch,      RejectionCode::kPaymentShort,
    RejectionCode::kOrderNotFound,         RejectionCode::kUnknownLine,
    RejectionCode::kLineAlreadyComplete,   RejectionCode::kLineRevoked,
    RejectionCode::kLineNotFulfilled,      RejectionCode::kNothingToFulfill,
    RejectionCode::kLineNotFulfillable,    RejectionCode::kRevocationPending,
};

struct Description {
  std::string_view name;
  std::string_view message;
};

Description Describe(RejectionCode code) {
  switch (code) {
    case RejectionCode::kInvalidOrderNumber:
      return {"invalid_order_number", "the order number is missing or malformed"};
    case RejectionCode::kMissingField:
      return {"missing_field", "a required field is empty"};
    case RejectionCode::kInvalidText:
      return {"invalid_text",
              "a text is not valid UTF-8, or an identifier holds a control character"};
    case RejectionCode::kLimitExceeded:
      return {"limit_exceeded", "a size or count is beyond the ledger's limits"};
    case RejectionCode::kInvalidTime:
      return {"invalid_time", "a time is outside the representable range"};
    case RejectionCode::kUnknownCurrency:
      return {"unknown_currency", "the currency is not an ISO 4217 code"};
    case RejectionCode::kInvalidFailureKind:
      return {"invalid_failure_kind", "the failure kind is not one the ledger knows"};
    case RejectionCode::kCaptureNotPositive:
      return {"capture_not_positive", "a captured amount must be greater than zero"};
    case RejectionCode::kEmptyBasket:
      return {"empty_basket", "an order needs at least one line"};
    case RejectionCode::kDuplicateLineId:
      return {"duplicate_line_id", "two lines share one line id"};
    case RejectionCode::kNonPositiveQuantity:
      return {"non_positive_quantity", "a line quantity must be greater than zero"};
    case RejectionCode::kNegativeAmount:
      return {"negative_amount", "prices, shipping and totals cannot be negative"};
    case RejectionCode::kAmountOverflow:
      return {"amount_overflow", "an amount is too large"};
    case RejectionCode::kTotalMismatch:
      return {"total_mismatch", "the total is not the sum of the lines plus shipping"};
    case RejectionCode::kStreamMismatch:
      return {"stream_mismatch", "the command names another order than the stream holds"};
    case RejectionCode::kCaptureReferenceReused:
      return {"capture_reference_reused",
              "this processor reference was captured before with other content"};
    case RejectionCode::kDuplicateOrderAttempt:
      return {"duplicate_order_attempt", "an order with this number exists with other content"};
    case RejectionCode::kPaymentMissing:
      return {"payment_missing", "no payment was captured for the order"};
    case RejectionCode::kCurrencyMismatch:
      return {"currency_mismatch", "no payment was captured in the order's currency"};
    case RejectionCode::kPaymentShort:
      return {"payment_short", "captured payments do not cover the order total"};
    case RejectionCode::kOrderNotFound:
      return {"order_not_found", "the order was never placed"};
    case RejectionCode::kUnknownLine:
      return {"unknown_line", "the order has no line with this id"};
    case RejectionCode::kLineAlreadyComplete:
      return {"line_already_complete", "the line is complete and is never fulfilled again"};
    case RejectionCode::kLineRevoked:
      return {"line_revoked", "the line was revoked"};
    case RejectionCode::kLineNotFulfilled:
      return {"line_not_fulfilled", "the line was never fulfilled, so it cannot be revoked"};
    case RejectionCode::kNothingToFulfill:
      return {"nothing_to_fulfill", "no line of the order is fulfillable"};
    case RejectionCode::kLineNotFulfillable:
      return {"line_not_fulfillable", "the line is complete or revoked"};
    case RejectionCode::kRevocationPending:
      return {"revocation_pending",
              "a revocation of the line is pending with another refund reference"};
  }
  return {"unknown_rejection", "unknown rejection"};
}

}  // namespace

std::span<const RejectionCode> AllRejectionCodes() { return kCodes; }

std::string_view RejectionName(RejectionCode code) { return Describe(code).name; }

std::string_view RejectionMessage(RejectionCode code) { return Describe(code).message; }

std::string Rejection::ToString() const {
  std::string text(RejectionName(code));
  text += " (";
  text += std::to_string(static_cast<unsigned>(code));
  text += "): ";
  text += RejectionMessage(code);
  if (!detail.empty()) {
    text += ": ";
    text += detail;
  }
  return text;
}

}  // namespace ledger::domain
