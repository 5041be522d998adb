// Builders for the domain tests: a standard basket, captures, and Given/When helpers that fold
// events and decide commands, so that each scenario reads as Given / When / Then.
#pragma once

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "domain/commands.h"
#include "domain/decide.h"
#include "domain/events.h"
#include "domain/order_state.h"

namespace ledger::domain::testing {

// The order number the standard basket generates: "edx", basket 9.
inline const std::string kOrderNumber = "EDX-100009";
// 2023-11-14T22:13:20Z: any fixed time will do; the domain never reads a clock.
inline constexpr int64_t kT0Us = 1'700'000'000'000'000;

inline Line MakeLine(std::string line_id, std::string product_type, int64_t quantity,
                     int64_t unit_price_minor) {
  Line line;
  line.line_id = std::move(line_id);
  line.product_type = std::move(product_type);
  line.sku = "SKU-" + line.line_id;
  line.title = "Title of " + line.line_id;
  line.quantity = quantity;
  line.unit_price_minor = unit_price_minor;
  return line;
}

// A seat at 49.00 USD and a course entitlement at 100.00 USD, no shipping: total 149.00 USD.
inline PlaceOrder StandardPlacement() {
  PlaceOrder place;
  place.partner = "edx";
  place.basket_id = 9;
  place.user = User{42, "learner", "learner@example.com"};
  Line seat = MakeLine("1", "Seat", 1, 4900);
  seat.attributes = {{"course_key", "course-v1:edX+DemoX+Demo"}, {"certificate_type", "verified"}};
  place.lines = {seat, MakeLine("2", "Course Entitlement", 1, 10000)};
  place.shipping_method = "No shipping required";
  place.billing_address.first_name = "Ada";
  place.billing_address.country = "GB";
  place.total_minor = 14900;
  place.currency = "USD";
  place.placed_at_us = kT0Us + 1'000'000;
  return place;
}

inline CapturePayment Capture(std::string reference, int64_t minor_units,
                              std::string currency = "USD") {
  CapturePayment capture;
  capture.order_number = kOrderNumber;
  capture.processor = "cybersource";
  capture.reference = std::move(reference);
  capture.amount = Money{minor_units, std::move(currency)};
  capture.card_type = "visa";
  capture.card_last_digits = "1111";
  capture.captured_at_us = kT0Us;
  return capture;
}

inline RecordLineFulfilled Fulfilled(std::string line_id) {
  RecordLineFulfilled command;
  command.order_number = kOrderNumber;
  command.line_id = std::move(line_id);
  command.module = "EnrollmentFulfillmentModule";
  command.fulfilled_at_us = kT0Us + 2'000'000;
  return command;
}

inline RecordFulfillmentFailed Failed(std::string line_id, FailureKind kind,
                                      bool retryable = true) {
  RecordFulfillmentFailed command;
  command.order_number = kOrderNumber;
  command.line_id = std::move(line_id);
  command.module = "EnrollmentFulfillmentModule";
  command.kind = kind;
  command.message = "LMS said no";
  command.retryable = retryable;
  command.failed_at_us = kT0Us + 2'000'000;
  return command;
}

inline RequestFulfillmentRetry Retry(std::vector<std::string> line_ids = {}) {
  RequestFulfillmentRetry command;
  command.order_number = kOrderNumber;
  command.requested_by = "staff";
  command.reason = "LMS is back";
  command.line_ids = std::move(line_ids);
  command.requested_at_us = kT0Us + 3'000'000;
  return command;
}

// The retry the process manager asks for when a failed line's backoff is over.
inline RequestFulfillmentRetry AutomaticRetry(std::vector<std::string> line_ids) {
  RequestFulfillmentRetry command = Retry(std::move(line_ids));
  command.requested_by = "process-manager";
  command.reason = "automatic retry after a retryable failure";
  command.automatic = true;
  return command;
}

inline RecordLineRevoked Revoked(std::string line_id) {
  RecordLineRevoked command;
  command.order_number = kOrderNumber;
  command.line_id = std::move(line_id);
  command.module = "EnrollmentFulfillmentModule";
  command.refund_reference = "refund-1";
  command.revoked_at_us = kT0Us + 4'000'000;
  return command;
}

inline RecordRevocationFailed RevocationFailedCommand(std::string line_id) {
  RecordRevocationFailed command;
  command.order_number = kOrderNumber;
  command.line_id = std::move(line_id);
  command.module = "EnrollmentFulfillmentModule";
  command.kind = FailureKind::kNetwork;
  command.message = "LMS unreachable";
  command.refund_reference = "refund-1";
  command.failed_at_us = kT0Us + 4'000'000;
  return command;
}

inline RequestRevocation RevocationRequest(std::string line_id) {
  RequestRevocation command;
  command.order_number = kOrderNumber;
  command.line_id = std::move(line_id);
  command.refund_reference = "refund-1";
  command.requested_by = "ops:grace";
  command.requested_at_us = kT0Us + 3'500'000;
  return command;
}

// The request the process manager writes when a failed revocation's backoff is over.
inline RequestRevocation AutomaticRevocationRequest(std::string line_id) {
  RequestRevocation command = RevocationRequest(std::move(line_id));
  command.requested_by = "process-manager";
  command.automatic = true;
  return command;
}

// An order's life so far: the events of its stream and their fold. Given builds it; When runs a
// command against it and, when accepted, appends the events as the command service would.
class History {
 public:
  History() = default;

  // Decides and folds each command in turn; each must be accepted.
  static History Given(const std::vector<Command>& commands) {
    History history;
    for (const Command& command : commands) {
      Decision decision = Decide(history.state_, command);
      INFO(CommandTypeName(command));
      REQUIRE(decision.has_value());
      history.Append(*decision);
    }
    return history;
  }

  Decision When(const Command& command) {
    Decision decision = Decide(state_, command);
    if (decision.has_value()) Append(*decision);
    return decision;
  }

  // The rejection of a command that must be rejected, leaving the history as it was.
  Rejection Rejected(const Command& command) {
    const OrderState before = state_;
    Decision decision = When(command);
    REQUIRE_FALSE(decision.has_value());
    REQUIRE(state_ == before);
    return decision.error();
  }

  const OrderState& state() const { return state_; }
  const std::vector<Event>& events() const { return events_; }
  const LineState& line(std::string_view line_id) const {
    const LineState* line = state_.FindLine(line_id);
    REQUIRE(line != nullptr);
    return *line;
  }

 private:
  void Append(const std::vector<Event>& events) {
    for (const Event& event : events) {
      events_.push_back(event);
      state_ = Evolve(std::move(state_), event);
    }
  }

  OrderState state_;
  std::vector<Event> events_;
};

// The standard order, paid in full and placed.
inline History PlacedHistory() {
  return History::Given({Capture("txn-1", 14900), StandardPlacement()});
}

template <typename T>
const T& Only(const Decision& decision) {
  REQUIRE(decision.has_value());
  REQUIRE(decision->size() == 1);
  REQUIRE(std::holds_alternative<T>(decision->front()));
  return std::get<T>(decision->front());
}

}  // namespace ledger::domain::testing
