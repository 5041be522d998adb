// HttpServer: the ledger's HTTP/1.1 front door (Boost.Beast on Asio), with a Router from
// (method, path pattern) to handlers.
//
// Connections are kept alive. Reading and writing run on a pool of I/O threads sized to the
// cores; handlers run on a separate pool of handler threads, because some of them block (a
// read-your-writes wait, a synchronous fulfillment) and must not stall other connections.
//
// Limits, each answered with a JSON error and the connection closed: request headers larger than
// header_bytes_max (431 headers_too_large), a body larger than body_bytes_max (413
// body_too_large), bytes that are not HTTP (400 malformed_request), a request target that is not
// a valid origin-form URL (400 malformed_request). A connection beyond connections_max gets 503
// too_many_connections. A connection that sends no whole request within idle_timeout_ms is
// closed without an answer. Every error body is {"error": {"code": "...", "message": "..."}}.
//
// A response may stream its body (BodyStream, for server-sent events): it is sent chunked, piece
// by piece as the stream delivers them, until the stream ends or the client leaves.
//
// Shutdown (Stop): stop accepting, close idle connections, cancel body streams, let requests in
// flight finish and their answers be written (with Connection: close), then join every thread.
//
// Thread safety: Router is filled before Start and then only read. HttpServer methods may be
// called from any thread; handlers are called on handler threads, concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace ledger::server {

struct HttpServerRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // As sent: "/v1/orders/EDX-1?as_of=3".
  std::string path;    // Percent-decoded path, no query.
  // The path's percent-decoded segments ("/v1/orders/A%2FB" -> "v1", "orders", "A/B").
  std::vector<std::string> segments;
  // Percent-decoded query parameters; the first of repeated keys wins.
  std::map<std::string, std::string, std::less<>> query;
  // The pattern of the route that matched ("/v1/orders/{number}"), empty before dispatch and
  // when none did.
  std::string route;
  // The segments the pattern's {placeholders} matched, by placeholder name.
  std::map<std::string, std::string, std::less<>> path_params;
  std::string content_type;
  // Every header but Content-Type, names in lower case, in the order sent.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header of that name (any case), nullopt when absent.
  std::optional<std::string_view> Header(std::string_view name) const;
  // The query parameter, nullopt when absent.
  std::optional<std::string_view> Query(std::string_view name) const;
  // The path parameter (always present for a matched pattern's placeholder).
  std::string_view PathParam(std::string_view name) const;
};

// A response body produced piece by piece, for as long as the client stays (server-sent events).
// The server writes the status and headers, then asks for one piece at a time and writes it
// before asking for the next: a slow client slows its own stream only.
class BodyStream {
 public:
  // Receives the next piece; `end` true ends the response (the connection is then closed).
  using Deliver = std::function<void(std::string piece, bool end)>;

  virtual ~BodyStream() = default;
  // Asks for the next piece: `deliver` must be called exactly once, later, from any thread (it
  // must not be called from inside Next). Never called again before `deliver` has run.
  virtual void Next(Deliver deliver) = 0;
  // The client left or the server is stopping: a pending Next should deliver soon (its piece is
  // dropped). Called once, from any thread, possibly while a Next is pending.
  virtual void Cancel() = 0;
};

struct HttpServerResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Further headers ("WWW-Authenticate", "Cache-Control", ...).
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is `body` followed by the stream's pieces (chunked, but for an HTTP/1.0
  // client, whose answer runs until the close), and the connection
  // closes when the stream ends.
  std::shared_ptr<BodyStream> stream;
};

// {"error": {"code": code, "message": message}} with `status`.
HttpServerResponse ErrorResponse(int status, std::string_view code, std::string_view message);

using HttpHandler = std::function<HttpServerResponse(const HttpServerRequest&)>;

// `handler`, answering 400 invalid_parameter instead when the query holds a parameter not in
// `parameters` (a misspelt filter would otherwise widen the answer without a word), naming the
// ones it takes. access_token (see server/auth.h) is always taken.
HttpHandler AcceptingQuery(std::vector<std::string> parameters, HttpHandler handler);

// Maps (method, pattern) to handlers. A pattern is a path whose segments are literal or
// `{name}`, which matches any one non-empty segment: "/v1/orders/{number}/events".
class Router {
 public:
  void Add(std::string method, std::string_view pattern, HttpHandler handler);

  // Calls the handler of the first route that matches, with path_params filled in. 404
  // not_found when no pattern matches the path; 405 method_not_allowed when one matches with
  // another method. A handler that throws gets 500 internal_error (its exception is a bug).
  HttpServerResponse Dispatch(HttpServerRequest& request) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    HttpHandler handler;
  };
  std::vector<Route> routes_;
};

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;      // 0: the system picks a free port (see HttpServer::port()).
  size_t io_threads = 0;  // 0: one per core.
  // Handlers block on synced appends, and one group commit can carry at most as many appends as
  // there are handlers waiting: 64 let POST /v1/orders reach 3.3k-3.4k orders/s on 2 cores in
  // http_bench (64 connections), against 2.3k-2.5k with 16; 128 gave no more.
  size_t handler_threads = 64;
  uint64_t body_bytes_max = 1 << 20;
  uint32_t header_bytes_max = 16 * 1024;
  size_t connections_max = 1024;
  int64_t idle_timeout_ms = 30'000;
  // How long Stop waits for requests in flight before closing their connections anyway.
  int64_t shutdown_grace_ms = 30'000;
  // Called on the handler thread after each routed request with the status and how long the
  // handler took (metrics). Not called for requests refused before routing (limits).
  std::function<void(const HttpServerRequest& request, int status, int64_t handler_us)>
      on_handled{};
};

class HttpServer {
 public:
  // Binds, listens and starts the threads; an error text when the address cannot be bound.
  static Result<std::unique_ptr<HttpServer>, std::string> Start(HttpServerOptions options,
                                                                Router router);
  // Start in two steps, for a program that should find out that its address is taken before it
  // does anything else: Listen binds and listens (connections wait in the kernel's backlog),
  // Serve starts accepting with the routes. Serve is called at most once.
  static Result<std::unique_ptr<HttpServer>, std::string> Listen(HttpServerOptions options);
  void Serve(Router router);
  // Stops (as Stop()).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  // Graceful shutdown, see the header comment. Idempotent.
  void Stop();

  // Requests whose handler is running or whose answer is being written (streams included).
  uint64_t requests_in_flight() const;
  uint64_t connections_open() const;

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ledger::server
