#include "domain/events.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

namespace ledger::domain {
namespace {

TEST_CASE("every event has its stored type name and its order number", "[events]") {
  const std::pair<Event, std::string_view> cases[] = {
      {PaymentCaptured{.order_number = "A-1"}, "PaymentCaptured"},
      {OrderCreated{.order_number = "A-1"}, "OrderCreated"},
      {PostCheckout{.order_number = "A-1"}, "PostCheckout"},
      {LineFulfilled{.order_number = "A-1"}, "LineFulfilled"},
      {FulfillmentFailed{.order_number = "A-1"}, "FulfillmentFailed"},
      {FulfillmentRetryRequested{.order_number = "A-1"}, "FulfillmentRetryRequested"},
      {LineRevoked{.order_number = "A-1"}, "LineRevoked"},
      {RevocationFailed{.order_number = "A-1"}, "RevocationFailed"},
      {RevocationRequested{.order_number = "A-1"}, "RevocationRequested"},
  };
  REQUIRE(std::size(cases) == std::variant_size_v<Event>);
  for (const auto& [event, name] : cases) {
    CHECK(EventTypeName(event) == name);
    CHECK(EventOrderNumber(event) == "A-1");
  }
}

TEST_CASE("an order's stream is named order-<order number>", "[events]") {
  CHECK(OrderStreamName("EDX-100009") == "order-EDX-100009");
}

TEST_CASE("failure kinds keep their stored numbers and names", "[events]") {
  CHECK(static_cast<int>(FailureKind::kUnknown) == 0);
  CHECK(static_cast<int>(FailureKind::kConfiguration) == 1);
  CHECK(static_cast<int>(FailureKind::kNetwork) == 2);
  CHECK(static_cast<int>(FailureKind::kTimeout) == 3);
  CHECK(static_cast<int>(FailureKind::kServer) == 4);
  CHECK(FailureKindName(FailureKind::kTimeout) == "timeout");
  CHECK(IsValidFailureKind(FailureKind::kServer));
  CHECK_FALSE(IsValidFailureKind(static_cast<FailureKind>(5)));
  CHECK(FailureKindName(static_cast<FailureKind>(200)) == "invalid");
}

TEST_CASE("deterministic event ids name the same fact the same way", "[events]") {
  PaymentCaptured capture{.order_number = "A-1", .processor = "paypal", .reference = "t1"};
  PaymentCaptured later = capture;
  later.captured_at_us = 99;  // A retry of the same capture, reported later.
  CHECK(DeterministicEventId(capture) == DeterministicEventId(later));
  CHECK_FALSE(DeterministicEventId(capture).IsNil());

  PaymentCaptured other_reference = capture;
  other_reference.reference = "t2";
  PaymentCaptured other_order = capture;
  other_order.order_number = "A-2";
  // Length-prefixed parts: ("ab", "c") and ("a", "bc") must differ.
  PaymentCaptured split_a = capture;
  split_a.processor = "ab";
  split_a.reference = "c";
  PaymentCaptured split_b = capture;
  split_b.processor = "a";
  split_b.reference = "bc";

  FulfillmentFailed first{.order_number = "A-1", .line_id = "1", .attempt = 1};
  FulfillmentFailed second = first;
  second.attempt = 2;

  const std::set<EventId> ids = {
      DeterministicEventId(capture),
      DeterministicEventId(other_reference),
      DeterministicEventId(other_order),
      DeterministicEventId(split_a),
      DeterministicEventId(split_b),
      DeterministicEventId(OrderCreated{.order_number = "A-1"}),
      DeterministicEventId(PostCheckout{.order_number = "A-1"}),
      DeterministicEventId(first),
      DeterministicEventId(second),
      DeterministicEventId(LineFulfilled{.order_number = "A-1", .line_id = "1"}),
      DeterministicEventId(LineRevoked{.order_number = "A-1", .line_id = "1"}),
  };
  CHECK(ids.size() == 11);
}

}  // namespace
}  // namespace ledger::domain
