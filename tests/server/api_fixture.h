// ApiFixture: the event store, every projection, LedgerApi and the HTTP server on a free
// loopback port, in a temporary data directory; no fulfillment. For tests of endpoints that need
// no LMS (subscriptions, metrics).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "eventstore/event_store.h"
#include "eventstore/state_store.h"
#include "projections/projection_runner.h"
#include "server/http_server.h"
#include "server/ledger_api.h"
#include "server/metrics.h"

namespace ledger::server {

class ApiFixture {
 public:
  // The API's options; http_metrics is filled in by the fixture.
  explicit ApiFixture(LedgerApiOptions options = {});
  ~ApiFixture();

  // Records payments for orders EDX-<first> .. EDX-<first + count - 1>, one event each.
  void Pay(int first, int count);

  uint16_t port() const { return server_->port(); }
  HttpServer& server() { return *server_; }
  eventstore::EventStore& store() { return *store_; }

 private:
  std::string data_dir_;
  std::unique_ptr<eventstore::EventStore> store_;
  std::unique_ptr<eventstore::StateStore> state_;
  std::vector<std::unique_ptr<projections::ProjectionRunner>> runners_;
  HttpMetrics http_metrics_;
  std::unique_ptr<LedgerApi> api_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace ledger::server
