// ledgerd: the ledger's server process.
//
// Until the HTTP API lands (issue "ledgerd and ledgerctl"), ledgerd opens its data directory,
// recovers the log, appends one demonstration order stream, reads it back and verifies the
// whole hash chain, then exits. The flags and the data directory are the ones the server keeps.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "server/data_dir.h"

namespace {

constexpr std::string_view kUsage = R"(usage: ledgerd [--data-dir DIR]

Opens the ledger in DIR (default ./data), captures a payment and places a demonstration order
through the command service, reads the order's stream back and verifies the log's hash chain.

  --data-dir DIR   where the ledger keeps its log (created if missing)
  --help           print this help
)";

using ledger::EventId;
using namespace ledger::eventstore;

// One demonstration order, placed the way a store places one: the payment is captured first.
std::vector<ledger::domain::Command> DemoOrder(const std::string& order_number, int64_t now_us) {
  using namespace ledger::domain;
  const Line seat{.line_id = "1",
                  .product_type = "Seat",
                  .sku = "8CF08E5",
                  .title = "Seat in edX Demonstration Course (verified)",
                  .quantity = 1,
                  .unit_price_minor = 4900,
                  .attributes = {{.name = "course_key", .value = "course-v1:edX+DemoX+Demo_Course"},
                                 {.name = "certificate_type", .value = "verified"}}};
  return {
      CapturePayment{.order_number = order_number,
                     .processor = "cybersource",
                     .reference = "demo-" + order_number,
                     .amount = {.minor_units = 4900, .currency = "USD"},
                     .card_type = "visa",
                     .card_last_digits = "1111",
                     .captured_at_us = now_us},
      PlaceOrder{.order_number = order_number,
                 .partner = "EDX",
                 .basket_id = 0,
                 .user = {.id = 1, .username = "edx", .email = "edx@example.com"},
                 .lines = {seat},
                 .shipping_method = "No shipping required",
                 .shipping_charge_minor = 0,
                 .billing_address = {.first_name = "Ada",
                                     .last_name = "Lovelace",
                                     .line1 = "141 Portland St",
                                     .line2 = "",
                                     .city = "Cambridge",
                                     .state = "MA",
                                     .postcode = "02139",
                                     .country = "US"},
                 .total_minor = 4900,
                 .currency = "USD",
                 .placed_at_us = now_us,
                 .synchronous = false},
  };
}

int Run(const std::string& data_dir) {
  std::filesystem::create_directories(data_dir);
  auto opened = OpenRocksDbEventStore(ledger::server::LogPath(data_dir));
  if (!opened) {
    std::fprintf(stderr, "ledgerd: %s\n", opened.error().ToString().c_str());
    return 1;
  }
  EventStore& store = **opened;
  const uint64_t head_before = store.HeadPosition();
  fmt::print("ledgerd: opened {} (head position {})\n", data_dir, head_before);

  const std::string order_number = fmt::format("EDX-{}", 100000 + head_before / 3 + 1);
  const std::string stream = ledger::domain::OrderStreamName(order_number);
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  OrderCommandService service(store);
  for (const auto& command : DemoOrder(order_number, now_us)) {
    auto handled = service.Handle(
        command, {.correlation_id = {}, .causation_id = {}, .actor = "ledgerd-demo"});
    if (!handled) {
      std::fprintf(stderr, "ledgerd: %s failed: %s\n",
                   std::string(ledger::domain::CommandTypeName(command)).c_str(),
                   handled.error().ToString().c_str());
      return 1;
    }
    fmt::print("{} {}: positions {}..{} (durable)\n", ledger::domain::CommandTypeName(command),
               order_number, handled->first_position, handled->last_position);
  }

  auto read = store.ReadStream(stream, Direction::kForward, 0, 100);
  if (!read) {
    std::fprintf(stderr, "ledgerd: read failed: %s\n", read.error().ToString().c_str());
    return 1;
  }
  for (const RecordedEvent& event : *read) {
    fmt::print("  position {:>6}  version {}  {:<16} {} bytes  hash {}...\n", event.position,
               event.version, event.event_type, event.payload.size(),
               ledger::ToHex(std::span<const uint8_t>(event.hash).first(8)));
  }
  auto report = store.Verify(1, store.HeadPosition());
  if (!report) {
    std::fprintf(stderr, "ledgerd: verify failed: %s\n", report.error().ToString().c_str());
    return 1;
  }
  if (!report->ok) {
    std::fprintf(stderr, "ledgerd: hash chain broken at position %llu: %s\n",
                 static_cast<unsigned long long>(report->first_bad_position),
                 report->problem.c_str());
    return 1;
  }
  fmt::print("verified the hash chain over positions 1..{} ({} events)\n", report->to_position,
             report->events_checked);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir = "data";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage.data(), stdout);
      return 0;
    }
    if (arg == "--data-dir" && i + 1 < argc) {
      data_dir = argv[++i];
    } else {
      std::fprintf(stderr, "ledgerd: unknown or incomplete argument '%s'\n\n%s", argv[i],
                   kUsage.data());
      return 2;
    }
  }
  return Run(data_dir);
}
