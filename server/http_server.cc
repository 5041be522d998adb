#include "server/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url.hpp>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

namespace ledger::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// What a connection that broke a limit may still send us after its error answer: read and
// dropped so that the client sees the answer instead of a reset (a "lingering close").
constexpr size_t kDrainBytesMax = 8 << 20;
constexpr std::chrono::seconds kDrainTime{2};

std::vector<std::string> SplitPattern(std::string_view pattern) {
  std::vector<std::string> segments;
  if (!pattern.empty() && pattern.front() == '/') pattern.remove_prefix(1);
  // "/" has no segments, as a request for "/" has none (Boost.URL): the root is routable.
  if (pattern.empty()) return segments;
  while (true) {
    const size_t slash = pattern.find('/');
    segments.emplace_back(pattern.substr(0, slash));
    if (slash == std::string_view::npos) break;
    pattern.remove_prefix(slash + 1);
  }
  return segments;
}

bool IsPlaceholder(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

std::optional<std::string_view> HttpServerRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

std::optional<std::string_view> HttpServerRequest::Query(std::string_view name) const {
  auto found = query.find(name);
  if (found == query.end()) return std::nullopt;
  return std::string_view(found->second);
}

std::string_view HttpServerRequest::PathParam(std::string_view name) const {
  auto found = path_params.find(name);
  return found == path_params.end() ? std::string_view() : std::string_view(found->second);
}

HttpServerResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  boost::json::object error;
  error["code"] = code;
  error["message"] = message;
  boost::json::object body;
  body["error"] = std::move(error);
  return {
      .status = status, .content_type = "application/json", .body = boost::json::serialize(body)};
}

HttpHandler AcceptingQuery(std::vector<std::string> parameters, HttpHandler handler) {
  return [parameters = std::move(parameters),
          handler = std::move(handler)](const HttpServerRequest& request) {
    for (const auto& [name, value] : request.query) {
      if (name == "access_token" ||
          std::find(parameters.begin(), parameters.end(), name) != parameters.end()) {
        continue;
      }
      std::string taken;
      for (const std::string& parameter : parameters) {
        taken += (taken.empty() ? "" : ", ") + parameter;
      }
      return ErrorResponse(
          400, "invalid_parameter",
          "unknown query parameter \"" + name + "\": " +
              (taken.empty() ? request.route + " takes none" : request.route + " takes " + taken));
    }
    return handler(request);
  };
}

void Router::Add(std::string method, std::string_view pattern, HttpHandler handler) {
  routes_.push_back(
      {std::move(method), std::string(pattern), SplitPattern(pattern), std::move(handler)});
}

HttpServerResponse Router::Dispatch(HttpServerRequest& request) const {
  bool path_matched = false;
  std::vector<std::string> allowed;  // The methods of the routes whose path matches.
  for (const Route& route : routes_) {
    if (route.segments.size() != request.segments.size()) continue;
    std::map<std::string, std::string, std::less<>> params;
    bool matches = true;
    for (size_t i = 0; i < route.segments.size() && matches; ++i) {
      const std::string& want = route.segments[i];
      const std::string& have = request.segments[i];
      if (IsPlaceholder(want)) {
        if (have.empty()) matches = false;
        params[want.substr(1, want.size() - 2)] = have;
      } else {
        matches = want == have;
      }
    }
    if (!matches) continue;
    path_matched = true;
    allowed.push_back(route.method);
    if (route.method == "GET") allowed.push_back("HEAD");
    // HEAD is GET without the body (the session leaves it out).
    const bool head_of_get = request.method == "HEAD" && route.method == "GET";
    if (route.method != request.method && !head_of_get) continue;
    request.path_params = std::move(params);
    request.route = route.pattern;
    try {
      return route.handler(request);
    } catch (const std::exception& e) {
      return ErrorResponse(500, "internal_error", e.what());
    }
  }
  if (path_matched) {
    HttpServerResponse refused = ErrorResponse(
        405, "method_not_allowed", request.method + " is not allowed on " + request.path);
    std::string allow;
    for (const std::string& method : allowed) allow += (allow.empty() ? "" : ", ") + method;
    refused.headers.emplace_back("Allow", std::move(allow));
    return refused;
  }
  return ErrorResponse(404, "not_found", "no such resource: " + request.path);
}

class Session;

class HttpServer::Impl {
 public:
  explicit Impl(HttpServerOptions options)
      : options_(std::move(options)),
        handlers_(options_.handler_threads == 0 ? 1 : options_.handler_threads) {}

  Result<void, std::string> Listen();
  void Run();
  void Stop();
  void Accept();

  // Declared before the I/O context: sessions destroyed with the context's pending handlers
  // still update them.
  const HttpServerOptions options_;
  Router router_;  // Set by Serve before the first accept, then only read.
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<uint64_t> connections_{0};
  std::mutex mutex_;
  std::condition_variable quiet_;  // Signalled when in_flight_ or connections_ drop.
  std::map<uint64_t, std::weak_ptr<Session>> sessions_;
  uint64_t next_session_id_ = 1;
  bool stopped_ = false;

  asio::thread_pool handlers_;
  asio::io_context ioc_;
  // Keeps the I/O threads running while the only work left is in handler threads (during Stop,
  // once the acceptor is closed): their answers are written on the I/O threads.
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  tcp::acceptor acceptor_{asio::make_strand(ioc_)};
  uint16_t port_ = 0;
  std::vector<std::thread> io_threads_;
};

// One connection: reads requests one after the other, hands each to a handler thread, writes the
// answer, and reads the next one (keep-alive). Everything but the handler runs on its strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl& server)
      : stream_(std::move(socket)), server_(server) {
    server_.connections_.fetch_add(1);
  }
  ~Session() {
    {
      std::lock_guard lock(server_.mutex_);
      server_.sessions_.erase(id_);
      server_.connections_.fetch_sub(1);
    }
    server_.quiet_.notify_all();
  }

  void Start(bool reject) {
    {
      std::lock_guard lock(server_.mutex_);
      id_ = server_.next_session_id_++;
      server_.sessions_[id_] = weak_from_this();
    }
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), reject] {
      if (reject) {
        self->WriteError(503, "too_many_connections", "the server has too many open connections");
      } else {
        self->Read();
      }
    });
  }

  // Called by Stop on the session's strand: an idle connection is closed at once, a streamed
  // answer is cancelled (it ends with its last chunk).
  void CloseIfIdle() {
    if (reading_) {
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
    }
    CancelStream();
    if (body_stream_ != nullptr && !stream_ended_) {
      // A streamed answer ends with its last chunk once its pending write completes, but a
      // client that stopped reading holds that write until the idle timeout: past kDrainTime
      // the connection is closed, so that a shutdown does not wait on such a client.
      auto timer = std::make_shared<asio::steady_timer>(stream_.get_executor(), kDrainTime);
      timer->async_wait([self = shared_from_this(), timer](beast::error_code) {
        if (self->stream_ended_) return;
        beast::error_code ignored;
        self->stream_.socket().close(ignored);
      });
    }
  }

  asio::any_io_executor executor() { return stream_.get_executor(); }

 private:
  void Read() {
    if (server_.stopping_.load()) return Close();
    parser_.emplace();
    parser_->header_limit(server_.options_.header_bytes_max);
    parser_->body_limit(server_.options_.body_bytes_max);
    reading_ = true;
    stream_.expires_after(std::chrono::milliseconds(server_.options_.idle_timeout_ms));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // A client that sent "Expect: 100-continue" (curl does for bodies over 1 KiB) waits for a
  // 100 Continue before the body; a body over the limit was refused with the header already.
  void OnHeader(beast::error_code ec) {
    if (ec) {
      reading_ = false;
      return OnRead(ec);
    }
    if (!parser_->is_done() &&
        beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      auto go_on = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      http::async_write(stream_, *go_on,
                        [self = shared_from_this(), go_on](beast::error_code write_ec, size_t) {
                          if (write_ec) {
                            self->reading_ = false;
                            return self->Close();
                          }
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->reading_ = false;
                       self->OnRead(ec);
                     });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return WriteError(413, "body_too_large",
                        "the request body is larger than " +
                            std::to_string(server_.options_.body_bytes_max) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return WriteError(431, "headers_too_large",
                        "the request headers are larger than " +
                            std::to_string(server_.options_.header_bytes_max) + " bytes");
    }
    const bool parse_error =
        ec && ec.category() == http::make_error_code(http::error::bad_target).category();
    if (parse_error && ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return WriteError(400, "malformed_request", "not a valid HTTP/1.1 request: " + ec.message());
    }
    if (ec) return Close();  // The peer left, the idle timeout passed, or we are stopping.

    http::request<http::string_body> message = parser_->release();
    keep_alive_ = message.keep_alive();
    head_request_ = message.method() == http::verb::head;
    version_ = std::min(message.version(), 11u);  // What we speak, at most HTTP/1.1.
    HttpServerRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.content_type = std::string(message[http::field::content_type]);
    for (const auto& field : message) {
      if (field.name() == http::field::content_type) continue;
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    request.body = std::move(message.body());
    // Origin form ("/v1/orders?x=1"), or the absolute form ("http://host/v1/orders") that
    // HTTP/1.1 servers must accept too (RFC 9112 3.2.2): its host is ignored.
    auto url = boost::urls::parse_origin_form(request.target);
    if (!url) {
      auto absolute = boost::urls::parse_absolute_uri(request.target);
      if (absolute && (absolute->scheme() == "http" || absolute->scheme() == "https") &&
          !absolute->encoded_path().empty()) {
        url = boost::urls::parse_origin_form(absolute->encoded_resource());
      }
    }
    if (!url) {
      keep_alive_ = false;
      return WriteResponse(ErrorResponse(400, "malformed_request",
                                         "the request target is not a valid path and query"),
                           /*counted=*/false);
    }
    request.path = url->path();
    for (auto segment : url->segments()) request.segments.push_back(segment);
    for (auto param : url->params()) {
      // A parameter given twice is ambiguous (which `from`, which `limit`?): refused rather
      // than one of them silently taken.
      if (!request.query.emplace(param.key, param.value).second) {
        return WriteResponse(
            ErrorResponse(400, "invalid_parameter",
                          "the query gives " + std::string(param.key) + " more than once"),
            /*counted=*/false);
      }
    }

    server_.in_flight_.fetch_add(1);
    asio::post(server_.handlers_, [self = shared_from_this(),
                                   request = std::move(request)]() mutable {
      const auto started = std::chrono::steady_clock::now();
      HttpServerResponse response = self->server_.router_.Dispatch(request);
      if (self->server_.options_.on_handled) {
        const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - started);
        self->server_.options_.on_handled(request, response.status, took.count());
      }
      asio::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->WriteResponse(std::move(response), /*counted=*/true);
      });
    });
  }

  void WriteResponse(HttpServerResponse response, bool counted) {
    if (head_request_) return WriteHead(std::move(response), counted);
    if (response.stream != nullptr) return WriteStreamed(std::move(response));
    auto message = MakeMessage<http::string_body>(response);
    message->keep_alive(keep_alive_ && !server_.stopping_.load());
    message->body() = std::move(response.body);
    message->prepare_payload();
    WriteMessage(std::move(message), counted);
  }

  // The answer to a HEAD request: the header alone, with the length the body would have (none
  // for a stream, whose connection is then closed).
  void WriteHead(HttpServerResponse response, bool counted) {
    auto message = MakeMessage<http::empty_body>(response);
    if (response.stream != nullptr) {
      response.stream->Cancel();
      keep_alive_ = false;
    } else {
      message->content_length(response.body.size());
    }
    message->keep_alive(keep_alive_ && !server_.stopping_.load());
    WriteMessage(std::move(message), counted);
  }

  // An answer's status line and headers.
  template <typename Body>
  std::shared_ptr<http::response<Body>> MakeMessage(const HttpServerResponse& response) const {
    auto message = std::make_shared<http::response<Body>>(
        static_cast<http::status>(response.status), version_);
    message->set(http::field::server, "ledgerd");
    message->set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) message->set(name, value);
    return message;
  }

  // Writes a whole answer, then reads the next request or closes. A counted request stops
  // counting in flight once its answer is written.
  template <typename Body>
  void WriteMessage(std::shared_ptr<http::response<Body>> message, bool counted) {
    stream_.expires_after(std::chrono::milliseconds(server_.options_.idle_timeout_ms));
    http::async_write(stream_, *message,
                      [self = shared_from_this(), message, counted](beast::error_code ec, size_t) {
                        if (counted) {
                          {
                            // Under the mutex, so that Stop cannot miss the wake-up.
                            std::lock_guard lock(self->server_.mutex_);
                            self->server_.in_flight_.fetch_sub(1);
                          }
                          self->server_.quiet_.notify_all();
                        }
                        if (ec || !message->keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  // A streamed answer: the header (chunked unless HTTP/1.0, Connection: close), the initial body,
  // then each piece of the stream as a chunk, until it ends, the client leaves or the server
  // stops. A read runs alongside to notice the client leaving while the stream has nothing to
  // send.
  void WriteStreamed(HttpServerResponse response) {
    keep_alive_ = false;
    body_stream_ = std::move(response.stream);
    auto header = MakeMessage<http::empty_body>(response);
    header->keep_alive(false);
    // HTTP/1.0 has no chunks: the body runs until the connection closes.
    chunked_ = version_ >= 11;
    header->chunked(chunked_);
    auto serializer = std::make_shared<http::response_serializer<http::empty_body>>(*header);
    stream_.expires_after(std::chrono::milliseconds(server_.options_.idle_timeout_ms));
    http::async_write_header(
        stream_, *serializer,
        [self = shared_from_this(), header, serializer, initial = std::move(response.body)](
            beast::error_code ec, size_t) mutable {
          if (ec) return self->EndStream();
          self->stream_.expires_never();
          self->WatchPeer();
          self->OnPiece(std::move(initial), false);
        });
  }

  // Reads (and drops) whatever the client sends while streaming; an error or end of file means
  // it left.
  void WatchPeer() {
    stream_.socket().async_read_some(asio::buffer(drain_buffer_),
                                     [self = shared_from_this()](beast::error_code ec, size_t) {
                                       if (ec) return self->CancelStream();
                                       self->WatchPeer();
                                     });
  }

  // On the strand. Idempotent.
  void CancelStream() {
    if (stream_cancelled_ || body_stream_ == nullptr) return;
    stream_cancelled_ = true;
    body_stream_->Cancel();
  }

  void AskForPiece() {
    if (server_.stopping_.load()) CancelStream();
    body_stream_->Next([self = shared_from_this()](std::string piece, bool end) {
      asio::post(self->stream_.get_executor(), [self, piece = std::move(piece), end]() mutable {
        self->OnPiece(std::move(piece), end);
      });
    });
  }

  void OnPiece(std::string piece, bool end) {
    if (stream_cancelled_) return WriteLastChunk();
    if (piece.empty()) return end ? WriteLastChunk() : AskForPiece();
    auto data = std::make_shared<std::string>(std::move(piece));
    stream_.expires_after(std::chrono::milliseconds(server_.options_.idle_timeout_ms));
    auto written = [self = shared_from_this(), data, end](beast::error_code ec, size_t) {
      if (ec) {
        self->CancelStream();
        return self->EndStream();
      }
      self->stream_.expires_never();
      if (end) return self->WriteLastChunk();
      self->AskForPiece();
    };
    if (chunked_) {
      asio::async_write(stream_, http::make_chunk(asio::buffer(*data)), std::move(written));
    } else {
      asio::async_write(stream_, asio::buffer(*data), std::move(written));
    }
  }

  void WriteLastChunk() {
    if (!chunked_) return EndStream();
    stream_.expires_after(kDrainTime);
    asio::async_write(
        stream_, http::make_chunk_last(),
        [self = shared_from_this()](beast::error_code, size_t) { self->EndStream(); });
  }

  // The streamed answer is over (written or abandoned): the request no longer counts in flight.
  void EndStream() {
    if (stream_ended_) return;
    stream_ended_ = true;
    CancelStream();
    {
      std::lock_guard lock(server_.mutex_);
      server_.in_flight_.fetch_sub(1);
    }
    server_.quiet_.notify_all();
    Close();
  }

  // Answers a request that broke a limit, then drains what the client still sends and closes.
  void WriteError(int status, std::string_view code, const std::string& text) {
    auto message =
        std::make_shared<http::response<http::string_body>>(static_cast<http::status>(status), 11);
    message->set(http::field::server, "ledgerd");
    message->set(http::field::content_type, "application/json");
    message->keep_alive(false);
    message->body() = ErrorResponse(status, code, text).body;
    message->prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(server_.options_.idle_timeout_ms));
    http::async_write(stream_, *message,
                      [self = shared_from_this(), message](beast::error_code ec, size_t) {
                        if (ec) return self->Close();
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                        self->stream_.expires_after(kDrainTime);
                        self->Drain();
                      });
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                              self->drained_bytes_ += bytes;
                              if (ec || self->drained_bytes_ > kDrainBytesMax) return self->Close();
                              self->Drain();
                            });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  uint64_t id_ = 0;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool reading_ = false;
  bool keep_alive_ = true;
  bool head_request_ = false;  // The request being answered is a HEAD.
  unsigned version_ = 11;      // Its HTTP version, which the answer takes.
  bool chunked_ = true;        // The streamed answer is chunked (not for HTTP/1.0).
  std::array<char, 64 * 1024> drain_buffer_{};
  size_t drained_bytes_ = 0;
  // A streamed answer's state, on the strand.
  std::shared_ptr<BodyStream> body_stream_;
  bool stream_cancelled_ = false;
  bool stream_ended_ = false;
};

Result<void, std::string> HttpServer::Impl::Listen() {
  beast::error_code ec;
  const auto address = asio::ip::make_address(options_.address, ec);
  if (ec) return Unexpected("bad listen address '" + options_.address + "': " + ec.message());
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unexpected("cannot listen on " + options_.address + ":" + std::to_string(options_.port) +
                      ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  return {};
}

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (stopping_.load() || !acceptor_.is_open()) return;
    if (ec) {
      // Out of file descriptors, most likely: accepting again at once would spin. Sessions
      // closing meanwhile give descriptors back.
      auto timer = std::make_shared<asio::steady_timer>(acceptor_.get_executor(),
                                                        std::chrono::milliseconds(50));
      timer->async_wait([this, timer](beast::error_code) { Accept(); });
      return;
    }
    const bool reject = connections_.load() >= options_.connections_max;
    std::make_shared<Session>(std::move(socket), *this)->Start(reject);
    Accept();
  });
}

void HttpServer::Impl::Run() {
  Accept();
  size_t threads = options_.io_threads;
  if (threads == 0) threads = std::max<size_t>(1, std::thread::hardware_concurrency());
  for (size_t i = 0; i < threads; ++i) io_threads_.emplace_back([this] { ioc_.run(); });
}

void HttpServer::Impl::Stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopping_.store(true);
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, weak] : sessions_) {
      if (auto session = weak.lock()) sessions.push_back(std::move(session));
    }
  }
  for (auto& session : sessions) {
    asio::post(session->executor(), [session] { session->CloseIfIdle(); });
  }
  sessions.clear();
  {
    std::unique_lock lock(mutex_);
    quiet_.wait_for(lock, std::chrono::milliseconds(options_.shutdown_grace_ms),
                    [this] { return in_flight_.load() == 0 && connections_.load() == 0; });
  }
  work_.reset();
  ioc_.stop();
  for (std::thread& thread : io_threads_) thread.join();
  handlers_.join();
}

Result<std::unique_ptr<HttpServer>, std::string> HttpServer::Start(HttpServerOptions options,
                                                                   Router router) {
  auto server = Listen(std::move(options));
  if (server) (*server)->Serve(std::move(router));
  return server;
}

Result<std::unique_ptr<HttpServer>, std::string> HttpServer::Listen(HttpServerOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (auto listening = impl->Listen(); !listening) return Unexpected(listening.error());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Serve(Router router) {
  if (!impl_->io_threads_.empty()) return;  // Serving already.
  impl_->router_ = std::move(router);
  impl_->Run();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

uint16_t HttpServer::port() const { return impl_->port_; }

void HttpServer::Stop() { impl_->Stop(); }

uint64_t HttpServer::requests_in_flight() const { return impl_->in_flight_.load(); }

uint64_t HttpServer::connections_open() const { return impl_->connections_.load(); }

}  // namespace ledger::server
