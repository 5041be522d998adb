#include "domain/order_state.h"

#include <algorithm>
#include <type_traits>

#include "base/assert.h"
#include "domain/limits.h"

namespace ledger::domain {
namespace {

// Sums that Decide's limits keep far from overflow; an overflow here means a corrupt log.
int64_t AddOrDie(int64_t a, int64_t b) {
  const std::optional<int64_t> sum = CheckedAdd(a, b);
  LEDGER_ASSERT(sum.has_value(), "amount overflow while folding an order");
  return *sum;
}

int64_t LineAmountOrDie(const Line& line) {
  const std::optional<int64_t> amount = CheckedMultiply(line.quantity, line.unit_price_minor);
  LEDGER_ASSERT(amount.has_value(), "line amount overflow while folding an order");
  return *amount;
}

LineState& LineOrDie(OrderState& state, const std::string& line_id) {
  LEDGER_ASSERT(state.placed(), "a line event before OrderCreated");
  auto it = std::find_if(state.lines.begin(), state.lines.end(),
                         [&](const LineState& line) { return line.line.line_id == line_id; });
  LEDGER_ASSERT(it != state.lines.end(), "a line event for a line the order does not have");
  return *it;
}

void SetLineStatus(LineState& line, LineStatus status) {
  LEDGER_ASSERT(IsLineTransitionAllowed(line.status, status), "a forbidden line transition");
  line.status = status;
}

void RecomputeAmounts(OrderState& state) {
  if (!state.placed()) return;
  OrderAmounts& amounts = state.amounts;
  amounts.total_minor = state.placement->total_minor;
  amounts.captured_minor = CapturedMinor(state, state.placement->currency);
  amounts.due_minor = std::max<int64_t>(0, amounts.total_minor - amounts.captured_minor);
  amounts.overpaid_minor = std::max<int64_t>(0, amounts.captured_minor - amounts.total_minor);
  amounts.refunded_minor = 0;
  for (const LineState& line : state.lines) {
    if (line.status == LineStatus::kRevoked) {
      amounts.refunded_minor = AddOrDie(amounts.refunded_minor, LineAmountOrDie(line.line));
    }
  }
}

void Apply(OrderState& state, const PaymentCaptured& e) {
  LEDGER_ASSERT(state.captures.size() < kCapturesMax, "more captures than kCapturesMax");
  state.captures.push_back(CaptureRecord{e.processor, e.reference, e.amount, e.card_type,
                                         e.card_last_digits, e.captured_at_us, e.excess});
}

void Apply(OrderState& state, const OrderCreated& e) {
  LEDGER_ASSERT(!state.placed(), "a second OrderCreated in one stream");
  state.placement = e;
  state.placement->lines.clear();  // They live in state.lines, with their progress.
  state.lines.clear();
  for (const Line& line : e.lines) {
    LineState line_state;
    line_state.line = line;
    state.lines.push_back(std::move(line_state));
  }
}

void Apply(OrderState& state, const PostCheckout& e) {
  LEDGER_ASSERT(state.placed(), "PostCheckout before OrderCreated");
  state.post_checkout_requested = true;
  state.post_checkout_synchronous = e.synchronous;
}

void Apply(OrderState& state, const LineFulfilled& e) {
  LineState& line = LineOrDie(state, e.line_id);
  LEDGER_ASSERT(IsFulfillable(line.status), "LineFulfilled for a line that is not fulfillable");
  LEDGER_ASSERT(e.attempt == line.attempts + 1, "LineFulfilled skips or repeats an attempt");
  SetLineStatus(line, LineStatus::kComplete);
  line.attempts = e.attempt;
  line.module = e.module;
  line.external_reference = e.external_reference;
  line.codes = e.codes;
  line.next_retry_at_us = 0;
  line.retry_requested = false;
}

void Apply(OrderState& state, const FulfillmentFailed& e) {
  LineState& line = LineOrDie(state, e.line_id);
  LEDGER_ASSERT(IsFulfillable(line.status), "FulfillmentFailed for a line that is not fulfillable");
  LEDGER_ASSERT(e.attempt == line.attempts + 1, "FulfillmentFailed skips or repeats an attempt");
  SetLineStatus(line, LineStatusForFailure(e.kind));
  line.attempts = e.attempt;
  line.module = e.module;
  line.last_error_kind = e.kind;
  line.last_error_message = e.message;
  line.next_retry_at_us = e.next_retry_at_us;
  line.retry_requested = false;
}

void Apply(OrderState& state, const FulfillmentRetryRequested& e) {
  for (const std::string& line_id : e.line_ids) {
    LineState& line = LineOrDie(state, line_id);
    LEDGER_ASSERT(IsFulfillable(line.status), "a retry of a line that is not fulfillable");
    line.retry_requested = true;
    line.next_retry_at_us = 0;  // The scheduled retry, if any, is this one.
  }
  ++state.retry_requests;
}

void Apply(OrderState& state, const LineRevoked& e) {
  LineState& line = LineOrDie(state, e.line_id);
  SetLineStatus(line, LineStatus::kRevoked);
  line.refund_reference = e.refund_reference;
}

void Apply(OrderState& state, const RevocationFailed& e) {
  LineState& line = LineOrDie(state, e.line_id);
  LEDGER_ASSERT(line.status != LineStatus::kRevoked, "RevocationFailed for a revoked line");
  SetLineStatus(line, LineStatus::kRevocationError);
  line.last_error_kind = e.kind;
  line.last_error_message = e.message;
  line.refund_reference = e.refund_reference;
}

}  // namespace

const LineState* OrderState::FindLine(std::string_view line_id) const {
  auto it = std::find_if(lines.begin(), lines.end(),
                         [&](const LineState& line) { return line.line.line_id == line_id; });
  return it == lines.end() ? nullptr : &*it;
}

OrderState Evolve(OrderState state, const Event& event) {
  const std::string& order_number = EventOrderNumber(event);
  LEDGER_ASSERT(state.order_number.empty() || state.order_number == order_number,
                "an event of another order in this stream");
  state.order_number = order_number;

  const bool was_placed = state.placed();
  const OrderStatus previous_status = state.status;
  std::visit([&state](const auto& e) { Apply(state, e); }, event);

  if (state.placed()) {
    std::vector<LineStatus> statuses;
    statuses.reserve(state.lines.size());
    for (const LineState& line : state.lines) statuses.push_back(line.status);
    state.status = DeriveOrderStatus(statuses);
    LEDGER_ASSERT(!was_placed || IsOrderTransitionAllowed(previous_status, state.status),
                  "a forbidden order transition");
  }
  RecomputeAmounts(state);
  ++state.events_applied;
  return state;
}

OrderState Fold(std::span<const Event> events) {
  OrderState state;
  for (const Event& event : events) state = Evolve(std::move(state), event);
  return state;
}

std::optional<OrderCreated> PlacedOrder(const OrderState& state) {
  if (!state.placed()) return std::nullopt;
  OrderCreated order = *state.placement;
  order.lines.reserve(state.lines.size());
  for (const LineState& line : state.lines) order.lines.push_back(line.line);
  return order;
}

int64_t CapturedMinor(const OrderState& state, std::string_view currency) {
  int64_t captured_minor = 0;
  for (const CaptureRecord& capture : state.captures) {
    if (capture.amount.currency == currency) {
      captured_minor = AddOrDie(captured_minor, capture.amount.minor_units);
    }
  }
  return captured_minor;
}

std::vector<std::string> FulfillableLines(const OrderState& state) {
  std::vector<std::string> line_ids;
  for (const LineState& line : state.lines) {
    if (IsFulfillable(line.status)) line_ids.push_back(line.line.line_id);
  }
  return line_ids;
}

std::vector<std::string> LinesDueForRetry(const OrderState& state, int64_t now_us) {
  std::vector<std::string> line_ids;
  for (const LineState& line : state.lines) {
    if (IsFulfillable(line.status) && line.next_retry_at_us != 0 &&
        line.next_retry_at_us <= now_us) {
      line_ids.push_back(line.line.line_id);
    }
  }
  return line_ids;
}

}  // namespace ledger::domain
