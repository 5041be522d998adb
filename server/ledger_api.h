// LedgerApi: the ledger's HTTP/JSON API, as handlers on a Router (server/http_server.h).
//
// Bodies are JSON objects; amounts cross as decimal strings ("49.00") in the currency's minor
// digits; times as RFC 3339 UTC ("2026-11-22T12:00:00.000000Z"). Every error is
// {"error": {"code": "<stable snake_case name>", "message": "..."}}.
//
//   POST /v1/payments                 201 {position, order_number, excess}; a repeat: 200, same.
//   POST /v1/orders[?fulfillment=sync|async]
//                                     201 the order; a repeat: 200 the same order. With sync
//                                     (or mode = "sync" in the configuration) the answer waits
//                                     up to the sync timeout for fulfillment and says
//                                     "fulfillment": "settled" or "pending".
//   GET  /v1/orders/{number}[?min_position=P][?as_of=P|RFC3339]
//                                     the order status projection's row. min_position waits up
//                                     to min_position_wait_ms for the projection to reach P and
//                                     answers 504 projection_behind if it does not. as_of folds
//                                     the order's stream from the log up to a position (or the
//                                     last position committed at a time); a position past the
//                                     head is 400 (it has no fixed answer yet).
//   GET  /v1/orders/{number}/events   the order's stream: position, version, type, recorded_at,
//                                     hash (hex), data.
//   POST /v1/orders/{number}/fulfill  202 a manual retry was recorded; 404 order_not_found,
//                                     409 nothing_to_fulfill.
//   POST /v1/orders/{number}/lines/{line_id}/revoke   {"refund_reference"?, "requested_by"?}:
//                                     records RevocationRequested and waits up to the sync
//                                     timeout for the process manager's outcome: 200 the line
//                                     (Revoked or Revocation Error), 202 the line with its
//                                     revocation still pending.
//   GET  /v1/orders?status=S|user=U|placed_from=D&placed_to=D[&limit=N][&cursor=C]
//                                     a page of orders from the order status projection: by
//                                     status ("Open", "Complete", "Fulfillment Error",
//                                     "Refunded", or snake_case), oldest in it first; by user id,
//                                     newest first; placed in a range of UTC days (YYYY-MM-DD)
//                                     or RFC 3339 times, both ends included, newest first (not
//                                     with status or user); else all, newest first. {orders,
//                                     next_cursor ("" at the end), projection_position}. A
//                                     cursor from another list, or a range that ends before it
//                                     starts, is 400.
//   GET  /v1/events?from=P[&limit=N]  a page of the whole log: {events, next_position,
//                                     head_position}; each event as in .../events plus stream.
//   GET  /v1/payments/orphans[?min_age_s=S][&limit=N][&cursor=C]
//                                     captures whose order was never placed, oldest first.
//   GET  /v1/payments/excess[?limit=N][&cursor=C]
//                                     orders paid more than once or after placement.
//   GET  /v1/revenue?from=YYYY-MM-DD&to=YYYY-MM-DD
//                                     per UTC day and currency: captured, refunded, counts;
//                                     from after to is 400.
//   GET  /v1/projections              every projection: checkpoint, lag, generation, rebuild.
//   POST /v1/projections/{name}/rebuild  202 an online rebuild started; 404 unknown name,
//                                     409 rebuild_running.
//   GET  /v1/subscribe?from=P[&stream_prefix=S][&types=T1,T2]
//                                     server-sent events, catch-up then live (see
//                                     server/event_stream.h); Last-Event-ID resumes after it.
//   GET  /healthz                     projection checkpoints and lags, the process manager's.
//   GET  /metrics                     Prometheus text (server/metrics.h lists the families).
//   GET  /v1/whoami                   the token's name and roles (any valid token).
//
// Access (server/auth.h): POST payments and orders need the writer role; fulfill, revoke and
// rebuild need ops; every GET needs reader, ops or auditor; /healthz and /metrics are open (they
// carry counts, no business data).
//
// Statuses: malformed JSON, wrong types, unknown or missing fields, bad amounts or currency, and
// every rejection of the command alone: 400. Rejections against the order's state: 404
// (order_not_found, unknown_line), 409 (duplicate, conflicts), 422 (payment_missing,
// payment_short, currency_mismatch). Store failures: 503 (retryable) or 500. The table is
// RejectionStatus in ledger_api.cc.
//
// Thread safety: handlers may run concurrently; everything they touch is thread-safe.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "fulfillment/process_manager.h"
#include "projections/projection_runner.h"
#include "server/auth.h"
#include "server/http_server.h"
#include "server/metrics.h"

namespace ledger::server {

struct LedgerApiOptions {
  // Whether POST /v1/orders waits for fulfillment when the request does not say.
  bool fulfillment_sync_default = false;
  int64_t sync_timeout_ms = 10'000;
  // Bound on a GET's wait for ?min_position.
  int64_t min_position_wait_ms = 5'000;
  // Events of one stream answered by GET .../events at most.
  size_t stream_events_max = 10'000;
  // How often a caught-up GET /v1/subscribe sends a keep-alive comment.
  int64_t subscribe_heartbeat_ms = 15'000;
  // Now, in microseconds since the Unix epoch; the system clock when empty.
  std::function<int64_t()> clock_us{};
  // Checks every endpoint but /healthz for a token with a fitting role (server/auth.h); null:
  // no checks (in-process tests only). Must outlive the API.
  const Authenticator* auth = nullptr;
  // Written into GET /metrics when set: the HTTP server's request metrics, and whatever else
  // the process runs (the server's connections, a publisher). Must outlive the API.
  const HttpMetrics* http_metrics = nullptr;
  std::function<void(PrometheusText&)> extra_metrics{};
  // Adds fields to GET /healthz's answer (the JetStream publisher's detail).
  std::function<void(boost::json::object&)> extra_health{};
};

class EventStreamHub;

class LedgerApi {
 public:
  // `runners` must include the order_status projection's. `process_manager` may be null: the
  // fulfillment endpoints then answer 503 fulfillment_unavailable. Everything passed must
  // outlive the API and the server that calls it.
  LedgerApi(eventstore::EventStore& store, std::vector<projections::ProjectionRunner*> runners,
            fulfillment::ProcessManager* process_manager, LedgerApiOptions options = {});
  // Stop the HTTP server first: its streams refer to the API.
  ~LedgerApi();

  // Adds every endpoint to `router`; the handlers refer to this object.
  void Register(Router& router);

 private:
  HttpServerResponse PostPayment(const HttpServerRequest& request);
  HttpServerResponse PostOrder(const HttpServerRequest& request);
  HttpServerResponse GetOrder(const HttpServerRequest& request);
  HttpServerResponse GetOrderAsOf(const HttpServerRequest& request, std::string_view as_of);
  HttpServerResponse GetOrderEvents(const HttpServerRequest& request);
  HttpServerResponse PostFulfill(const HttpServerRequest& request);
  HttpServerResponse PostRevoke(const HttpServerRequest& request);
  HttpServerResponse GetHealth(const HttpServerRequest& request);
  HttpServerResponse ListOrders(const HttpServerRequest& request);
  HttpServerResponse GetEvents(const HttpServerRequest& request);
  HttpServerResponse GetProjections(const HttpServerRequest& request);
  HttpServerResponse PostRebuild(const HttpServerRequest& request);
  HttpServerResponse ListOrphans(const HttpServerRequest& request);
  HttpServerResponse ListExcess(const HttpServerRequest& request);
  HttpServerResponse GetRevenue(const HttpServerRequest& request);
  HttpServerResponse Subscribe(const HttpServerRequest& request);
  HttpServerResponse GetMetrics(const HttpServerRequest& request);
  HttpServerResponse GetWhoami(const HttpServerRequest& request);
  // Who writes: "api:<token name>" (the authenticated token), "api" without access control.
  // Recorded as the actor of the events a request appends.
  std::string Actor(const HttpServerRequest& request) const;
  // A retry's or revocation's requested_by: the body's, or the actor when it gave none; 400 for
  // the process manager's name.
  static std::optional<HttpServerResponse> CheckRequestedBy(std::string& requested_by,
                                                            const std::string& actor);
  projections::ProjectionRunner* FindRunner(std::string_view name) const;
  int64_t NowUs() const;

  eventstore::EventStore& store_;
  eventstore::OrderCommandService service_;
  std::vector<projections::ProjectionRunner*> runners_;
  projections::ProjectionRunner* order_status_ = nullptr;
  fulfillment::ProcessManager* process_manager_;
  const LedgerApiOptions options_;
  std::unique_ptr<EventStreamHub> streams_;
};

}  // namespace ledger::server
