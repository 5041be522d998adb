#include "domain/order_state.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "base/assert.h"
#include "domain/limits.h"
#include "domain/money.h"

namespace ledger::domain {
namespace {

// What keeps an event from applying, in words (naming the line where one is involved); nullopt
// when it applies. TryEvolve adds the event type, version and order number.
using Problem = std::optional<std::string>;

// The running sum of the captures in `currency`, in log order; nullopt when a partial sum
// overflows. TryEvolve refuses the capture that would make it overflow, so for the states it
// returns this is never nullopt.
std::optional<int64_t> SumCaptures(const OrderState& state, std::string_view currency) {
  std::optional<int64_t> sum = 0;
  for (const CaptureRecord& capture : state.captures) {
    if (capture.amount.currency != currency) continue;
    sum = CheckedAdd(*sum, capture.amount.minor_units);
    if (!sum) return std::nullopt;
  }
  return sum;
}

// The line an event changes. A problem before OrderCreated or for a line the order lacks.
Result<LineState*, std::string> FindLineToChange(OrderState& state, const std::string& line_id) {
  if (!state.placed()) {
    return Unexpected("line " + line_id + " comes before the order's OrderCreated");
  }
  auto it = std::find_if(state.lines.begin(), state.lines.end(),
                         [&](const LineState& line) { return line.line.line_id == line_id; });
  if (it == state.lines.end()) return Unexpected("the order has no line " + line_id);
  return &*it;
}

Problem SetLineStatus(LineState& line, LineStatus status) {
  if (!IsLineTransitionAllowed(line.status, status)) {
    return LineDetail(line) + " and cannot become " + std::string(LineStatusName(status));
  }
  line.status = status;
  return std::nullopt;
}

// An attempt must follow the line's last one: none skipped, none repeated.
// A revocation attempt's number must move on. It may skip: a state folded from a snapshot
// written before revocation failures were counted (snapshot field 13) starts from 0 while the
// log's next number counts every earlier failure. 0: an event written before attempts were
// numbered, which counts one more.
Problem CheckRevocationAttempt(const LineState& line, uint32_t attempt) {
  if (attempt == 0 || attempt > line.revocation_failures ||
      (attempt == UINT32_MAX && line.revocation_failures == UINT32_MAX)) {
    return std::nullopt;
  }
  return "revocation attempt " + std::to_string(attempt) + " of line " + line.line.line_id +
         " does not follow attempt " + std::to_string(line.revocation_failures);
}

Problem CheckAttempt(const LineState& line, uint32_t attempt) {
  if (attempt == line.attempts + 1) return std::nullopt;
  return "attempt " + std::to_string(attempt) + " of line " + line.line.line_id +
         " does not follow attempt " + std::to_string(line.attempts);
}

// Decide's limits keep every sum far from overflow; an overflow means a damaged log.
Problem RecomputeAmounts(OrderState& state) {
  if (!state.placed()) return std::nullopt;
  OrderAmounts amounts;
  amounts.total_minor = state.placement->total_minor;
  const std::optional<int64_t> captured_minor = SumCaptures(state, state.placement->currency);
  if (!captured_minor) return "the captures in " + state.placement->currency + " overflow";
  amounts.captured_minor = *captured_minor;
  const std::optional<int64_t> due_minor =
      CheckedSubtract(amounts.total_minor, amounts.captured_minor);
  const std::optional<int64_t> overpaid_minor =
      CheckedSubtract(amounts.captured_minor, amounts.total_minor);
  if (!due_minor || !overpaid_minor) {
    return "the total " + std::to_string(amounts.total_minor) + " and the captured " +
           std::to_string(amounts.captured_minor) + " minor units differ by more than int64";
  }
  amounts.due_minor = std::max<int64_t>(0, *due_minor);
  amounts.overpaid_minor = std::max<int64_t>(0, *overpaid_minor);
  for (const LineState& line : state.lines) {
    if (line.status != LineStatus::kRevoked) continue;
    const std::optional<int64_t> line_minor =
        CheckedMultiply(line.line.quantity, line.line.unit_price_minor);
    if (!line_minor) return "the amount of line " + line.line.line_id + " overflows";
    const std::optional<int64_t> refunded_minor = CheckedAdd(amounts.refunded_minor, *line_minor);
    if (!refunded_minor) return "the refunded amount overflows at line " + line.line.line_id;
    amounts.refunded_minor = *refunded_minor;
  }
  state.amounts = amounts;
  return std::nullopt;
}

Problem Apply(OrderState& state, const PaymentCaptured& e) {
  if (state.captures.size() >= kCapturesMax) {
    return "the order already holds " + std::to_string(kCapturesMax) + " captures, the most";
  }
  const std::optional<int64_t> captured_minor = SumCaptures(state, e.amount.currency);
  if (!captured_minor || !CheckedAdd(*captured_minor, e.amount.minor_units)) {
    return "the captures in " + e.amount.currency + " overflow";
  }
  state.captures.push_back(CaptureRecord{e.processor, e.reference, e.amount, e.card_type,
                                         e.card_last_digits, e.captured_at_us, e.excess});
  return std::nullopt;
}

Problem Apply(OrderState& state, const OrderCreated& e) {
  if (state.placed()) return std::string("the order was created before");
  state.placement = e;
  state.placement->lines.clear();  // They live in state.lines, with their progress.
  state.lines.clear();
  for (const Line& line : e.lines) {
    LineState line_state;
    line_state.line = line;
    state.lines.push_back(std::move(line_state));
  }
  return std::nullopt;
}

Problem Apply(OrderState& state, const PostCheckout& e) {
  if (!state.placed()) return std::string("it comes before the order's OrderCreated");
  state.post_checkout_requested = true;
  state.post_checkout_synchronous = e.synchronous;
  return std::nullopt;
}

Problem Apply(OrderState& state, const LineFulfilled& e) {
  Result<LineState*, std::string> found = FindLineToChange(state, e.line_id);
  if (!found) return found.error();
  LineState& line = **found;
  if (!IsFulfillable(line.status)) return LineDetail(line) + ", not fulfillable";
  if (Problem problem = CheckAttempt(line, e.attempt)) return problem;
  if (Problem problem = SetLineStatus(line, LineStatus::kComplete)) return problem;
  line.attempts = e.attempt;
  line.module = e.module;
  line.external_reference = e.external_reference;
  line.codes = e.codes;
  line.next_retry_at_us = 0;
  line.retry_requested = false;
  return std::nullopt;
}

Problem Apply(OrderState& state, const FulfillmentFailed& e) {
  Result<LineState*, std::string> found = FindLineToChange(state, e.line_id);
  if (!found) return found.error();
  LineState& line = **found;
  if (!IsFulfillable(line.status)) return LineDetail(line) + ", not fulfillable";
  if (Problem problem = CheckAttempt(line, e.attempt)) return problem;
  if (Problem problem = SetLineStatus(line, LineStatusForFailure(e.kind))) return problem;
  line.attempts = e.attempt;
  line.module = e.module;
  line.last_error_kind = e.kind;
  line.last_error_message = e.message;
  line.next_retry_at_us = e.next_retry_at_us;
  line.retry_requested = false;
  return std::nullopt;
}

Problem Apply(OrderState& state, const FulfillmentRetryRequested& e) {
  for (const std::string& line_id : e.line_ids) {
    Result<LineState*, std::string> found = FindLineToChange(state, line_id);
    if (!found) return found.error();
    LineState& line = **found;
    if (!IsFulfillable(line.status)) return LineDetail(line) + ", not fulfillable";
    line.retry_requested = true;
    line.next_retry_at_us = 0;  // The scheduled retry, if any, is this one.
    if (e.automatic) ++line.automatic_retries;
  }
  ++state.retry_requests;
  return std::nullopt;
}

Problem Apply(OrderState& state, const LineRevoked& e) {
  Result<LineState*, std::string> found = FindLineToChange(state, e.line_id);
  if (!found) return found.error();
  LineState& line = **found;
  if (Problem problem = SetLineStatus(line, LineStatus::kRevoked)) return problem;
  line.refund_reference = e.refund_reference;
  line.revocation_requested = false;
  line.next_retry_at_us = 0;
  return std::nullopt;
}

Problem Apply(OrderState& state, const RevocationFailed& e) {
  Result<LineState*, std::string> found = FindLineToChange(state, e.line_id);
  if (!found) return found.error();
  LineState& line = **found;
  if (line.status == LineStatus::kRevoked) return LineDetail(line) + " already";
  if (Problem problem = CheckRevocationAttempt(line, e.attempt)) return problem;
  if (Problem problem = SetLineStatus(line, LineStatus::kRevocationError)) return problem;
  line.last_error_kind = e.kind;
  line.last_error_message = e.message;
  line.refund_reference = e.refund_reference;
  line.revocation_requested = false;
  line.revocation_failures = e.attempt != 0 ? e.attempt : NextRevocationAttempt(line);
  line.next_retry_at_us = e.next_retry_at_us;
  return std::nullopt;
}

Problem Apply(OrderState& state, const RevocationRequested& e) {
  Result<LineState*, std::string> found = FindLineToChange(state, e.line_id);
  if (!found) return found.error();
  LineState& line = **found;
  if (!IsRevocable(line.status)) {
    return LineDetail(line) + ", not revocable";
  }
  if (line.revocation_requested) return "a revocation of line " + e.line_id + " is pending";
  line.revocation_requested = true;
  line.refund_reference = e.refund_reference;
  line.next_retry_at_us = 0;  // The scheduled retry, if any, is this one.
  if (e.automatic) ++line.automatic_revocation_retries;
  return std::nullopt;
}

// Folds the event into `state` in place; the problem, if any, leaves `state` half changed, and
// TryEvolve discards it.
Problem ApplyEvent(OrderState& state, const Event& event) {
  const std::string& order_number = EventOrderNumber(event);
  if (!state.order_number.empty() && state.order_number != order_number) {
    return "the stream holds order " + state.order_number;
  }
  state.order_number = order_number;

  const bool was_placed = state.placed();
  const OrderStatus previous_status = state.status;
  if (Problem problem = std::visit([&state](const auto& e) { return Apply(state, e); }, event)) {
    return problem;
  }
  if (state.placed()) {
    std::vector<LineStatus> statuses;
    statuses.reserve(state.lines.size());
    for (const LineState& line : state.lines) statuses.push_back(line.status);
    state.status = DeriveOrderStatus(statuses);
    if (was_placed && !IsOrderTransitionAllowed(previous_status, state.status)) {
      return "the order is " + std::string(OrderStatusName(previous_status)) +
             " and cannot become " + std::string(OrderStatusName(state.status));
    }
  }
  if (Problem problem = RecomputeAmounts(state)) return problem;
  ++state.events_applied;
  return std::nullopt;
}

}  // namespace

uint32_t NextRevocationAttempt(const LineState& line) {
  return line.revocation_failures == UINT32_MAX ? UINT32_MAX : line.revocation_failures + 1;
}

std::string LineDetail(const LineState& line) {
  return "line " + line.line.line_id + " is " + std::string(LineStatusName(line.status));
}

const LineState* OrderState::FindLine(std::string_view line_id) const {
  auto it = std::find_if(lines.begin(), lines.end(),
                         [&](const LineState& line) { return line.line.line_id == line_id; });
  return it == lines.end() ? nullptr : &*it;
}

Result<OrderState, FoldError> TryEvolve(OrderState state, const Event& event) {
  const uint64_t version = state.events_applied;
  if (Problem problem = ApplyEvent(state, event)) {
    return Unexpected(FoldError{std::string(EventTypeName(event)) + " at version " +
                                std::to_string(version) + " of order " + EventOrderNumber(event) +
                                " cannot apply: " + *problem});
  }
  return state;
}

OrderState Evolve(OrderState state, const Event& event) {
  Result<OrderState, FoldError> evolved = TryEvolve(std::move(state), event);
  // The message is evaluated only when the assertion fails, when there is an error to read.
  LEDGER_ASSERT(evolved.has_value(), evolved.error().problem.c_str());
  return std::move(evolved).value();
}

Result<OrderState, FoldError> TryFold(std::span<const Event> events) {
  OrderState state;
  for (const Event& event : events) {
    Result<OrderState, FoldError> evolved = TryEvolve(std::move(state), event);
    if (!evolved) return Unexpected(std::move(evolved).error());
    state = std::move(evolved).value();
  }
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
  const std::optional<int64_t> captured_minor = SumCaptures(state, currency);
  LEDGER_ASSERT(captured_minor.has_value(), "captures overflow in a state TryEvolve returned");
  return *captured_minor;
}

std::vector<Money> CapturedInOtherCurrencies(const OrderState& state) {
  std::vector<Money> amounts;
  if (!state.placed()) return amounts;
  for (const CaptureRecord& capture : state.captures) {
    if (capture.amount.currency == state.placement->currency) continue;
    // The last entry of the currency: a sum that would overflow int64 (only in a damaged
    // snapshot, since TryEvolve refuses such a capture) starts another entry, not a crash.
    auto it = std::find_if(amounts.rbegin(), amounts.rend(), [&](const Money& amount) {
      return amount.currency == capture.amount.currency;
    });
    const std::optional<int64_t> sum =
        it == amounts.rend() ? std::nullopt
                             : CheckedAdd(it->minor_units, capture.amount.minor_units);
    if (sum) {
      it->minor_units = *sum;
    } else {
      amounts.push_back(capture.amount);
    }
  }
  return amounts;
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
