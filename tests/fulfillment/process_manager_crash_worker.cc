// The process manager crash test's child process (see process_manager_crash_test.cc): opens the
// ledger, runs a ProcessManager whose LMS modules call the stand-in living in the test process,
// and places orders of mixed lines (Seat, Course Entitlement, Enrollment Code, Coupon, Donation)
// through the command service until it is killed.
//
// Usage: process_manager_crash_worker <log dir> <state dir> <lms url> <api key> <seed> <prefix>
//        <lms timeout ms>
// Writes "ready\n" on stdout once the manager runs; order numbers are "<prefix>-<n>".
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "eventstore/state_store.h"
#include "fulfillment/http_client.h"
#include "fulfillment/modules.h"
#include "fulfillment/process_manager.h"
#include "fulfillment/router.h"
#include "tests/support/sample_orders.h"

namespace ledger::fulfillment {
namespace {

constexpr int64_t kUnitPriceMinor = 1'000;

Router MakeRouter(const std::string& lms_url, const std::string& api_key, int64_t timeout_ms) {
  auto client = std::make_shared<HttpClient>();
  const LmsSettings settings{.lms_url = lms_url,
                             .api_key = api_key,
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

// One to four lines; most orders have at least one line that calls the LMS.
std::vector<domain::Line> RandomLines(std::mt19937_64& random, const std::string& order_number) {
  static const char* const kProductTypes[] = {"Seat", "Course Entitlement", "Enrollment Code",
                                              "Coupon", "Donation"};
  const size_t count = 1 + random() % 4;
  std::vector<domain::Line> lines;
  for (size_t i = 0; i < count; ++i) {
    // Half of the first lines are seats, so the LMS sees a steady load.
    const size_t kind = i == 0 && random() % 2 == 0 ? 0 : random() % std::size(kProductTypes);
    domain::Line line{.line_id = std::to_string(i + 1),
                      .product_type = kProductTypes[kind],
                      .sku = fmt::format("SKU-{}", kind),
                      .title = "Crash test product",
                      .quantity = 1,
                      .unit_price_minor = kUnitPriceMinor,
                      .attributes = {}};
    if (kind == 0) {
      line.attributes = {
          {.name = "course_key", .value = fmt::format("course-v1:edX+{}+{}", order_number, i)},
          {.name = "certificate_type", .value = "verified"}};
    } else if (kind == 1) {
      line.attributes = {
          {.name = "course_uuid", .value = fmt::format("uuid-{}-{}", order_number, i)},
          {.name = "certificate_type", .value = "verified"}};
    } else if (kind == 2) {
      line.quantity = 1 + static_cast<int64_t>(random() % 4);
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

// A capture and a placement; false when either is refused or fails (the test then sees an order
// that was never placed, which it ignores).
bool PlaceOrder(eventstore::OrderCommandService& service, const std::string& order_number,
                std::vector<domain::Line> lines) {
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const eventstore::EventMetadata metadata{
      .correlation_id = {}, .causation_id = {}, .actor = "crash-worker"};
  const domain::CapturePayment capture = ledger::testing::SampleCapture(
      order_number, ledger::testing::SumOfLines(lines), "USD", now_us);
  if (auto captured = service.Handle(capture, metadata); !captured) {
    std::fprintf(stderr, "worker: capture %s: %s\n", order_number.c_str(),
                 captured.error().ToString().c_str());
    return false;
  }
  const domain::PlaceOrder place =
      ledger::testing::SamplePlaceOrder(order_number, std::move(lines), "USD", now_us);
  if (auto placed = service.Handle(place, metadata); !placed) {
    std::fprintf(stderr, "worker: place %s: %s\n", order_number.c_str(),
                 placed.error().ToString().c_str());
    return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr,
                 "usage: %s <log dir> <state dir> <lms url> <api key> <seed> <prefix> "
                 "<lms timeout ms>\n",
                 argv[0]);
    return 2;
  }
  auto store = eventstore::OpenRocksDbEventStore(argv[1]);
  auto state = eventstore::OpenRocksDbStateStore(argv[2]);
  if (!store || !state) {
    std::fprintf(stderr, "worker: cannot open the ledger\n");
    return 1;
  }
  const Router router = MakeRouter(argv[3], argv[4], std::strtoll(argv[7], nullptr, 10));
  // Fast retries, so that failed lines are retried (and retries are in flight) within a round.
  ProcessManagerOptions options;
  options.idle_wait = std::chrono::milliseconds(5);
  options.retry = {
      .first_delay_us = 30'000, .multiplier = 2, .retries_max = 11, .delay_max_us = 300'000};
  auto manager = ProcessManager::Open(**store, **state, router, options);
  if (!manager) {
    std::fprintf(stderr, "worker: %s\n", manager.error().ToString().c_str());
    return 1;
  }
  (*manager)->Start();
  eventstore::OrderCommandService service(**store);
  std::mt19937_64 random(std::strtoull(argv[5], nullptr, 10));
  const std::string prefix = argv[6];
  std::fprintf(stdout, "ready\n");
  std::fflush(stdout);
  for (uint64_t n = 0;; ++n) {  // Until SIGKILL.
    const std::string order_number = fmt::format("{}-{}", prefix, n);
    PlaceOrder(service, order_number, RandomLines(random, order_number));
    // Refunds: every other order, line 1 of the order placed three before is revoked (when it
    // is fulfilled by then; else the request is refused). Not waited for: the manager carries
    // the request out, and a kill may come before, during or after its call.
    if (n >= 3 && n % 2 == 0) {
      const std::string refunded = fmt::format("{}-{}", prefix, n - 3);
      (void)(*manager)->Revoke(refunded, "1", "refund-" + refunded, "crash-worker",
                               std::chrono::milliseconds(0));
    }
  }
}

}  // namespace
}  // namespace ledger::fulfillment

int main(int argc, char** argv) { return ledger::fulfillment::Main(argc, argv); }
