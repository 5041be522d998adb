#include "order_workload.h"

#include "tests/support/sample_orders.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace ledger::testing {

namespace {

const char* const kProductTypes[] = {"Seat", "Course Entitlement", "Enrollment Code", "Coupon",
                                     "Donation"};

}  // namespace

OrderWorkload::OrderWorkload(eventstore::OrderCommandService& service, uint64_t seed,
                             std::string order_prefix)
    : service_(service), random_(seed), prefix_(std::move(order_prefix)) {}

void OrderWorkload::Handle(const domain::Command& command, bool must_succeed) {
  now_us_ += static_cast<int64_t>(1000 + random_() % 5000);
  auto result =
      service_.Handle(command, {.correlation_id = {}, .causation_id = {}, .actor = "workload"});
  if (!result && (must_succeed || result.error().store_error)) {
    std::fprintf(stderr, "workload: %s failed: %s\n",
                 std::string(domain::CommandTypeName(command)).c_str(),
                 result.error().ToString().c_str());
    std::abort();  // A test workload that cannot proceed is a broken test, not a result.
  }
}

std::string OrderWorkload::AddOrder() {
  const std::string order_number = fmt::format("{}-{}", prefix_, next_number_++);
  const size_t line_count = 1 + random_() % 3;
  std::vector<domain::Line> lines;
  int64_t total = 0;
  for (size_t i = 0; i < line_count; ++i) {
    const int64_t quantity = 1 + static_cast<int64_t>(random_() % 3);
    const int64_t unit_price = 1000 + static_cast<int64_t>(random_() % 40) * 100;
    lines.push_back(
        domain::Line{.line_id = std::to_string(i + 1),
                     .product_type = kProductTypes[random_() % std::size(kProductTypes)],
                     .sku = fmt::format("SKU-{}", random_() % 100),
                     .title = "Demo course",
                     .quantity = quantity,
                     .unit_price_minor = unit_price,
                     .attributes = {{.name = "course_key", .value = "course-v1:edX+Demo+2026"},
                                    {.name = "certificate_type", .value = "verified"}}});
    total += quantity * unit_price;
  }
  const int64_t user_id = static_cast<int64_t>(1 + random_() % 50);
  Handle(domain::CapturePayment{.order_number = order_number,
                                .processor = "cybersource",
                                .reference = "tx-" + order_number,
                                .amount = {.minor_units = total, .currency = "USD"},
                                .card_type = "visa",
                                .card_last_digits = "1111",
                                .captured_at_us = now_us_},
         /*must_succeed=*/true);
  domain::PlaceOrder place =
      SamplePlaceOrder(order_number, std::move(lines), "USD", now_us_, SampleLearner(user_id));
  place.partner = prefix_;
  Handle(place, /*must_succeed=*/true);
  orders_.push_back(order_number);
  const size_t steps = random_() % 4;
  for (size_t i = 0; i < steps; ++i) Step(order_number);
  return order_number;
}

void OrderWorkload::Step(const std::string& order_number) {
  const std::string line_id = std::to_string(1 + random_() % 3);
  switch (random_() % 6) {
    case 0:
    case 1:
      Handle(domain::RecordLineFulfilled{.order_number = order_number,
                                         .line_id = line_id,
                                         .module = "workload",
                                         .external_reference = "ref-" + line_id,
                                         .codes = {},
                                         .fulfilled_at_us = now_us_},
             false);
      break;
    case 2:
      Handle(domain::RecordFulfillmentFailed{.order_number = order_number,
                                             .line_id = line_id,
                                             .module = "workload",
                                             .kind = static_cast<domain::FailureKind>(
                                                 1 + random_() % 4),
                                             .message = "the LMS said no",
                                             .retryable = true,
                                             .failed_at_us = now_us_},
             false);
      break;
    case 3:
      Handle(domain::RequestFulfillmentRetry{.order_number = order_number,
                                             .requested_by = "ops",
                                             .reason = "retry",
                                             .line_ids = {},
                                             .automatic = false,
                                             .requested_at_us = now_us_},
             false);
      break;
    case 4:
      Handle(domain::RecordLineRevoked{.order_number = order_number,
                                       .line_id = line_id,
                                       .module = "workload",
                                       .refund_reference = "refund-" + line_id,
                                       .revoked_at_us = now_us_},
             false);
      break;
    default:
      Handle(domain::RecordRevocationFailed{.order_number = order_number,
                                            .line_id = line_id,
                                            .module = "workload",
                                            .kind = domain::FailureKind::kServer,
                                            .message = "HTTP 500",
                                            .refund_reference = "refund-" + line_id,
                                            .failed_at_us = now_us_},
             false);
      break;
  }
}

std::string OrderWorkload::AddOrphanPayment() {
  const std::string order_number = fmt::format("{}-{}", prefix_, next_number_++);
  Handle(domain::CapturePayment{.order_number = order_number,
                                .processor = "paypal",
                                .reference = "orphan-" + order_number,
                                .amount = {.minor_units = 4900, .currency = "USD"},
                                .card_type = "",
                                .card_last_digits = "",
                                .captured_at_us = now_us_},
         true);
  return order_number;
}

}  // namespace ledger::testing
