// Commands: what callers ask the ledger to record. Each carries the time it happened (the domain
// never reads a clock) and names its order, whose stream the command service loads before it
// calls Decide (domain/decide.h).
//
// Amounts are already integer minor units here: the API parses decimal strings with ParseMoney
// (domain/money.h) before it builds a command.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "domain/events.h"
#include "domain/limits.h"
#include "domain/rejection.h"

namespace ledger::domain {

// A payment processor reports a successful capture. May arrive before the order exists.
struct CapturePayment {
  std::string order_number{};
  std::string processor{};
  std::string reference{};  // The processor's transaction id.
  Money amount{};
  std::string card_type{};         // Optional.
  std::string card_last_digits{};  // Optional.
  int64_t captured_at_us = 0;
};

// Place an order from a basket, after its payment was captured (or for free).
struct PlaceOrder {
  // Given by the caller, or nullopt to generate `<PARTNER>-<basket id + 100000>`.
  std::optional<std::string> order_number{};
  std::string partner;    // Partner short code, e.g. "edx" (upper-cased in generated numbers).
  int64_t basket_id = 0;  // Required (> 0) only when the order number is generated.
  User user{};
  std::vector<Line> lines{};
  std::string shipping_method{};
  int64_t shipping_charge_minor = 0;
  Address billing_address{};
  int64_t total_minor = 0;
  std::string currency{};
  int64_t placed_at_us = 0;
  bool synchronous = false;  // Copied into PostCheckout: whether the caller waits for fulfillment.
};

// A fulfillment module fulfilled a line.
struct RecordLineFulfilled {
  std::string order_number{};
  std::string line_id{};
  std::string module{};
  std::string external_reference{};  // Optional: the entitlement uuid, ...
  std::vector<std::string> codes{};  // Optional: enrollment codes minted.
  int64_t fulfilled_at_us = 0;
};

// When automatic retries of a failed fulfillment happen: the wait before automatic retry n (from
// 1; after attempt n when nobody retried by hand) is first_delay_us x multiplier^(n-1), at most
// delay_max_us; there is none after retries_max. Manual retries neither use up nor advance it. The
// default is the original's: 2^(n-1) seconds, 11 retries (about 34 min).
struct RetrySchedule {
  int64_t first_delay_us = kFirstRetryDelayUs;
  int64_t multiplier = 2;
  uint32_t retries_max = kAutomaticRetriesMax;
  int64_t delay_max_us = 3'600'000'000;

  friend bool operator==(const RetrySchedule&, const RetrySchedule&) = default;
};

// A fulfillment module failed to fulfill a line. The domain numbers the attempt and schedules
// the next automatic retry by `retry` when `retryable`.
struct RecordFulfillmentFailed {
  std::string order_number{};
  std::string line_id{};
  std::string module{};
  FailureKind kind = FailureKind::kUnknown;
  std::string message{};  // What the partner system said, for support to read.
  bool retryable = false;
  int64_t failed_at_us = 0;
  RetrySchedule retry{};
};

// Someone (staff, the owner, or the process manager's backoff) asks to fulfill lines again.
struct RequestFulfillmentRetry {
  std::string order_number{};
  std::string requested_by{};
  std::string reason{};
  // The lines to retry; empty means every fulfillable line (never Complete or Revoked ones).
  std::vector<std::string> line_ids{};
  bool automatic = false;
  int64_t requested_at_us = 0;
};

// A refund revoked a line through its module.
struct RecordLineRevoked {
  std::string order_number{};
  std::string line_id{};
  std::string module{};
  std::string refund_reference{};
  int64_t revoked_at_us = 0;
};

// A module failed to revoke a line. The domain numbers the attempt and, when `retryable`,
// schedules an automatic retry by `retry` (the revocation is asked for again when it is due).
struct RecordRevocationFailed {
  std::string order_number{};
  std::string line_id{};
  std::string module{};
  FailureKind kind = FailureKind::kUnknown;
  std::string message{};
  std::string refund_reference{};
  int64_t failed_at_us = 0;
  bool retryable = false;
  RetrySchedule retry{};
};

// Ops ask to revoke a fulfilled line (on refund); the process manager makes the call.
struct RequestRevocation {
  std::string order_number{};
  std::string line_id{};
  std::string refund_reference{};
  std::string requested_by{};
  int64_t requested_at_us = 0;
  bool automatic = false;  // The process manager's retry of a failed revocation.
};

using Command = std::variant<CapturePayment, PlaceOrder, RecordLineFulfilled,
                             RecordFulfillmentFailed, RequestFulfillmentRetry, RecordLineRevoked,
                             RecordRevocationFailed, RequestRevocation>;

// "CapturePayment", "PlaceOrder", ...
std::string_view CommandTypeName(const Command& command);

// Whether `order_number` may name an order: 1..kOrderNumberBytesMax of [A-Za-z0-9._-]. A new
// order may not be "." or ".." (Decide refuses them for captures and placements).
bool IsValidOrderNumber(std::string_view order_number);

// The original's order number: upper-cased partner short code, '-', basket id + 100000
// ("edx", 9 -> "EDX-100009"). kInvalidOrderNumber when the partner is empty, too long or not
// alphanumeric, or the basket id is not positive or overflows.
Result<std::string, Rejection> GenerateOrderNumber(std::string_view partner, int64_t basket_id);

// kInvalidOrderNumber (with a detail saying why) unless IsValidOrderNumber(order_number).
std::optional<Rejection> CheckOrderNumber(std::string_view order_number);

// The order a command is about: its order number, generated for a PlaceOrder without one.
// The command service calls this to know which stream to load. kInvalidOrderNumber when the
// number is malformed or cannot be generated.
Result<std::string, Rejection> ResolveOrderNumber(const PlaceOrder& command);
Result<std::string, Rejection> ResolveOrderNumber(const Command& command);

}  // namespace ledger::domain
