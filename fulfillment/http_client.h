// HttpClient: a small synchronous HTTP/1.1 client for the fulfillment modules' calls to partner
// systems (the LMS). http:// only: the partners it talks to sit on loopback or a private network.
//
// Every call is bounded by two timeouts: connect (TCP connection set up) and exchange (request
// written and whole response read). Connections are kept alive and reused per host:port from a
// small pool. A request sent on a reused connection that the peer had closed (no byte of answer
// came back) is sent once more on a fresh connection, but only when that is safe: when it carries
// an Idempotency-Key header or its method is idempotent (as Go's net/http does).
//
// Shutdown cuts short the calls in flight, for a program that is stopping and will make them again
// (with the same Idempotency-Key) when it next starts, rather than wait out a partner's timeout.
//
// Thread safety: an HttpClient is safe to use from several threads at once; each call uses a
// connection of its own (from the pool or new) and blocks only its caller.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace ledger::fulfillment {

struct HttpRequest {
  std::string method = "GET";
  // "http://host:port/path?query". Any other scheme is refused (kInvalidRequest).
  std::string url{};
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};
  // Bound on setting up the TCP connection (resolution included).
  int64_t connect_timeout_ms = 7'000;
  // Bound on writing the request and reading the whole response, once connected.
  int64_t timeout_ms = 7'000;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};

  // The first header called `name` (case-insensitive); empty when absent.
  std::string_view Header(std::string_view name) const;
};

struct HttpError {
  // Never renumber: kept stable like every result code of the ledger.
  enum class Kind : uint8_t {
    kInvalidRequest = 1,  // Bad URL, a scheme other than http, a header Beast refuses.
    kConnect = 2,         // Could not connect: refused, unreachable, unresolvable, timed out.
    kTimeout = 3,         // Connected, but the answer did not come within timeout_ms.
    kClosed = 4,          // The peer closed or reset the connection before a whole answer.
    kProtocol = 5,        // The peer answered something that is not acceptable HTTP/1.1.
    kCancelled = 6,       // Cut short (or refused) by Shutdown; the peer may have acted on it.
  };
  Kind kind = Kind::kConnect;
  // For humans: what failed, with the system's reason, e.g. "connect to 127.0.0.1:9 failed:
  // Connection refused".
  std::string message{};
};

std::string_view HttpErrorKindName(HttpError::Kind kind);

struct HttpClientOptions {
  // Idle connections kept per host:port; more are closed when handed back.
  size_t idle_connections_per_host_max = 8;
  // An idle connection older than this is closed instead of reused (below the usual server
  // keep-alive timeouts, so that the server rarely closes one under our feet).
  int64_t idle_ms_max = 30'000;
  // Responses larger than this fail with kProtocol.
  uint64_t response_bytes_max = 4 * 1024 * 1024;
};

// Counters, for tests and metrics.
struct HttpClientStats {
  uint64_t requests = 0;            // Calls to Send.
  uint64_t connections_opened = 0;  // TCP connections set up.
  uint64_t connections_reused = 0;  // Calls served on a pooled connection.
  uint64_t stale_resends = 0;       // Requests sent again after a pooled connection failed.
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request` and reads the answer. Any HTTP status is a response (a 500 is a value, not
  // an HttpError); an HttpError means no whole answer arrived. Blocks at most about
  // connect_timeout_ms + timeout_ms (twice that when a stale pooled connection is re-sent).
  Result<HttpResponse, HttpError> Send(const HttpRequest& request);

  HttpClientStats stats() const;

  // Closes every idle pooled connection.
  void CloseIdleConnections();

  // Ends every call in flight with kCancelled within milliseconds (one resolving a host name:
  // once the lookup ends, within its connect timeout), and refuses every later call the same
  // way, for good. A request already written may have been acted on by the peer. Idempotent.
  void Shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ledger::fulfillment
