#include "process_manager_support.h"

#include <catch2/catch.hpp>

namespace ledger::fulfillment::testing {

Router DefaultRouter(const std::string& lms_url, std::string api_key, int64_t timeout_ms) {
  auto client = std::make_shared<HttpClient>();
  const LmsSettings settings{.lms_url = lms_url,
                             .api_key = std::move(api_key),
                             .timeout_ms = timeout_ms,
                             .connect_timeout_ms = timeout_ms};
  std::vector<std::unique_ptr<Module>> modules;
  modules.push_back(MakeEnrollmentModule(settings, client));
  modules.push_back(MakeCourseEntitlementModule(settings, client));
  modules.push_back(MakeEnrollmentCodeModule());
  modules.push_back(MakeCouponModule());
  modules.push_back(MakeDonationModule());
  return Router(std::move(modules));
}

domain::Line Seat(std::string line_id, std::string course_key) {
  return domain::Line{.line_id = std::move(line_id),
                      .product_type = "Seat",
                      .sku = "SEAT",
                      .title = "Seat",
                      .quantity = 1,
                      .unit_price_minor = 4900,
                      .attributes = {{.name = "course_key", .value = std::move(course_key)},
                                     {.name = "certificate_type", .value = "verified"}}};
}

domain::Line Entitlement(std::string line_id, std::string course_uuid) {
  return domain::Line{.line_id = std::move(line_id),
                      .product_type = "Course Entitlement",
                      .sku = "ENT",
                      .title = "Entitlement",
                      .quantity = 1,
                      .unit_price_minor = 9900,
                      .attributes = {{.name = "course_uuid", .value = std::move(course_uuid)},
                                     {.name = "certificate_type", .value = "verified"}}};
}

domain::Line Local(std::string line_id, std::string product_type, int64_t quantity) {
  return domain::Line{.line_id = std::move(line_id),
                      .product_type = std::move(product_type),
                      .sku = "LOCAL",
                      .title = "Local product",
                      .quantity = quantity,
                      .unit_price_minor = 1000,
                      .attributes = {}};
}

void PlaceOrder(eventstore::OrderCommandService& service, const std::string& order_number,
                std::vector<domain::Line> lines, int64_t now_us) {
  int64_t total = 0;
  for (const auto& line : lines) total += line.quantity * line.unit_price_minor;
  const eventstore::EventMetadata metadata{
      .correlation_id = {}, .causation_id = {}, .actor = "test"};
  domain::CapturePayment capture;
  capture.order_number = order_number;
  capture.processor = "cybersource";
  capture.reference = "tx-" + order_number;
  capture.amount.minor_units = total;
  capture.amount.currency = "USD";
  capture.captured_at_us = now_us;
  auto captured = service.Handle(capture, metadata);
  if (!captured) FAIL(captured.error().ToString());
  domain::PlaceOrder place;
  place.order_number = order_number;
  place.partner = "EDX";
  place.user.id = 7;
  place.user.username = "alice";
  place.user.email = "alice@example.com";
  place.lines = std::move(lines);
  place.shipping_method = "No shipping required";
  place.billing_address.country = "US";
  place.total_minor = total;
  place.currency = "USD";
  place.placed_at_us = now_us;
  auto placed = service.Handle(place, metadata);
  if (!placed) FAIL(placed.error().ToString());
}

std::map<std::string, int> EventCounts(eventstore::EventStore& store,
                                       const std::string& order_number) {
  std::map<std::string, int> counts;
  auto events = store.ReadStream(domain::OrderStreamName(order_number),
                                 eventstore::Direction::kForward, 0, 10'000);
  REQUIRE(events.has_value());
  for (const auto& event : *events) ++counts[event.event_type];
  return counts;
}

}  // namespace ledger::fulfillment::testing
