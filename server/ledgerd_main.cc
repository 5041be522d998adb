// ledgerd: the ledger's server process.
//
// Until the HTTP API lands (issue "ledgerd and ledgerctl"), ledgerd opens its data directory,
// recovers the log, appends one demonstration order stream, reads it back and verifies the
// whole hash chain, then exits. The flags and the data directory are the ones the server keeps.
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "eventstore/event_store.h"

namespace {

constexpr std::string_view kUsage = R"(usage: ledgerd [--data-dir DIR]

Opens the ledger in DIR (default ./data), appends a demonstration order, reads it back and
verifies the log's hash chain.

  --data-dir DIR   where the ledger keeps its log (created if missing)
  --help           print this help
)";

using ledger::EventId;
using namespace ledger::eventstore;

ledger::eventstore::NewEvent DemoEvent(std::string_view type, std::string_view order_number,
                                       std::string_view what) {
  return NewEvent{.event_id = EventId::FromName(type, order_number),
                  .event_type = std::string(type),
                  .payload = fmt::format("{} for {}", what, order_number),
                  .correlation_id = EventId::FromName("order", order_number),
                  .causation_id = {},
                  .actor = "ledgerd-demo",
                  .schema_version = 1};
}

int Run(const std::string& data_dir) {
  auto opened = OpenRocksDbEventStore(data_dir);
  if (!opened) {
    std::fprintf(stderr, "ledgerd: %s\n", opened.error().ToString().c_str());
    return 1;
  }
  EventStore& store = **opened;
  const uint64_t head_before = store.HeadPosition();
  fmt::print("ledgerd: opened {} (head position {})\n", data_dir, head_before);

  const std::string order_number = fmt::format("EDX-{}", 100000 + head_before / 3 + 1);
  const std::string stream = "order-" + order_number;
  const NewEvent events[] = {
      DemoEvent("PaymentCaptured", order_number, "49.00 USD captured by cybersource"),
      DemoEvent("OrderCreated", order_number, "one Seat line, total 49.00 USD"),
      DemoEvent("PostCheckout", order_number, "fulfillment started"),
  };
  auto appended = store.Append(stream, ExpectedVersion::NoStream(), events);
  if (!appended) {
    std::fprintf(stderr, "ledgerd: append failed: %s\n", appended.error().ToString().c_str());
    return 1;
  }
  fmt::print("appended {} at positions {}..{} (durable)\n", stream, appended->first_position,
             appended->last_position);

  auto read = store.ReadStream(stream, Direction::kForward, 0, 100);
  if (!read) {
    std::fprintf(stderr, "ledgerd: read failed: %s\n", read.error().ToString().c_str());
    return 1;
  }
  for (const RecordedEvent& event : *read) {
    fmt::print("  position {:>6}  version {}  {:<16} {}  hash {}...\n", event.position,
               event.version, event.event_type, event.payload,
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
