#include "process_manager_support.h"

#include <catch2/catch.hpp>

#include "tests/support/sample_orders.h"

namespace ledger::fulfillment::testing {

Router DefaultRouter(const std::string& lms_url, std::string api_key, int64_t timeout_ms,
                     std::shared_ptr<HttpClient> client) {
  if (client == nullptr) client = std::make_shared<HttpClient>();
  const LmsSettings settings{.lms_url = lms_url,
                             .api_key = std::move(api_key),
                             .timeout_ms = timeout_ms,
                             .connect_timeout_ms = timeout_ms};
  std::vector<std::unique_ptr<Module>> modules;
  modules.push_back(MakeEnrollmentModule(settings, client));
  modules.push_back(MakeCourseEntitlementModule(settings, client));
  modules.push_back(MakeEnrollmentCodeModule(std::string(ledger::testing::kTestCodeSecret)));
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
  const eventstore::EventMetadata metadata{
      .correlation_id = {}, .causation_id = {}, .actor = "test"};
  auto captured =
      service.Handle(ledger::testing::SampleCapture(
                         order_number, ledger::testing::SumOfLines(lines), "USD", now_us),
                     metadata);
  if (!captured) FAIL(captured.error().ToString());
  auto placed = service.Handle(
      ledger::testing::SamplePlaceOrder(order_number, std::move(lines), "USD", now_us), metadata);
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
