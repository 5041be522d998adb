// Helpers of the audit suite: the event store suite's temporary directories and scaling, a
// ledger data directory filled with realistic orders, and the log's RocksDB opened directly to
// damage it (tests/eventstore/raw_database.h).
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "tests/eventstore/raw_database.h"
#include "tests/eventstore/store_test_support.h"
#include "tests/projections/order_workload.h"

namespace ledger::audit_testing {

using eventstore::RecordedEvent;
using eventstore::StoreResult;
using eventstore::testing::IsSanitized;
using eventstore::testing::Scaled;
using eventstore::testing::TempDir;

// A data directory (log/ and state/ as ledgerd lays them out) with `orders` orders placed and
// taken through some fulfillment steps.
inline void FillOrders(eventstore::EventStore& store, size_t orders, uint64_t seed = 7) {
  eventstore::OrderCommandService service(store);
  // Order numbers of their own per seed: a second fill adds orders instead of repeating them.
  testing::OrderWorkload workload(service, seed, "S" + std::to_string(seed));
  for (size_t i = 0; i < orders; ++i) {
    const std::string order = workload.AddOrder();
    workload.Step(order);
    if (i % 3 == 0) workload.Step(order);
  }
  workload.AddOrphanPayment();
}

inline std::unique_ptr<eventstore::EventStore> MustOpen(const std::string& log_path) {
  auto store = eventstore::OpenRocksDbEventStore(log_path);
  INFO((store ? std::string() : store.error().ToString()));
  REQUIRE(store);
  return std::move(*store);
}

// The log's RocksDB opened directly, to damage it.
using RawLog = eventstore::testing::RawDatabase;

// The lines of `text`, without their newlines.
inline std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream input(text);
  std::string line;
  while (std::getline(input, line)) lines.push_back(line);
  return lines;
}

inline std::string JoinLines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

}  // namespace ledger::audit_testing
