#include "fulfillment/http_client.h"

#include <fmt/format.h>
#include <poll.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>
#include <chrono>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace ledger::fulfillment {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Where a request goes, from its URL.
struct Target {
  std::string host{};       // Without brackets for IPv6.
  std::string port{};       // Decimal text.
  std::string authority{};  // The Host header: host[:port] as written in the URL.
  std::string resource{};   // Path and query, at least "/".
  std::string pool_key{};   // "host:port".
};

Result<Target, HttpError> ParseTarget(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    return Unexpected(
        HttpError{HttpError::Kind::kInvalidRequest,
                  fmt::format("invalid URL \"{}\": {}", url, parsed.error().message())});
  }
  const boost::urls::url_view& view = *parsed;
  if (view.scheme() != "http") {
    return Unexpected(HttpError{HttpError::Kind::kInvalidRequest,
                                fmt::format("unsupported URL \"{}\": only http:// is", url)});
  }
  Target target;
  target.host = view.host_address();
  if (target.host.empty()) {
    return Unexpected(
        HttpError{HttpError::Kind::kInvalidRequest, fmt::format("URL \"{}\" has no host", url)});
  }
  target.port = view.has_port() && !view.port().empty() ? std::string(view.port()) : "80";
  target.authority = view.encoded_host_and_port();
  target.resource = view.encoded_path().empty() ? "/" : std::string(view.encoded_path());
  if (view.has_query()) target.resource += "?" + std::string(view.encoded_query());
  target.pool_key = target.host + ":" + target.port;
  return target;
}

bool HasForbiddenCharacters(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Whether sending `request` twice is harmless: an idempotent method, or a key that lets the
// server recognize the second copy.
bool MayResend(const HttpRequest& request) {
  for (std::string_view method : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
    if (request.method == method) return true;
  }
  for (const auto& [name, value] : request.headers) {
    if (EqualsIgnoringCase(name, "Idempotency-Key") ||
        EqualsIgnoringCase(name, "X-Idempotency-Key")) {
      return true;
    }
  }
  return false;
}

// One kept-alive TCP connection with the io_context that drives it. Used by one thread at a time:
// each call runs the context until its own operation completes. Shutdown, from another thread,
// sets `cancelled` and posts a cancel of the pending operation into the context; the caller
// looks at `cancelled` after each Run, so an operation that had not started yet (the cancel ran
// in an earlier Run) is never started.
struct Connection {
  asio::io_context io{1};
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer{};
  Clock::time_point idle_since{};
  std::atomic<bool> cancelled{false};

  void Run() {
    io.restart();
    io.run();
  }
};

// Whether a pooled connection still looks usable: nothing to read (a readable idle socket means
// the peer closed it, or sent bytes nobody asked for) and no hang-up.
bool LooksAlive(Connection& connection) {
  if (!connection.stream.socket().is_open()) return false;
  pollfd descriptor{};
  descriptor.fd = connection.stream.socket().native_handle();
  descriptor.events = POLLIN;
  const int ready = ::poll(&descriptor, 1, 0);
  return ready == 0;
}

struct ExchangeError {
  HttpError error;
  // No byte of the answer arrived: the request may not have been seen at all.
  bool nothing_received = false;
};

bool IsClosedConnection(const beast::error_code& error) {
  return error == http::error::end_of_stream || error == http::error::partial_message ||
         error == asio::error::eof || error == asio::error::connection_reset ||
         error == asio::error::broken_pipe || error == asio::error::connection_aborted ||
         error == asio::error::not_connected;
}

}  // namespace

std::string_view HttpErrorKindName(HttpError::Kind kind) {
  switch (kind) {
    case HttpError::Kind::kInvalidRequest:
      return "invalid request";
    case HttpError::Kind::kConnect:
      return "connect";
    case HttpError::Kind::kTimeout:
      return "timeout";
    case HttpError::Kind::kClosed:
      return "closed";
    case HttpError::Kind::kProtocol:
      return "protocol";
    case HttpError::Kind::kCancelled:
      return "cancelled";
  }
  return "invalid";
}

std::string_view HttpResponse::Header(std::string_view name) const {
  for (const auto& [header, value] : headers) {
    if (EqualsIgnoringCase(header, name)) return value;
  }
  return {};
}

class HttpClient::Impl {
 public:
  explicit Impl(HttpClientOptions options) : options_(options) {}

  Result<HttpResponse, HttpError> Send(const HttpRequest& request) {
    requests_.fetch_add(1, std::memory_order_relaxed);
    auto target = ParseTarget(request.url);
    if (!target) return Unexpected(std::move(target).error());
    if (auto invalid = Validate(request)) return Unexpected(std::move(*invalid));
    // Two tries at most: the second only after a pooled connection turned out dead.
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Connection> connection = Acquire(target->pool_key);
      const bool reused = connection != nullptr;
      if (!reused) connection = std::make_unique<Connection>();
      if (!Track(*connection)) return Unexpected(CancelledError(request, false));
      auto exchanged = [&]() -> Result<Exchanged, ExchangeError> {
        if (reused) {
          connections_reused_.fetch_add(1, std::memory_order_relaxed);
        } else if (auto refused = Connect(*connection, *target, request.connect_timeout_ms)) {
          return Unexpected(ExchangeError{.error = std::move(*refused), .nothing_received = true});
        }
        return Exchange(*connection, *target, request);
      }();
      const bool keep_alive = Untrack(*connection) && exchanged && exchanged->keep_alive;
      if (exchanged) {
        if (keep_alive) Release(target->pool_key, std::move(connection));
        return std::move(exchanged->response);
      }
      ExchangeError failure = std::move(exchanged).error();
      const bool stale =
          reused && failure.nothing_received && failure.error.kind == HttpError::Kind::kClosed;
      if (attempt == 0 && stale && MayResend(request) && !shut_down_.load()) {
        stale_resends_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      return Unexpected(std::move(failure.error));
    }
  }

  HttpClientStats Stats() const {
    return HttpClientStats{.requests = requests_.load(),
                           .connections_opened = connections_opened_.load(),
                           .connections_reused = connections_reused_.load(),
                           .stale_resends = stale_resends_.load()};
  }

  void CloseIdleConnections() {
    std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> closing;
    {
      std::lock_guard lock(mutex_);
      closing.swap(idle_);
    }
  }

  void Shutdown() {
    std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> closing;
    {
      std::lock_guard lock(mutex_);
      shut_down_.store(true);
      closing.swap(idle_);
      for (Connection* connection : active_) {
        connection->cancelled.store(true);
        // Runs on the caller's thread inside its Run, which ends once the operation completes.
        // The connection outlives the posted cancel: Untrack takes this mutex, and the caller's
        // context runs (or drops) it before the connection is destroyed.
        asio::post(connection->io, [connection] { connection->stream.cancel(); });
      }
    }
  }

 private:
  static std::optional<HttpError> Validate(const HttpRequest& request) {
    auto invalid = [](std::string message) {
      return HttpError{HttpError::Kind::kInvalidRequest, std::move(message)};
    };
    if (request.connect_timeout_ms <= 0 || request.timeout_ms <= 0) {
      return invalid("timeouts must be positive");
    }
    if (http::string_to_verb(request.method) == http::verb::unknown) {
      return invalid(fmt::format("unknown HTTP method \"{}\"", request.method));
    }
    for (const auto& [name, value] : request.headers) {
      if (name.empty() || HasForbiddenCharacters(name) || HasForbiddenCharacters(value) ||
          name.find_first_of(" :\t") != std::string::npos) {
        return invalid(fmt::format("header \"{}\" has characters HTTP forbids", name));
      }
    }
    return std::nullopt;
  }

  // Registers a connection whose calls Shutdown must cut short; false once Shutdown has run.
  bool Track(Connection& connection) {
    std::lock_guard lock(mutex_);
    if (shut_down_.load()) return false;
    active_.insert(&connection);
    return true;
  }

  // Unregisters it; false when Shutdown cut it short (it is then not reused).
  bool Untrack(Connection& connection) {
    std::lock_guard lock(mutex_);
    active_.erase(&connection);
    return !connection.cancelled.load();
  }

  static HttpError CancelledError(const HttpRequest& request, bool written) {
    return HttpError{
        HttpError::Kind::kCancelled,
        fmt::format("{} {}: cut short, the ledger is shutting down{}", request.method, request.url,
                    written ? " (the request was sent: the partner may have acted)" : "")};
  }

  std::unique_ptr<Connection> Acquire(const std::string& pool_key) {
    std::vector<std::unique_ptr<Connection>> discarded;  // Closed outside the lock.
    std::lock_guard lock(mutex_);
    auto found = idle_.find(pool_key);
    if (found == idle_.end()) return nullptr;
    auto& connections = found->second;
    const auto idle_max = std::chrono::milliseconds(options_.idle_ms_max);
    while (!connections.empty()) {
      std::unique_ptr<Connection> connection = std::move(connections.back());
      connections.pop_back();
      if (Clock::now() - connection->idle_since < idle_max && LooksAlive(*connection)) {
        return connection;
      }
      discarded.push_back(std::move(connection));
    }
    return nullptr;
  }

  void Release(const std::string& pool_key, std::unique_ptr<Connection> connection) {
    connection->idle_since = Clock::now();
    std::lock_guard lock(mutex_);
    auto& connections = idle_[pool_key];
    if (connections.size() < options_.idle_connections_per_host_max) {
      connections.push_back(std::move(connection));
    }
  }

  // Connects `connection`; the error when it could not.
  std::optional<HttpError> Connect(Connection& connection, const Target& target,
                                   int64_t connect_timeout_ms) {
    const auto timeout = std::chrono::milliseconds(connect_timeout_ms);
    const auto deadline = Clock::now() + timeout;
    auto failed = [&](const std::string& reason) {
      return HttpError{HttpError::Kind::kConnect,
                       fmt::format("connect to {} failed: {}", target.pool_key, reason)};
    };
    auto cancelled = [&] {
      return HttpError{
          HttpError::Kind::kCancelled,
          fmt::format("connect to {}: cut short, the ledger is shutting down", target.pool_key)};
    };
    std::vector<tcp::endpoint> endpoints;
    boost::system::error_code error;
    const asio::ip::address address = asio::ip::make_address(target.host, error);
    unsigned port_number = 0;
    const char* port_end = target.port.data() + target.port.size();
    const auto [parsed_end, parse_error] =
        std::from_chars(target.port.data(), port_end, port_number);
    if (parse_error != std::errc() || parsed_end != port_end || port_number == 0 ||
        port_number > 65535) {
      return failed("invalid port " + target.port);
    }
    if (!error) {
      endpoints.emplace_back(address, static_cast<uint16_t>(port_number));
    } else {
      // A name: resolve it, bounded by the connect timeout (a cancelled lookup that the system
      // library has already started still finishes in the background).
      tcp::resolver resolver(connection.io);
      asio::steady_timer timer(connection.io, deadline);
      bool resolved = false;
      boost::system::error_code resolve_error;
      resolver.async_resolve(
          target.host, target.port,
          [&](const boost::system::error_code& done, const tcp::resolver::results_type& results) {
            resolved = true;
            resolve_error = done;
            timer.cancel();
            for (const auto& entry : results) endpoints.push_back(entry);
          });
      timer.async_wait([&](const boost::system::error_code& done) {
        if (!done && !resolved) resolver.cancel();
      });
      connection.Run();
      if (connection.cancelled.load()) return cancelled();
      if (!resolved || resolve_error == asio::error::operation_aborted) {
        return failed(
            fmt::format("resolving {} timed out after {} ms", target.host, connect_timeout_ms));
      }
      if (resolve_error) return failed(resolve_error.message());
      if (endpoints.empty()) return failed("no address for " + target.host);
    }
    boost::system::error_code connect_error;
    connection.stream.expires_at(deadline);
    connection.stream.async_connect(endpoints, [&](const boost::system::error_code& done,
                                                   const tcp::endpoint&) { connect_error = done; });
    connection.Run();
    if (connection.cancelled.load()) return cancelled();
    if (connect_error == beast::error::timeout) {
      return failed(fmt::format("timed out after {} ms", connect_timeout_ms));
    }
    if (connect_error) return failed(connect_error.message());
    connection.stream.socket().set_option(tcp::no_delay(true), error);
    connections_opened_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }

  struct Exchanged {
    HttpResponse response;
    bool keep_alive = false;  // The connection may carry another request.
  };

  Result<Exchanged, ExchangeError> Exchange(Connection& connection, const Target& target,
                                            const HttpRequest& request) {
    http::request<http::string_body> message;
    message.method(http::string_to_verb(request.method));
    message.target(target.resource);
    message.version(11);
    message.set(http::field::host, target.authority);
    message.set(http::field::user_agent, "orderledger-fulfillment");
    for (const auto& [name, value] : request.headers) message.set(name, value);
    message.body() = request.body;
    message.keep_alive(true);
    message.prepare_payload();

    auto failed = [&](HttpError::Kind kind, const std::string& reason, bool nothing_received) {
      return Unexpected(ExchangeError{
          .error = HttpError{kind, fmt::format("{} {}: {}", request.method, request.url, reason)},
          .nothing_received = nothing_received});
    };
    // One deadline for writing and reading: the partner's answer time, as the caller sees it.
    connection.stream.expires_after(std::chrono::milliseconds(request.timeout_ms));
    beast::error_code write_error;
    http::async_write(connection.stream, message,
                      [&](const beast::error_code& done, size_t) { write_error = done; });
    connection.Run();
    if (connection.cancelled.load()) {
      return Unexpected(
          ExchangeError{.error = CancelledError(request, !write_error), .nothing_received = true});
    }
    if (write_error == beast::error::timeout) {
      return failed(HttpError::Kind::kTimeout,
                    fmt::format("no answer within {} ms (request not written)", request.timeout_ms),
                    true);
    }
    if (write_error) {
      return failed(HttpError::Kind::kClosed,
                    "connection closed while sending: " + write_error.message(), true);
    }

    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.response_bytes_max);
    parser.header_limit(64 * 1024);
    beast::error_code read_error;
    http::async_read(connection.stream, connection.buffer, parser,
                     [&](const beast::error_code& done, size_t) { read_error = done; });
    connection.Run();
    if (connection.cancelled.load()) {
      return Unexpected(
          ExchangeError{.error = CancelledError(request, true), .nothing_received = false});
    }
    if (read_error == beast::error::timeout) {
      return failed(HttpError::Kind::kTimeout,
                    fmt::format("no answer within {} ms", request.timeout_ms), false);
    }
    if (read_error) {
      if (IsClosedConnection(read_error)) {
        const bool nothing = !parser.got_some() && connection.buffer.size() == 0;
        return failed(HttpError::Kind::kClosed,
                      (nothing ? "connection closed without an answer: "
                               : "connection closed in the middle of the answer: ") +
                          read_error.message(),
                      nothing);
      }
      return failed(HttpError::Kind::kProtocol, "malformed answer: " + read_error.message(), false);
    }
    http::response<http::string_body> response = parser.release();
    Exchanged result;
    result.keep_alive = response.keep_alive() && connection.buffer.size() == 0;
    connection.stream.expires_never();
    result.response.status = static_cast<int>(response.result_int());
    for (const auto& field : response) {
      result.response.headers.emplace_back(std::string(field.name_string()),
                                           std::string(field.value()));
    }
    result.response.body = std::move(response.body());
    return result;
  }

  const HttpClientOptions options_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
  std::unordered_set<Connection*> active_;  // Connections with a call in flight.
  std::atomic<bool> shut_down_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> connections_opened_{0};
  std::atomic<uint64_t> connections_reused_{0};
  std::atomic<uint64_t> stale_resends_{0};
};

HttpClient::HttpClient(HttpClientOptions options) : impl_(std::make_unique<Impl>(options)) {}
HttpClient::~HttpClient() = default;

Result<HttpResponse, HttpError> HttpClient::Send(const HttpRequest& request) {
  return impl_->Send(request);
}

HttpClientStats HttpClient::stats() const { return impl_->Stats(); }

void HttpClient::CloseIdleConnections() { impl_->CloseIdleConnections(); }

void HttpClient::Shutdown() { impl_->Shutdown(); }

}  // namespace ledger::fulfillment
