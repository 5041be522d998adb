// ApiFixture: the event store, every projection, LedgerApi and the HTTP server on a free
// loopback port, in a temporary data directory; no fulfillment. For tests of endpoints that need
// no LMS (subscriptions, metrics).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/event_store.h"
#include "eventstore/state_store.h"
#include "projections/projection_runner.h"
#include "server/http_server.h"
#include "server/ledger_api.h"
#include "server/metrics.h"

namespace ledger::server {

// A fresh, empty directory under $LEDGER_TEST_TMP (else /tmp), unique to this call.
std::string FreshTestDataDir(std::string_view prefix);

// A fresh directory (FreshTestDataDir) that is removed with everything in it when this ends.
class TestDataDir {
 public:
  explicit TestDataDir(std::string_view prefix) : path_(FreshTestDataDir(prefix)) {}
  ~TestDataDir();
  TestDataDir(const TestDataDir&) = delete;
  TestDataDir& operator=(const TestDataDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The event store and the state store in `data_dir` (laid out as ledgerd lays it out), with
// every default projection running; the projections stop when it ends.
class LedgerStores {
 public:
  explicit LedgerStores(const std::string& data_dir);
  ~LedgerStores();
  LedgerStores(const LedgerStores&) = delete;
  LedgerStores& operator=(const LedgerStores&) = delete;

  eventstore::EventStore& store() { return *store_; }
  eventstore::StateStore& state() { return *state_; }
  std::vector<projections::ProjectionRunner*> runners() const;

 private:
  std::unique_ptr<eventstore::EventStore> store_;
  std::unique_ptr<eventstore::StateStore> state_;
  std::vector<std::unique_ptr<projections::ProjectionRunner>> runners_;
};

class ApiFixture {
 public:
  // The API's options; http_metrics is filled in by the fixture.
  explicit ApiFixture(LedgerApiOptions options = {});
  ~ApiFixture();

  // Records payments for orders EDX-<first> .. EDX-<first + count - 1>, one event each.
  void Pay(int first, int count);

  uint16_t port() const { return server_->port(); }
  HttpServer& server() { return *server_; }
  eventstore::EventStore& store() { return stores_.store(); }

 private:
  TestDataDir data_dir_;  // First: removed after everything in it is closed.
  LedgerStores stores_;
  HttpMetrics http_metrics_;
  std::unique_ptr<LedgerApi> api_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace ledger::server
