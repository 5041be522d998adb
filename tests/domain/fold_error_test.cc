// Inapplicable events: what a log written by an old buggy version, or edited by hand with its
// hash chain recomputed, may hold. TryEvolve must answer each with a FoldError that says what is
// wrong, never abort. One row per rule TryEvolve enforces; then TryFold, and random event
// sequences that must never crash the fold.
#include <catch2/catch.hpp>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "domain/limits.h"
#include "domain/order_state.h"
#include "tests/domain/test_support.h"

namespace ledger::domain {
namespace {

using testing::kOrderNumber;
using testing::kT0Us;

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

PaymentCaptured CaptureEvent(std::string reference, int64_t minor_units) {
  return PaymentCaptured{.order_number = kOrderNumber,
                         .processor = "cybersource",
                         .reference = std::move(reference),
                         .amount = Money{minor_units, "USD"},
                         .card_type = "visa",
                         .card_last_digits = "1111",
                         .captured_at_us = kT0Us,
                         .excess = false};
}

// The standard order as its stream holds it: capture, OrderCreated, PostCheckout.
std::vector<Event> PlacedEvents() { return testing::PlacedHistory().events(); }

// An order of the given lines, free of any capture check: what a hand-edited log may hold.
std::vector<Event> PlacedEventsWith(std::vector<Line> lines, int64_t total_minor) {
  std::vector<Event> events = PlacedEvents();
  OrderCreated& created = std::get<OrderCreated>(events[1]);
  created.lines = std::move(lines);
  created.total_minor = total_minor;
  return events;
}

LineFulfilled FulfilledEvent(std::string line_id, uint32_t attempt = 1) {
  return LineFulfilled{.order_number = kOrderNumber,
                       .line_id = std::move(line_id),
                       .module = "EnrollmentFulfillmentModule",
                       .attempt = attempt,
                       .external_reference = "ref",
                       .codes = {},
                       .fulfilled_at_us = kT0Us};
}

FulfillmentFailed FailedEvent(std::string line_id, uint32_t attempt = 1) {
  return FulfillmentFailed{.order_number = kOrderNumber,
                           .line_id = std::move(line_id),
                           .module = "EnrollmentFulfillmentModule",
                           .attempt = attempt,
                           .kind = FailureKind::kNetwork,
                           .message = "LMS said no",
                           .retryable = true,
                           .next_retry_at_us = 0,
                           .failed_at_us = kT0Us};
}

FulfillmentRetryRequested RetryEvent(std::vector<std::string> line_ids) {
  return FulfillmentRetryRequested{.order_number = kOrderNumber,
                                   .requested_by = "staff",
                                   .reason = "LMS is back",
                                   .line_ids = std::move(line_ids),
                                   .automatic = false,
                                   .requested_at_us = kT0Us};
}

LineRevoked RevokedEvent(std::string line_id) {
  return LineRevoked{.order_number = kOrderNumber,
                     .line_id = std::move(line_id),
                     .module = "EnrollmentFulfillmentModule",
                     .refund_reference = "refund-1",
                     .revoked_at_us = kT0Us};
}

// `attempt` 0: as written before revocation attempts were numbered.
RevocationFailed RevocationFailedEvent(std::string line_id, uint32_t attempt = 0) {
  return RevocationFailed{.order_number = kOrderNumber,
                          .line_id = std::move(line_id),
                          .module = "EnrollmentFulfillmentModule",
                          .kind = FailureKind::kNetwork,
                          .message = "LMS unreachable",
                          .refund_reference = "refund-1",
                          .failed_at_us = kT0Us,
                          .attempt = attempt};
}

RevocationRequested RevocationRequestedEvent(std::string line_id) {
  return RevocationRequested{.order_number = kOrderNumber,
                             .line_id = std::move(line_id),
                             .refund_reference = "refund-1",
                             .requested_by = "ops",
                             .requested_at_us = kT0Us};
}

std::vector<Event> With(std::vector<Event> events, std::vector<Event> more) {
  events.insert(events.end(), more.begin(), more.end());
  return events;
}

struct FoldErrorRow {
  std::string_view name;
  // A stream that folds, then the event that cannot apply to it.
  std::vector<Event> given;
  Event event;
  // What the error must say besides the event type and order number.
  std::string_view says;
};

TEST_CASE("every inapplicable event gives a FoldError naming what is wrong, never an abort",
          "[fold]") {
  std::vector<Event> two_revocable =
      PlacedEventsWith({testing::MakeLine("1", "Seat", 1, kInt64Max / 2 + 1),
                        testing::MakeLine("2", "Seat", 1, kInt64Max / 2 + 1)},
                       0);
  std::vector<Event> too_many_captures;
  for (size_t i = 0; i < kCapturesMax; ++i) {
    too_many_captures.push_back(CaptureEvent("txn-" + std::to_string(i), 1));
  }
  PaymentCaptured other_order = CaptureEvent("txn-2", 100);
  other_order.order_number = "EDX-100010";
  const OrderCreated created = std::get<OrderCreated>(PlacedEvents()[1]);
  OrderCreated far_total = created;
  far_total.total_minor = kInt64Min;

  const FoldErrorRow rows[] = {
      {"an event of another order", PlacedEvents(), other_order,
       "the stream holds order EDX-100009"},
      {"a second OrderCreated", PlacedEvents(), created, "the order was created before"},
      {"PostCheckout before OrderCreated",
       {CaptureEvent("txn-1", 14900)},
       PostCheckout{kOrderNumber, false},
       "before the order's OrderCreated"},
      {"a line event before OrderCreated",
       {CaptureEvent("txn-1", 14900)},
       FulfilledEvent("1"),
       "line 1 comes before the order's OrderCreated"},
      {"LineFulfilled for line 9", PlacedEvents(), FulfilledEvent("9"), "the order has no line 9"},
      {"FulfillmentFailed for line 9", PlacedEvents(), FailedEvent("9"), "the order has no line 9"},
      {"a retry naming line 9", PlacedEvents(), RetryEvent({"1", "9"}), "the order has no line 9"},
      {"LineRevoked for line 9", PlacedEvents(), RevokedEvent("9"), "the order has no line 9"},
      {"RevocationFailed for line 9", PlacedEvents(), RevocationFailedEvent("9"),
       "the order has no line 9"},
      {"LineFulfilled skipping an attempt", PlacedEvents(), FulfilledEvent("1", 3),
       "attempt 3 of line 1 does not follow attempt 0"},
      {"FulfillmentFailed repeating an attempt", With(PlacedEvents(), {FailedEvent("1", 1)}),
       FailedEvent("1", 1), "attempt 1 of line 1 does not follow attempt 1"},
      {"LineFulfilled of a Complete line", With(PlacedEvents(), {FulfilledEvent("1")}),
       FulfilledEvent("1", 2), "line 1 is Complete, not fulfillable"},
      {"FulfillmentFailed of a Revoked line",
       With(PlacedEvents(), {FulfilledEvent("1"), RevokedEvent("1")}), FailedEvent("1", 2),
       "line 1 is Revoked, not fulfillable"},
      {"a retry of a Complete line", With(PlacedEvents(), {FulfilledEvent("1")}), RetryEvent({"1"}),
       "line 1 is Complete, not fulfillable"},
      {"LineRevoked of an Open line", PlacedEvents(), RevokedEvent("1"),
       "line 1 is Open and cannot become Revoked"},
      {"RevocationFailed of an Open line", PlacedEvents(), RevocationFailedEvent("2"),
       "line 2 is Open and cannot become Revocation Error"},
      {"RevocationFailed of a Revoked line",
       With(PlacedEvents(), {FulfilledEvent("1"), RevokedEvent("1")}), RevocationFailedEvent("1"),
       "line 1 is Revoked already"},
      {"RevocationFailed going back an attempt",
       With(PlacedEvents(),
            {FulfilledEvent("1"), RevocationFailedEvent("1", 3), RevocationRequestedEvent("1")}),
       RevocationFailedEvent("1", 2), "revocation attempt 2 of line 1 does not follow attempt 3"},
      {"RevocationFailed repeating an attempt after an unnumbered one",
       With(PlacedEvents(), {FulfilledEvent("1"), RevocationFailedEvent("1")}),
       RevocationFailedEvent("1", 1), "revocation attempt 1 of line 1 does not follow attempt 1"},
      {"RevocationRequested for line 9", PlacedEvents(), RevocationRequestedEvent("9"),
       "the order has no line 9"},
      {"RevocationRequested of an Open line", PlacedEvents(), RevocationRequestedEvent("1"),
       "line 1 is Open, not revocable"},
      {"RevocationRequested of a Revoked line",
       With(PlacedEvents(), {FulfilledEvent("1"), RevokedEvent("1")}),
       RevocationRequestedEvent("1"), "line 1 is Revoked, not revocable"},
      {"RevocationRequested twice",
       With(PlacedEvents(), {FulfilledEvent("1"), RevocationRequestedEvent("1")}),
       RevocationRequestedEvent("1"), "a revocation of line 1 is pending"},
      {"one capture more than kCapturesMax", too_many_captures, CaptureEvent("txn-new", 1),
       "already holds 100 captures"},
      {"captures whose sum overflows",
       {CaptureEvent("txn-1", kInt64Max)},
       CaptureEvent("txn-2", 1),
       "the captures in USD overflow"},
      {"a total too far from the captures",
       {CaptureEvent("txn-1", 14900)},
       far_total,
       "differ by more than int64"},
      {"a revoked line whose amount overflows",
       With(PlacedEventsWith({testing::MakeLine("1", "Seat", kInt64Max, 2)}, 0),
            {FulfilledEvent("1")}),
       RevokedEvent("1"), "the amount of line 1 overflows"},
      {"revoked lines whose sum overflows",
       With(two_revocable, {FulfilledEvent("1"), FulfilledEvent("2"), RevokedEvent("1")}),
       RevokedEvent("2"), "the refunded amount overflows at line 2"},
  };
  for (const FoldErrorRow& row : rows) {
    INFO(row.name);
    // Given a stream that folds,
    Result<OrderState, FoldError> given = TryFold(row.given);
    REQUIRE(given.has_value());
    // when an event that cannot apply is folded into it,
    Result<OrderState, FoldError> evolved = TryEvolve(*given, row.event);
    // then TryEvolve answers a FoldError naming the event, its version, order and problem.
    REQUIRE_FALSE(evolved.has_value());
    const std::string& problem = evolved.error().problem;
    INFO(problem);
    const std::string prefix = std::string(EventTypeName(row.event)) + " at version " +
                               std::to_string(row.given.size()) + " of order " +
                               EventOrderNumber(row.event) + " cannot apply: ";
    CHECK(problem.starts_with(prefix));
    CHECK(problem.find(row.says) != std::string::npos);
  }
}

TEST_CASE("TryFold folds what Fold folds and stops at the first inapplicable event", "[fold]") {
  GIVEN("the stream of an order fulfilled, failed, retried and revoked") {
    const std::vector<Event> events =
        With(PlacedEvents(), {FailedEvent("1"), RetryEvent({"1"}), FulfilledEvent("1", 2),
                              FulfilledEvent("2"), RevocationFailedEvent("2"), RevokedEvent("2")});
    THEN("TryFold and Fold give the same state") {
      Result<OrderState, FoldError> folded = TryFold(events);
      REQUIRE(folded.has_value());
      CHECK(*folded == Fold(events));
      CHECK(folded->events_applied == events.size());
    }
    WHEN("an inapplicable event sits in the middle") {
      std::vector<Event> damaged = events;
      damaged.insert(damaged.begin() + 4, FulfilledEvent("9"));
      THEN("TryFold answers TryEvolve's error for it, at its version") {
        Result<OrderState, FoldError> folded = TryFold(damaged);
        REQUIRE_FALSE(folded.has_value());
        CHECK(folded.error().problem ==
              "LineFulfilled at version 4 of order EDX-100009 cannot apply: the order has no "
              "line 9");
      }
    }
  }
}

// Random events, most of them nonsense: the fold must answer each sequence with a state or a
// FoldError, and never abort. A fixed seed, so that a failure replays.
class RandomEvents {
 public:
  explicit RandomEvents(uint64_t seed) : random_(seed) {}

  Event Next() {
    switch (Pick(8)) {
      case 0: {
        PaymentCaptured capture = CaptureEvent("txn-" + std::to_string(Pick(4)), Amount());
        capture.order_number = OrderNumber();
        return capture;
      }
      case 1: {
        std::vector<Line> lines;
        for (size_t i = Pick(3); i > 0; --i) {
          lines.push_back(testing::MakeLine(LineId(), "Seat", Amount(), Amount()));
        }
        OrderCreated created = std::get<OrderCreated>(PlacedEvents()[1]);
        created.order_number = OrderNumber();
        created.lines = std::move(lines);
        created.total_minor = Amount();
        return created;
      }
      case 2:
        return PostCheckout{OrderNumber(), Pick(2) == 0};
      case 3:
        return FulfilledEvent(LineId(), Attempt());
      case 4: {
        FulfillmentFailed failed = FailedEvent(LineId(), Attempt());
        failed.kind = static_cast<FailureKind>(Pick(9));  // Some outside the enumeration.
        return failed;
      }
      case 5:
        return RetryEvent({LineId(), LineId()});
      case 6:
        return RevokedEvent(LineId());
      default:
        return RevocationFailedEvent(LineId());
    }
  }

 private:
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random_); }
  std::string OrderNumber() { return Pick(10) == 0 ? "EDX-100010" : kOrderNumber; }
  std::string LineId() { return std::to_string(Pick(3)); }
  uint32_t Attempt() {
    constexpr uint32_t kAttempts[] = {1, 1, 2, 3, std::numeric_limits<uint32_t>::max()};
    return kAttempts[Pick(std::size(kAttempts))];
  }
  int64_t Amount() {
    constexpr int64_t kAmounts[] = {0, 1, -1, 14900, kInt64Max, kInt64Min, kInt64Max / 2 + 1};
    return kAmounts[Pick(std::size(kAmounts))];
  }

  std::mt19937_64 random_;
};

TEST_CASE("random event sequences fold to a state or a FoldError, never an abort", "[fold]") {
  RandomEvents random(20240612);
  int applied = 0;
  int refused = 0;
  for (int sequence = 0; sequence < 2000; ++sequence) {
    OrderState state;
    for (int i = 0; i < 20; ++i) {
      const Event event = random.Next();
      // A refused event leaves the state as it was, so the sequence goes on deeper.
      Result<OrderState, FoldError> evolved = TryEvolve(state, event);
      if (evolved.has_value()) {
        CHECK(evolved->events_applied == state.events_applied + 1);
        state = std::move(evolved).value();
        ++applied;
      } else {
        CHECK(evolved.error().problem.find(" cannot apply: ") != std::string::npos);
        ++refused;
      }
    }
  }
  // Both answers must be common, or the sequences prove little.
  CHECK(applied > 5000);
  CHECK(refused > 5000);
}

}  // namespace
}  // namespace ledger::domain
