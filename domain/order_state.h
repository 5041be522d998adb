// OrderState: what an order's stream says, folded from its events by Evolve. Every reader of the
// log (the command service, projections, auditors, the process manager) folds with this one
// function, so they all agree on what an order is.
//
// Evolve applies facts; it does not judge them. Decide (domain/decide.h) only produces events
// that apply; an event that cannot apply (a line the order does not have, a transition the rules
// forbid, a second OrderCreated, ...) was written by a bug or edited in by hand. The rules for
// what applies live in one place, TryEvolve, which reports such an event as a FoldError: readers
// of stored logs use it and turn the error into a corruption report. Evolve is TryEvolve with an
// assertion, for the command path, where Decide's own events failing to apply is a bug.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "domain/events.h"
#include "domain/status.h"

namespace ledger::domain {

// One captured payment, as recorded.
struct CaptureRecord {
  std::string processor{};
  std::string reference{};
  Money amount{};
  std::string card_type{};
  std::string card_last_digits{};
  int64_t captured_at_us = 0;
  bool excess = false;

  friend bool operator==(const CaptureRecord&, const CaptureRecord&) = default;
};

// One basket line and how far its fulfillment (and revocation) got.
struct LineState {
  Line line{};
  LineStatus status = LineStatus::kOpen;
  // Fulfillment attempts recorded (fulfilled or failed); the next attempt is attempts + 1.
  uint32_t attempts = 0;
  // Automatic retries requested (FulfillmentRetryRequested with `automatic`): the retry budget
  // (RetrySchedule::retries_max) counts these, so that manual retries never use it up.
  uint32_t automatic_retries = 0;
  // The module that last reported on the line.
  std::string module{};
  // The last failure, fulfillment or revocation; kept after a later success, for support.
  std::optional<FailureKind> last_error_kind{};
  std::string last_error_message{};
  // When the process manager retries automatically: the fulfillment of a failed line, or the
  // revocation of a Revocation Error line; 0 when no retry is scheduled.
  int64_t next_retry_at_us = 0;
  // A retry was requested and no outcome has been recorded since.
  bool retry_requested = false;
  // A revocation was requested (RevocationRequested) and no outcome has been recorded since;
  // `refund_reference` is the request's meanwhile.
  bool revocation_requested = false;
  // Revocation attempts recorded as failed (RevocationFailed); the next one's number is this + 1.
  uint32_t revocation_failures = 0;
  // Automatic revocation retries requested (RevocationRequested with `automatic`): the budget
  // and the growing delay of a failed revocation count these, as automatic_retries does above.
  uint32_t automatic_revocation_retries = 0;
  std::string external_reference{};
  std::vector<std::string> codes{};
  std::string refund_reference{};

  friend bool operator==(const LineState&, const LineState&) = default;
};

// "line <id> is <status>", for rejections and fold errors that name a line.
std::string LineDetail(const LineState& line);

// The number of the line's next failed revocation attempt: revocation_failures + 1, stopping at
// the largest number (revocations are never capped).
uint32_t NextRevocationAttempt(const LineState& line);

// Amounts in the order's currency; all zero until the order is placed.
struct OrderAmounts {
  int64_t total_minor = 0;
  // Every capture in the order's currency, before or after placement.
  int64_t captured_minor = 0;
  // What the customer still owes: total - captured when positive. Zero for any placed order,
  // since placement requires the total to be covered; kept so that readers need not know that.
  int64_t due_minor = 0;
  // Money to hand back: captured - total when positive (excess captures, overpayment).
  int64_t overpaid_minor = 0;
  // Quantity x unit price of every revoked line (a refund covers whole lines, not shipping).
  int64_t refunded_minor = 0;

  friend bool operator==(const OrderAmounts&, const OrderAmounts&) = default;
};

struct OrderState {
  // Empty until the first event; then the order number every event of the stream carries.
  std::string order_number{};
  // Events folded so far: the stream's next version.
  uint64_t events_applied = 0;
  std::vector<CaptureRecord> captures{};
  // The placement, once OrderCreated is folded. Lines are in `lines` below, not here.
  std::optional<OrderCreated> placement{};
  bool post_checkout_requested = false;
  bool post_checkout_synchronous = false;
  std::vector<LineState> lines{};
  // Meaningful once placed.
  OrderStatus status = OrderStatus::kOpen;
  OrderAmounts amounts{};
  uint32_t retry_requests = 0;

  bool placed() const { return placement.has_value(); }
  // The line with this id, or nullptr.
  const LineState* FindLine(std::string_view line_id) const;

  friend bool operator==(const OrderState&, const OrderState&) = default;
};

// Why an event cannot apply to an order's state. A value: readers of a stored log report it (as
// corruption, naming the record's position), they never crash on it.
struct FoldError {
  // One sentence for humans, naming the event type, its version in the stream, the order number
  // and, where one is involved, the line: "LineFulfilled at version 3 of order EDX-100009 cannot
  // apply: the order has no line 9". Never parsed.
  std::string problem{};

  friend bool operator==(const FoldError&, const FoldError&) = default;
};

// Applies one event to `state` (the empty state or one TryEvolve returned). A FoldError when the
// event cannot apply: another order's number, a second OrderCreated, a line event before
// OrderCreated or for a line the order does not have, a forbidden line or order transition, an
// attempt skipped or repeated, more than kCapturesMax captures, or amounts whose sums overflow.
Result<OrderState, FoldError> TryEvolve(OrderState state, const Event& event);

// TryEvolve for events Decide produced: asserts that the event applies (see the header comment).
// The same state as TryEvolve for every event that applies.
OrderState Evolve(OrderState state, const Event& event);

// Folds events from the empty state with TryEvolve; the first FoldError stops the fold.
Result<OrderState, FoldError> TryFold(std::span<const Event> events);

// Folds events from the empty state with Evolve.
OrderState Fold(std::span<const Event> events);

// The placement content as OrderCreated carries it (lines included): what a repeated PlaceOrder
// is compared with. nullopt before placement.
std::optional<OrderCreated> PlacedOrder(const OrderState& state);

// The sum of every capture in `currency` (placed or not, excess or not). TryEvolve keeps every
// such sum within int64 for the states it returns.
int64_t CapturedMinor(const OrderState& state, std::string_view currency);

// The captures of a placed order in currencies other than its own, summed per currency, in the
// order each currency was first captured; empty before placement. OrderAmounts counts the
// order's currency only, and placement never counts these towards the total, so all of it is
// money to hand back. Computed from the captures rather than kept in OrderAmounts, so that
// snapshots written before it existed give the same answer. A currency appears twice only in a
// state whose sum in it would overflow int64, which TryEvolve never returns.
std::vector<Money> CapturedInOtherCurrencies(const OrderState& state);

// The ids of the lines a fulfillment run may touch: Open or in a fulfillment error, in basket
// order. Never Complete, Revoked or Revocation Error lines. Empty before placement.
std::vector<std::string> FulfillableLines(const OrderState& state);

// The fulfillable lines whose automatic retry is due at `now_us`.
std::vector<std::string> LinesDueForRetry(const OrderState& state, int64_t now_us);

}  // namespace ledger::domain
