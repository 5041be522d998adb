// Property test: random command sequences against one order's stream, with a fixed seed so that
// a failure replays. After every accepted command the state must be possible (the invariants
// below), every transition allowed, and folding the stream from scratch must give the state the
// incremental fold holds. Also: deciding is deterministic, and a repeated capture, placement,
// fulfillment or revocation adds nothing.
#include <array>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>

#include "domain/limits.h"
#include "tests/domain/test_support.h"

namespace ledger::domain {
namespace {

using testing::kOrderNumber;

constexpr uint64_t kSeed = 20240611;
constexpr int kSequences = 3000;
constexpr int kCommandsPerSequence = 30;

class CommandGenerator {
 public:
  explicit CommandGenerator(uint64_t seed) : random_(seed) {}

  Command Next(int64_t now_us) {
    switch (Pick(11)) {
      case 0:
      case 1:
        return MakeCapture(now_us);
      case 2:
        return MakePlacement(now_us);
      case 3:
      case 4:
        return MakeFulfilled(now_us);
      case 5:
      case 6:
        return MakeFailed(now_us);
      case 7:
        return MakeRetry(now_us);
      case 8:
        return MakeRevoked(now_us);
      case 9:
        return MakeRevocationRequest(now_us);
      default:
        return MakeRevocationFailed(now_us);
    }
  }

 private:
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random_); }
  bool Chance(size_t percent) { return Pick(100) < percent; }

  std::string OrderNumber() { return Chance(3) ? "EDX-100010" : kOrderNumber; }
  // Lines 1 and 2 exist in every basket, 3 only in the big one, 9 never.
  std::string LineId() { return std::array{"1", "2", "3", "9"}[Pick(4)]; }
  FailureKind Kind() { return static_cast<FailureKind>(Pick(Chance(3) ? 9 : 5)); }

  Command MakeCapture(int64_t now_us) {
    CapturePayment capture =
        testing::Capture(std::array{"t1", "t2", "t3", "t4"}[Pick(4)],
                         std::array<int64_t, 6>{0, 4900, 10000, 14900, 20000, -1}[Pick(6)],
                         Chance(85) ? "USD" : "EUR");
    capture.order_number = OrderNumber();
    capture.processor = Chance(80) ? "cybersource" : "paypal";
    capture.captured_at_us = now_us;
    return capture;
  }

  Command MakePlacement(int64_t now_us) {
    PlaceOrder place = testing::StandardPlacement();
    switch (Pick(4)) {
      case 0:  // Free.
        place.lines = {testing::MakeLine("1", "Coupon", 1, 0),
                       testing::MakeLine("2", "Donation", 2, 0)};
        place.total_minor = 0;
        break;
      case 1:  // Three lines and shipping, 200.00 USD.
        place.lines.push_back(testing::MakeLine("3", "Enrollment Code", 2, 2000));
        place.shipping_charge_minor = 1100;
        place.total_minor = 20000;
        break;
      default:
        break;
    }
    if (Chance(10)) place.total_minor += 1;
    if (Chance(5)) place.lines[0].quantity = 0;
    if (Chance(10)) place.user.email = "other@example.com";
    if (Chance(50)) place.order_number = OrderNumber();
    place.placed_at_us = now_us;
    place.synchronous = Chance(50);
    return place;
  }

  Command MakeFulfilled(int64_t now_us) {
    RecordLineFulfilled command = testing::Fulfilled(LineId());
    command.order_number = OrderNumber();
    command.external_reference = "ref-" + std::to_string(Pick(3));
    command.fulfilled_at_us = now_us;
    return command;
  }

  Command MakeFailed(int64_t now_us) {
    RecordFulfillmentFailed command = testing::Failed(LineId(), Kind(), Chance(70));
    command.order_number = OrderNumber();
    command.failed_at_us = now_us;
    return command;
  }

  Command MakeRetry(int64_t now_us) {
    std::vector<std::string> line_ids;
    if (Chance(50)) {
      for (size_t i = Pick(3); i > 0; --i) line_ids.push_back(LineId());
    }
    RequestFulfillmentRetry command = testing::Retry(std::move(line_ids));
    command.order_number = OrderNumber();
    command.automatic = Chance(50);
    command.requested_at_us = now_us;
    return command;
  }

  Command MakeRevoked(int64_t now_us) {
    RecordLineRevoked command = testing::Revoked(LineId());
    command.order_number = OrderNumber();
    command.revoked_at_us = now_us;
    return command;
  }

  Command MakeRevocationRequest(int64_t now_us) {
    RequestRevocation command = testing::RevocationRequest(LineId());
    command.order_number = OrderNumber();
    command.requested_at_us = now_us;
    return command;
  }

  Command MakeRevocationFailed(int64_t now_us) {
    RecordRevocationFailed command = testing::RevocationFailedCommand(LineId());
    command.order_number = OrderNumber();
    command.kind = Kind();
    command.failed_at_us = now_us;
    command.retryable = random_() % 2 == 0;
    return command;
  }

  std::mt19937_64 random_;
};

int64_t LineAmount(const LineState& line) {
  return line.line.quantity * line.line.unit_price_minor;
}

// What must hold of any state the domain can reach.
void CheckPossible(const OrderState& state, const std::vector<Event>& events) {
  REQUIRE(state.events_applied == events.size());
  REQUIRE(state.captures.size() <= kCapturesMax);
  std::set<std::pair<std::string, std::string>> capture_keys;
  int64_t paid_before_placement_minor = 0;
  for (const CaptureRecord& capture : state.captures) {
    REQUIRE(capture.amount.minor_units > 0);
    REQUIRE(FindCurrency(capture.amount.currency).has_value());
    REQUIRE(capture_keys.insert({capture.processor, capture.reference}).second);
    REQUIRE((!capture.excess || state.placed()));
    if (state.placed() && !capture.excess && capture.amount.currency == state.placement->currency) {
      paid_before_placement_minor += capture.amount.minor_units;
    }
  }

  if (!state.placed()) {
    REQUIRE(state.lines.empty());
    REQUIRE_FALSE(state.post_checkout_requested);
    REQUIRE(state.amounts == OrderAmounts{});
    return;
  }
  const OrderCreated& placement = *state.placement;
  REQUIRE(state.post_checkout_requested);
  REQUIRE_FALSE(state.lines.empty());
  // Paid in full before placement, unless free.
  REQUIRE(paid_before_placement_minor >= placement.total_minor);
  REQUIRE(state.amounts.total_minor == placement.total_minor);
  REQUIRE(state.amounts.captured_minor == CapturedMinor(state, placement.currency));
  REQUIRE(state.amounts.due_minor == 0);
  REQUIRE(state.amounts.overpaid_minor == state.amounts.captured_minor - placement.total_minor);

  int64_t lines_minor = 0;
  int64_t refunded_minor = 0;
  std::vector<LineStatus> statuses;
  for (const LineState& line : state.lines) {
    INFO("line " << line.line.line_id << " " << LineStatusName(line.status));
    lines_minor += LineAmount(line);
    statuses.push_back(line.status);
    if (line.status == LineStatus::kRevoked) refunded_minor += LineAmount(line);
    // Complete, Revoked and Revocation Error lines were fulfilled by some attempt.
    if (!IsFulfillable(line.status)) REQUIRE(line.attempts >= 1);
    if (IsFulfillmentError(line.status)) {
      REQUIRE(line.attempts >= 1);
      REQUIRE(line.last_error_kind.has_value());
      REQUIRE(LineStatusForFailure(*line.last_error_kind) == line.status);
    }
    if (line.status == LineStatus::kOpen) REQUIRE(line.attempts == 0);
    // Only a fulfilled, unrevoked line can have a revocation pending.
    if (line.revocation_requested) {
      REQUIRE(
          (line.status == LineStatus::kComplete || line.status == LineStatus::kRevocationError));
    }
    // A retry is scheduled for a failed fulfillment, or for a failed revocation not yet asked
    // for again.
    if (line.next_retry_at_us != 0) {
      REQUIRE((IsFulfillable(line.status) ||
               (line.status == LineStatus::kRevocationError && !line.revocation_requested)));
    }
    REQUIRE((line.status != LineStatus::kRevocationError || line.revocation_failures >= 1));
    if (line.retry_requested) REQUIRE(IsFulfillable(line.status));
    REQUIRE(line.attempts <= kAttemptsMax + 1);
  }
  REQUIRE(lines_minor + placement.shipping_charge_minor == placement.total_minor);
  REQUIRE(state.amounts.refunded_minor == refunded_minor);
  REQUIRE(state.status == DeriveOrderStatus(statuses));
}

// Transitions from one possible state to the next.
void CheckTransition(const OrderState& before, const OrderState& after) {
  REQUIRE((before.order_number.empty() || before.order_number == after.order_number));
  REQUIRE(after.captures.size() >= before.captures.size());
  if (!before.placed()) return;
  REQUIRE(after.placed());
  REQUIRE(*after.placement == *before.placement);
  REQUIRE(IsOrderTransitionAllowed(before.status, after.status));
  REQUIRE(after.lines.size() == before.lines.size());
  for (size_t i = 0; i < before.lines.size(); ++i) {
    const LineState& old_line = before.lines[i];
    const LineState& new_line = after.lines[i];
    INFO(LineStatusName(old_line.status) << " -> " << LineStatusName(new_line.status));
    REQUIRE(IsLineTransitionAllowed(old_line.status, new_line.status));
    REQUIRE(new_line.attempts >= old_line.attempts);
    // A Complete line keeps what its fulfillment produced.
    if (old_line.status == LineStatus::kComplete) {
      REQUIRE(new_line.external_reference == old_line.external_reference);
      REQUIRE(new_line.attempts == old_line.attempts);
    }
  }
}

// The order of a stream: captures, then OrderCreated + PostCheckout, then the rest (and captures).
void CheckStreamShape(const std::vector<Event>& events) {
  bool placed = false;
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& event = events[i];
    REQUIRE(EventOrderNumber(event) == EventOrderNumber(events.front()));
    if (std::holds_alternative<OrderCreated>(event)) {
      REQUIRE_FALSE(placed);
      placed = true;
      REQUIRE(i + 1 < events.size());
      REQUIRE(std::holds_alternative<PostCheckout>(events[i + 1]));
    } else if (!std::holds_alternative<PaymentCaptured>(event)) {
      REQUIRE(placed);
    }
    if (const auto* capture = std::get_if<PaymentCaptured>(&event)) {
      REQUIRE(capture->excess == placed);
    }
  }
}

bool SameDecision(const Decision& a, const Decision& b) {
  if (a.has_value() != b.has_value()) return false;
  return a.has_value() ? *a == *b : a.error() == b.error();
}

bool RepeatAddsNothing(const Command& command) {
  return std::holds_alternative<CapturePayment>(command) ||
         std::holds_alternative<PlaceOrder>(command) ||
         std::holds_alternative<RecordLineFulfilled>(command) ||
         std::holds_alternative<RecordLineRevoked>(command) ||
         std::holds_alternative<RequestRevocation>(command);
}

TEST_CASE("random command sequences reach only possible states, and the fold reproduces them",
          "[property]") {
  CommandGenerator generator(kSeed);
  std::map<std::string, int> accepted_events;
  std::map<RejectionCode, int> rejections;
  int repeats_checked = 0;

  for (int sequence = 0; sequence < kSequences; ++sequence) {
    OrderState state;
    std::vector<Event> events;
    int64_t now_us = testing::kT0Us;
    for (int step = 0; step < kCommandsPerSequence; ++step) {
      now_us += 1'000'000;
      const Command command = generator.Next(now_us);
      INFO("seed " << kSeed << ", sequence " << sequence << ", step " << step << ", "
                   << CommandTypeName(command));
      const Decision decision = Decide(state, command);
      REQUIRE(SameDecision(decision, Decide(state, command)));
      if (!decision.has_value()) {
        ++rejections[decision.error().code];
        continue;
      }
      const OrderState before = state;
      for (const Event& event : *decision) {
        ++accepted_events[std::string(EventTypeName(event))];
        events.push_back(event);
        state = Evolve(std::move(state), event);
      }
      CheckPossible(state, events);
      CheckTransition(before, state);
      if (RepeatAddsNothing(command) && !decision->empty()) {
        const Decision repeat = Decide(state, command);
        REQUIRE(repeat.has_value());
        REQUIRE(repeat->empty());
        ++repeats_checked;
      }
    }
    CheckStreamShape(events);
    REQUIRE(Fold(events) == state);
    const Result<OrderState, FoldError> try_folded = TryFold(events);
    REQUIRE(try_folded.has_value());
    REQUIRE(*try_folded == state);
  }

  // The generator must reach deep states, or the properties above prove little.
  INFO("events and rejections seen");
  for (std::string_view type :
       {"PaymentCaptured", "OrderCreated", "PostCheckout", "LineFulfilled", "FulfillmentFailed",
        "FulfillmentRetryRequested", "LineRevoked", "RevocationFailed", "RevocationRequested"}) {
    INFO(type);
    CHECK(accepted_events[std::string(type)] >= 100);
  }
  for (RejectionCode code :
       {RejectionCode::kPaymentMissing, RejectionCode::kPaymentShort,
        RejectionCode::kCurrencyMismatch, RejectionCode::kDuplicateOrderAttempt,
        RejectionCode::kLineAlreadyComplete, RejectionCode::kLineRevoked,
        RejectionCode::kLineNotFulfilled, RejectionCode::kNothingToFulfill,
        RejectionCode::kLineNotFulfillable, RejectionCode::kCaptureReferenceReused,
        RejectionCode::kStreamMismatch, RejectionCode::kInvalidFailureKind}) {
    INFO(RejectionName(code));
    CHECK(rejections[code] >= 10);
  }
  CHECK(repeats_checked >= 1000);
}

}  // namespace
}  // namespace ledger::domain
