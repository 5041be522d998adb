// A ledger on disk for projection tests: the event store and the state store in one temporary
// directory, closable and reopenable as a restarted process would.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "domain/commands.h"
#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "eventstore/state_store.h"
#include "projections/order_status_projection.h"
#include "projections/projection_runner.h"
#include "tests/eventstore/store_test_support.h"

namespace ledger::testing {

// Catches the runner up to the head; a failure fails the test.
inline void MustCatchUp(projections::ProjectionRunner& runner) {
  auto caught_up = runner.CatchUp();
  if (!caught_up) FAIL(caught_up.error().ToString());
}

// Every row of the runner's active generation, indexes included, by key relative to it.
inline std::map<std::string, std::string> AllRows(projections::ProjectionRunner& runner) {
  std::map<std::string, std::string> rows;
  REQUIRE(runner.View()
              .Scan("", "", false,
                    [&](std::string_view key, std::string_view value) {
                      rows.emplace(key, value);
                      return true;
                    })
              .has_value());
  return rows;
}

class LedgerFixture {
 public:
  explicit LedgerFixture(eventstore::RocksDbOptions options = {}) : options_(std::move(options)) {
    Open();
  }

  eventstore::EventStore& store() { return *store_; }
  eventstore::StateStore& state() { return *state_; }
  eventstore::OrderCommandService& service() { return *service_; }
  const eventstore::testing::TempDir& dir() const { return dir_; }
  std::string log_path() const { return dir_.Child("log"); }
  std::string state_path() const { return dir_.Child("state"); }

  void Close() {
    service_.reset();
    state_.reset();
    store_.reset();
  }
  void Open() {
    auto store = eventstore::OpenRocksDbEventStore(log_path(), options_);
    REQUIRE(store.has_value());
    store_ = std::move(*store);
    auto state = eventstore::OpenRocksDbStateStore(state_path());
    REQUIRE(state.has_value());
    state_ = std::move(*state);
    service_ = std::make_unique<eventstore::OrderCommandService>(*store_);
  }

  // A runner of projection P on this ledger (not started).
  template <typename P>
  std::unique_ptr<projections::ProjectionRunner> Runner(projections::RunnerOptions options = {}) {
    auto runner = projections::ProjectionRunner::Open(
        *store_, *state_, [] { return std::make_unique<P>(); }, options);
    REQUIRE(runner.has_value());
    return std::move(*runner);
  }
  std::unique_ptr<projections::ProjectionRunner> OrderStatusRunner(
      projections::RunnerOptions options = {}) {
    return Runner<projections::OrderStatusProjection>(options);
  }

  // Handles `command` through the service as actor "test"; a rejection fails the test.
  eventstore::CommandOutcome MustHandle(const domain::Command& command) {
    auto result =
        service_->Handle(command, {.correlation_id = {}, .causation_id = {}, .actor = "test"});
    INFO(domain::CommandTypeName(command));
    if (!result) FAIL(result.error().ToString());
    return std::move(result).value();
  }

 private:
  eventstore::testing::TempDir dir_{"projections"};
  eventstore::RocksDbOptions options_;
  std::unique_ptr<eventstore::EventStore> store_;
  std::unique_ptr<eventstore::StateStore> state_;
  std::unique_ptr<eventstore::OrderCommandService> service_;
};

}  // namespace ledger::testing
