#include "server/lms_standin.h"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "base/event_id.h"

namespace ledger::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

constexpr std::string_view kEnrollmentPath = "/api/enrollment/v1/enrollment";
constexpr std::string_view kEntitlementsPath = "/api/entitlements/v1/entitlements/";
constexpr uint64_t kBodyBytesMax = 64 * 1024;
constexpr uint32_t kHeaderBytesMax = 16 * 1024;
// A connection idle this long, or a request this slow to arrive, is closed.
constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr auto kWriteTimeout = std::chrono::seconds(30);

// What the server saw, reduced to what the handlers need.
struct Request {
  std::string method{};
  std::string path{};  // Without the query.
  std::optional<std::string> api_key{};
  std::string idempotency_key{};
  std::string body{};
};

struct Reply {
  unsigned status = 200;
  std::string body{};  // JSON, or empty.
  bool drop = false;   // Close the connection without answering.
  int64_t delay_ms = 0;
  bool replayed = false;
};

Reply JsonReply(unsigned status, const json::value& body) {
  return Reply{.status = status, .body = json::serialize(body)};
}

Reply Problem(unsigned status, std::string_view message) {
  return JsonReply(status, json::object{{"message", message}});
}

// The string field `name` of `object`, or nullopt when absent or not a string.
std::optional<std::string> StringField(const json::object& object, std::string_view name) {
  const json::value* value = object.if_contains(name);
  if (value == nullptr || !value->is_string()) return std::nullopt;
  return std::string(value->get_string());
}

// Everything the stand-in remembers, behind one mutex: each request is handled whole under it,
// so two attempts with the same key never both perform the effect.
class State {
 public:
  explicit State(std::string api_key) : api_key_(std::move(api_key)) {}

  Reply Handle(const Request& request) {
    std::lock_guard lock(mutex_);
    if (request.path.starts_with("/control/")) {
      ++stats_.control_requests;
      return HandleControl(request);
    }
    ++stats_.requests;
    LmsFaults& faults = stats_.faults;
    if (faults.drop_next > 0) {
      --faults.drop_next;
      return Reply{.drop = true};
    }
    int64_t delay_ms = 0;
    if (faults.delay_next > 0) {
      --faults.delay_next;
      delay_ms = faults.delay_ms;
    }
    Reply reply = HandleApi(request);
    reply.delay_ms = delay_ms;
    return reply;
  }

  void CountConnection() {
    std::lock_guard lock(mutex_);
    ++stats_.connections_accepted;
  }
  void CountBadRequest() {
    std::lock_guard lock(mutex_);
    ++stats_.bad_requests;
  }
  LmsStandinStats Stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }
  void SetFaults(const LmsFaults& faults) {
    std::lock_guard lock(mutex_);
    stats_.faults = faults;
  }
  void Reset() {
    std::lock_guard lock(mutex_);
    stats_ = LmsStandinStats{};
    enrollments_.clear();
    entitlements_.clear();
    answers_.clear();
  }
  std::vector<LmsEnrollment> Enrollments() const {
    std::lock_guard lock(mutex_);
    return enrollments_;
  }
  std::vector<LmsEntitlement> Entitlements() const {
    std::lock_guard lock(mutex_);
    return entitlements_;
  }

 private:
  struct StoredAnswer {
    std::string method{};
    std::string path{};
    unsigned status = 0;
    std::string body{};
  };

  Reply HandleApi(const Request& request) {
    LmsFaults& faults = stats_.faults;
    if (faults.fail_next > 0) {
      --faults.fail_next;
      return Problem(static_cast<unsigned>(faults.fail_status), "injected fault (stand-in)");
    }
    if (!request.api_key || request.api_key->empty()) {
      return Problem(401, "Authentication credentials were not provided.");
    }
    if (!api_key_.empty() && *request.api_key != api_key_) {
      return Problem(403, "Invalid API key.");
    }
    if (!request.idempotency_key.empty()) {
      auto found = answers_.find(request.idempotency_key);
      if (found != answers_.end()) {
        const StoredAnswer& answer = found->second;
        if (answer.method != request.method || answer.path != request.path) {
          return Problem(422, "Idempotency-Key already used for another request");
        }
        ++stats_.replays;
        return Reply{.status = answer.status, .body = answer.body, .replayed = true};
      }
    }
    Reply reply = Route(request);
    if (!request.idempotency_key.empty() && reply.status >= 200 && reply.status < 300) {
      answers_.emplace(request.idempotency_key,
                       StoredAnswer{request.method, request.path, reply.status, reply.body});
    }
    return reply;
  }

  Reply Route(const Request& request) {
    const bool enrollment_path =
        request.path == kEnrollmentPath || request.path == std::string(kEnrollmentPath) + "/";
    if (enrollment_path) {
      if (request.method != "POST") return Problem(405, "Method not allowed.");
      return Enroll(request);
    }
    const bool entitlements_path =
        request.path == kEntitlementsPath ||
        request.path == kEntitlementsPath.substr(0, kEntitlementsPath.size() - 1);
    if (entitlements_path) {
      if (request.method != "POST") return Problem(405, "Method not allowed.");
      return CreateEntitlement(request);
    }
    if (request.path.starts_with(kEntitlementsPath)) {
      std::string uuid = request.path.substr(kEntitlementsPath.size());
      if (!uuid.empty() && uuid.back() == '/') uuid.pop_back();
      if (request.method != "DELETE") return Problem(405, "Method not allowed.");
      return RevokeEntitlement(request, uuid);
    }
    return Problem(404, "Not found.");
  }

  void CountEffect(std::string_view kind, const Request& request) {
    ++stats_.effects_by_kind[std::string(kind)];
    if (!request.idempotency_key.empty()) ++stats_.effects_by_key[request.idempotency_key];
  }

  static std::optional<json::object> ParseObject(std::string_view body) {
    boost::system::error_code error;
    json::value parsed = json::parse(body, error);
    if (error || !parsed.is_object()) return std::nullopt;
    return std::move(parsed.get_object());
  }

  Reply Enroll(const Request& request) {
    std::optional<json::object> body = ParseObject(request.body);
    if (!body) return Problem(400, "The request body must be a JSON object.");
    const std::optional<std::string> user = StringField(*body, "user");
    std::optional<std::string> course_id;
    if (const json::value* details = body->if_contains("course_details");
        details != nullptr && details->is_object()) {
      course_id = StringField(details->get_object(), "course_id");
    }
    if (!user || user->empty() || !course_id || course_id->empty()) {
      return Problem(400, "User and course ID must be specified to create a new enrollment.");
    }
    const std::string mode = StringField(*body, "mode").value_or("audit");
    bool is_active = true;
    if (const json::value* active = body->if_contains("is_active"); active != nullptr) {
      if (!active->is_bool()) return Problem(400, "'is_active' must be a boolean.");
      is_active = active->get_bool();
    }
    LmsEnrollment* enrollment = nullptr;
    for (LmsEnrollment& existing : enrollments_) {
      if (existing.user == *user && existing.course_id == *course_id) enrollment = &existing;
    }
    if (!is_active && enrollment != nullptr && enrollment->is_active && enrollment->mode != mode) {
      return Problem(400, fmt::format("Enrollment mode mismatch: active mode={}, requested "
                                      "mode={}. Won't deactivate.",
                                      enrollment->mode, mode));
    }
    if (enrollment == nullptr) {
      enrollments_.push_back(LmsEnrollment{.user = *user, .course_id = *course_id});
      enrollment = &enrollments_.back();
    }
    enrollment->mode = mode;
    enrollment->is_active = is_active;
    CountEffect(is_active ? "enrollment" : "unenrollment", request);
    return JsonReply(200,
                     json::object{{"user", *user},
                                  {"mode", mode},
                                  {"is_active", is_active},
                                  {"course_details", json::object{{"course_id", *course_id}}}});
  }

  Reply CreateEntitlement(const Request& request) {
    std::optional<json::object> body = ParseObject(request.body);
    if (!body) return Problem(400, "The request body must be a JSON object.");
    LmsEntitlement entitlement;
    for (auto [field, out] :
         {std::pair{"user", &entitlement.user}, std::pair{"course_uuid", &entitlement.course_uuid},
          std::pair{"mode", &entitlement.mode}}) {
      std::optional<std::string> value = StringField(*body, field);
      if (!value || value->empty()) return Problem(400, fmt::format("'{}' is required.", field));
      *out = std::move(*value);
    }
    entitlement.order_number = StringField(*body, "order_number").value_or("");
    entitlement.uuid = EventId::NewRandom().ToString();
    entitlements_.push_back(entitlement);
    CountEffect("entitlement", request);
    return JsonReply(201, json::object{{"uuid", entitlement.uuid},
                                       {"user", entitlement.user},
                                       {"course_uuid", entitlement.course_uuid},
                                       {"mode", entitlement.mode},
                                       {"order_number", entitlement.order_number},
                                       {"expired_at", nullptr}});
  }

  Reply RevokeEntitlement(const Request& request, std::string_view uuid) {
    for (LmsEntitlement& entitlement : entitlements_) {
      if (entitlement.uuid != uuid) continue;
      if (!entitlement.revoked) {
        entitlement.revoked = true;
        CountEffect("entitlement_revocation", request);
      }
      return Reply{.status = 204, .body = ""};
    }
    return JsonReply(404, json::object{{"detail", "Not found."}});
  }

  Reply HandleControl(const Request& request) {
    if (request.path == "/control/stats" && request.method == "GET") {
      return JsonReply(200, StatsJson());
    }
    if (request.path == "/control/records" && request.method == "GET") {
      return JsonReply(200, RecordsJson());
    }
    if (request.path == "/control/reset" && request.method == "POST") {
      stats_ = LmsStandinStats{.control_requests = 1};
      enrollments_.clear();
      entitlements_.clear();
      answers_.clear();
      return JsonReply(200, json::object{{"reset", true}});
    }
    if (request.path == "/control/faults" && request.method == "POST")
      return SetFaultsFrom(request);
    return Problem(404, "Not found.");
  }

  Reply SetFaultsFrom(const Request& request) {
    std::optional<json::object> body = ParseObject(request.body);
    if (!body) return Problem(400, "The request body must be a JSON object.");
    LmsFaults faults = stats_.faults;
    for (const auto& [key, value] : *body) {
      if (!value.is_int64() || value.get_int64() < 0) {
        return Problem(400,
                       fmt::format("'{}' must be a non-negative integer.", std::string_view(key)));
      }
      const int64_t number = value.get_int64();
      if (key == "fail_next") {
        faults.fail_next = static_cast<uint64_t>(number);
      } else if (key == "status") {
        if (number < 100 || number > 599) return Problem(400, "'status' must be 100 to 599.");
        faults.fail_status = static_cast<int>(number);
      } else if (key == "drop_next") {
        faults.drop_next = static_cast<uint64_t>(number);
      } else if (key == "delay_next") {
        faults.delay_next = static_cast<uint64_t>(number);
      } else if (key == "delay_ms") {
        faults.delay_ms = number;
      } else {
        return Problem(400, fmt::format("unknown fault '{}'.", std::string_view(key)));
      }
    }
    stats_.faults = faults;
    return JsonReply(200, FaultsJson());
  }

  json::object FaultsJson() const {
    const LmsFaults& faults = stats_.faults;
    return json::object{{"fail_next", faults.fail_next},
                        {"status", faults.fail_status},
                        {"drop_next", faults.drop_next},
                        {"delay_next", faults.delay_next},
                        {"delay_ms", faults.delay_ms}};
  }

  json::object StatsJson() const {
    json::object by_kind;
    for (const auto& [kind, count] : stats_.effects_by_kind) by_kind[kind] = count;
    json::object by_key;
    for (const auto& [key, count] : stats_.effects_by_key) by_key[key] = count;
    return json::object{{"requests", stats_.requests},
                        {"control_requests", stats_.control_requests},
                        {"connections_accepted", stats_.connections_accepted},
                        {"replays", stats_.replays},
                        {"bad_requests", stats_.bad_requests},
                        {"effects_by_kind", std::move(by_kind)},
                        {"effects_by_key", std::move(by_key)},
                        {"faults", FaultsJson()}};
  }

  json::object RecordsJson() const {
    json::array enrollments;
    for (const LmsEnrollment& enrollment : enrollments_) {
      enrollments.push_back(json::object{{"user", enrollment.user},
                                         {"course_id", enrollment.course_id},
                                         {"mode", enrollment.mode},
                                         {"is_active", enrollment.is_active}});
    }
    json::array entitlements;
    for (const LmsEntitlement& entitlement : entitlements_) {
      entitlements.push_back(json::object{{"uuid", entitlement.uuid},
                                          {"user", entitlement.user},
                                          {"course_uuid", entitlement.course_uuid},
                                          {"mode", entitlement.mode},
                                          {"order_number", entitlement.order_number},
                                          {"revoked", entitlement.revoked}});
    }
    return json::object{{"enrollments", std::move(enrollments)},
                        {"entitlements", std::move(entitlements)}};
  }

  const std::string api_key_;
  mutable std::mutex mutex_;
  LmsStandinStats stats_{};
  std::vector<LmsEnrollment> enrollments_{};
  std::vector<LmsEntitlement> entitlements_{};
  std::unordered_map<std::string, StoredAnswer> answers_{};
};

// One client connection: reads requests one after the other, answers each (or drops, or delays),
// until the client closes, a request is malformed, or the connection idles too long.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, State& state)
      : stream_(std::move(socket)), timer_(stream_.get_executor()), state_(state) {}

  void Start() { ReadRequest(); }

 private:
  void ReadRequest() {
    parser_.emplace();
    parser_->body_limit(kBodyBytesMax);
    parser_->header_limit(kHeaderBytesMax);
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](const beast::error_code& error, size_t) {
                       self->OnRead(error);
                     });
  }

  void OnRead(const beast::error_code& error) {
    if (error == http::error::end_of_stream || error == beast::error::timeout ||
        error == asio::error::operation_aborted || error == asio::error::connection_reset ||
        error == asio::error::eof) {
      Close();
      return;
    }
    if (error) {
      // Not HTTP, or over a limit: say so once and hang up (the stream may be anywhere).
      state_.CountBadRequest();
      Answer(Reply{.status = 400,
                   .body = json::serialize(
                       json::object{{"message", "malformed request: " + error.message()}})},
             false);
      return;
    }
    http::request<http::string_body> request = parser_->release();
    Request reduced;
    reduced.method = std::string(request.method_string());
    const std::string_view target = request.target();
    reduced.path = std::string(target.substr(0, target.find('?')));
    if (auto found = request.find("X-Edx-Api-Key"); found != request.end()) {
      reduced.api_key = std::string(found->value());
    }
    if (auto found = request.find("Idempotency-Key"); found != request.end()) {
      reduced.idempotency_key = std::string(found->value());
    }
    reduced.body = std::move(request.body());
    Reply reply = state_.Handle(reduced);
    if (reply.drop) {
      Close();
      return;
    }
    Answer(std::move(reply), request.keep_alive());
  }

  void Answer(Reply reply, bool keep_alive) {
    response_.emplace(static_cast<http::status>(reply.status), 11);
    response_->set(http::field::server, "orderledger-lms-standin");
    if (!reply.body.empty()) response_->set(http::field::content_type, "application/json");
    if (reply.replayed) response_->set("Idempotent-Replayed", "true");
    response_->body() = std::move(reply.body);
    response_->keep_alive(keep_alive);
    response_->prepare_payload();
    if (reply.delay_ms <= 0) {
      Write();
      return;
    }
    stream_.expires_never();
    timer_.expires_after(std::chrono::milliseconds(reply.delay_ms));
    timer_.async_wait([self = shared_from_this()](const beast::error_code& error) {
      if (!error) self->Write();
    });
  }

  void Write() {
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this()](const beast::error_code& error, size_t) {
                        self->OnWrite(error);
                      });
  }

  void OnWrite(const beast::error_code& error) {
    if (error || !response_->keep_alive()) {
      Close();
      return;
    }
    response_.reset();
    ReadRequest();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  State& state_;
  beast::flat_buffer buffer_{};
  std::optional<http::request_parser<http::string_body>> parser_{};
  std::optional<http::response<http::string_body>> response_{};
};

}  // namespace

uint64_t LmsStandinStats::Effects(const std::string& kind) const {
  auto found = effects_by_kind.find(kind);
  return found == effects_by_kind.end() ? 0 : found->second;
}

uint64_t LmsStandinStats::EffectsForKey(const std::string& idempotency_key) const {
  auto found = effects_by_key.find(idempotency_key);
  return found == effects_by_key.end() ? 0 : found->second;
}

class LmsStandin::Impl {
 public:
  explicit Impl(const LmsStandinOptions& options)
      : state_(options.api_key), io_(std::make_unique<asio::io_context>(1)) {}

  ~Impl() { Stop(); }

  std::optional<std::string> Bind(const LmsStandinOptions& options) {
    boost::system::error_code error;
    const asio::ip::address address = asio::ip::make_address(options.address, error);
    if (error) return fmt::format("invalid address \"{}\": {}", options.address, error.message());
    const tcp::endpoint endpoint(address, options.port);
    acceptor_.emplace(*io_);
    if (acceptor_->open(endpoint.protocol(), error) ||
        acceptor_->set_option(asio::socket_base::reuse_address(true), error) ||
        acceptor_->bind(endpoint, error) ||
        acceptor_->listen(asio::socket_base::max_listen_connections, error)) {
      return fmt::format("cannot listen on {}:{}: {}", options.address, options.port,
                         error.message());
    }
    port_ = acceptor_->local_endpoint().port();
    address_ = options.address;
    return std::nullopt;
  }

  void Run() {
    Accept();
    thread_ = std::thread([this] {
      // The connection loop is one of the two places exceptions are caught: a handler that
      // throws (an allocation failure) loses its connection, never the server.
      for (;;) {
        try {
          io_->run();
          return;
        } catch (const std::exception& error) {
          std::fprintf(stderr, "lms_standin: a connection failed: %s\n", error.what());
        }
      }
    });
  }

  void Stop() {
    std::lock_guard lock(stop_mutex_);
    if (!io_) return;
    io_->stop();
    if (thread_.joinable()) thread_.join();
    acceptor_.reset();
    io_.reset();  // Destroys pending handlers, and with them every connection.
  }

  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }
  State& state() { return state_; }

 private:
  void Accept() {
    acceptor_->async_accept([this](const boost::system::error_code& error, tcp::socket socket) {
      if (error == asio::error::operation_aborted) return;
      if (!error) {
        state_.CountConnection();
        std::make_shared<Session>(std::move(socket), state_)->Start();
      }
      Accept();
    });
  }

  State state_;
  std::mutex stop_mutex_;
  std::unique_ptr<asio::io_context> io_;
  std::optional<tcp::acceptor> acceptor_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::string address_;
};

Result<std::unique_ptr<LmsStandin>, std::string> LmsStandin::Start(LmsStandinOptions options) {
  auto impl = std::make_unique<Impl>(options);
  if (auto problem = impl->Bind(options)) return Unexpected(std::move(*problem));
  impl->Run();
  return std::unique_ptr<LmsStandin>(new LmsStandin(std::move(impl)));
}

LmsStandin::LmsStandin(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LmsStandin::~LmsStandin() = default;

uint16_t LmsStandin::port() const { return impl_->port(); }
std::string LmsStandin::url() const {
  const std::string& address = impl_->address();
  if (address.find(':') != std::string::npos) {
    return fmt::format("http://[{}]:{}", address, impl_->port());
  }
  return fmt::format("http://{}:{}", address, impl_->port());
}
void LmsStandin::Stop() { impl_->Stop(); }
LmsStandinStats LmsStandin::Stats() const { return impl_->state().Stats(); }
std::vector<LmsEnrollment> LmsStandin::Enrollments() const { return impl_->state().Enrollments(); }
std::vector<LmsEntitlement> LmsStandin::Entitlements() const {
  return impl_->state().Entitlements();
}
void LmsStandin::SetFaults(const LmsFaults& faults) { impl_->state().SetFaults(faults); }
void LmsStandin::Reset() { impl_->state().Reset(); }

}  // namespace ledger::server
