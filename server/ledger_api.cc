#include "server/ledger_api.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <cctype>
#include <chrono>
#include <ctime>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/text.h"
#include "domain/limits.h"
#include "domain/money.h"
#include "domain/rejection.h"
#include "domain/status.h"
#include "eventstore/event_codec.h"
#include "projections/history.h"
#include "projections/order_status_projection.h"
#include "projections/payments_projection.h"
#include "projections/revenue_projection.h"
#include "server/api_json.h"
#include "server/event_stream.h"

namespace ledger::server {
namespace {

namespace json = boost::json;
using domain::RejectionCode;

// Nesting deeper than any request of the API needs: a hostile document is refused early.
constexpr size_t kJsonDepthMax = 16;

// The one table from rejections to HTTP statuses (see the header comment). A switch without a
// default: the compiler names a new code that is missing here.
int RejectionStatus(RejectionCode code) {
  switch (code) {
    case RejectionCode::kInvalidOrderNumber:
    case RejectionCode::kMissingField:
    case RejectionCode::kInvalidText:
    case RejectionCode::kLimitExceeded:
    case RejectionCode::kInvalidTime:
    case RejectionCode::kUnknownCurrency:
    case RejectionCode::kInvalidFailureKind:
    case RejectionCode::kCaptureNotPositive:
    case RejectionCode::kEmptyBasket:
    case RejectionCode::kDuplicateLineId:
    case RejectionCode::kNonPositiveQuantity:
    case RejectionCode::kNegativeAmount:
    case RejectionCode::kAmountOverflow:
    case RejectionCode::kTotalMismatch:
      return 400;
    case RejectionCode::kStreamMismatch:
    case RejectionCode::kCaptureReferenceReused:
    case RejectionCode::kDuplicateOrderAttempt:
      return 409;
    case RejectionCode::kPaymentMissing:
    case RejectionCode::kCurrencyMismatch:
    case RejectionCode::kPaymentShort:
      return 422;
    case RejectionCode::kOrderNotFound:
    case RejectionCode::kUnknownLine:
      return 404;
    case RejectionCode::kLineAlreadyComplete:
    case RejectionCode::kLineRevoked:
    case RejectionCode::kLineNotFulfilled:
    case RejectionCode::kNothingToFulfill:
    case RejectionCode::kLineNotFulfillable:
    case RejectionCode::kRevocationPending:
      return 409;
  }
  return 500;
}

HttpServerResponse StoreErrorResponse(const eventstore::Error& error) {
  using eventstore::ErrorCode;
  // Contention and I/O trouble may pass: 503 tells the client to retry (appends are idempotent).
  const bool retryable = error.code == ErrorCode::kWrongExpectedVersion ||
                         error.code == ErrorCode::kIoError || error.code == ErrorCode::kClosed;
  return ErrorResponse(retryable ? 503 : 500, eventstore::ErrorCodeName(error.code), error.message);
}

// A rejection's message, with its detail when it has one.
std::string RejectionText(const domain::Rejection& rejection) {
  std::string message(domain::RejectionMessage(rejection.code));
  if (!rejection.detail.empty()) message += ": " + rejection.detail;
  return message;
}

HttpServerResponse FailureResponse(const eventstore::CommandFailure& failure) {
  if (failure.rejection) {
    const domain::Rejection& rejection = *failure.rejection;
    return ErrorResponse(RejectionStatus(rejection.code), domain::RejectionName(rejection.code),
                         RejectionText(rejection));
  }
  if (failure.store_error) return StoreErrorResponse(*failure.store_error);
  return ErrorResponse(500, "internal_error", failure.ToString());
}

// The answer to a path that names no possible order (a NUL, a slash, 300 bytes): the 400 that
// placing an order under that number gets, not a store error.
std::optional<HttpServerResponse> InvalidOrderNumber(std::string_view number) {
  auto rejection = domain::CheckOrderNumber(number);
  if (!rejection) return std::nullopt;
  return FailureResponse(
      eventstore::CommandFailure{.rejection = std::move(*rejection), .store_error = std::nullopt});
}

HttpServerResponse JsonResponse(int status, const json::value& body) {
  return {.status = status, .content_type = "application/json", .body = json::serialize(body)};
}

// ---- Reading request bodies ----

struct ApiError {
  int status = 400;
  std::string code;
  std::string message;
};

// Reads the fields of one JSON object, remembering the first problem (a missing, mistyped or
// unknown field); later reads after a problem return defaults.
class ObjectReader {
 public:
  ObjectReader(const json::object& object, std::string path, std::optional<ApiError>& error)
      : object_(object), path_(std::move(path)), error_(error) {}

  std::string Name(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  const json::value* Find(std::string_view key, bool required) {
    if (error_) return nullptr;
    const json::value* value = object_.if_contains(key);
    if (value != nullptr && value->is_null()) value = nullptr;
    if (value == nullptr && required) Fail("missing_field", Name(key) + " is required");
    return value;
  }

  std::string String(std::string_view key, bool required) {
    const json::value* value = Find(key, required);
    if (value == nullptr) return {};
    if (!value->is_string()) {
      Fail("invalid_field", Name(key) + " must be a string");
      return {};
    }
    return std::string(value->get_string());
  }

  std::optional<std::string> OptionalString(std::string_view key) {
    if (Find(key, false) == nullptr) return std::nullopt;
    return String(key, false);
  }

  int64_t Integer(std::string_view key, bool required) {
    const json::value* value = Find(key, required);
    if (value == nullptr) return 0;
    if (value->is_int64()) return value->get_int64();
    Fail("invalid_field", Name(key) + " must be an integer (of 64 bits)");
    return 0;
  }

  const json::object* Object(std::string_view key, bool required) {
    const json::value* value = Find(key, required);
    if (value == nullptr) return nullptr;
    if (!value->is_object()) {
      Fail("invalid_field", Name(key) + " must be an object");
      return nullptr;
    }
    return &value->get_object();
  }

  const json::array* Array(std::string_view key, bool required) {
    const json::value* value = Find(key, required);
    if (value == nullptr) return nullptr;
    if (!value->is_array()) {
      Fail("invalid_field", Name(key) + " must be an array");
      return nullptr;
    }
    return &value->get_array();
  }

  // An amount as a decimal string in `currency` (already known to exist).
  int64_t Amount(std::string_view key, std::string_view currency, bool required) {
    const json::value* value = Find(key, required);
    if (value == nullptr) return 0;
    if (!value->is_string()) {
      Fail("invalid_amount", Name(key) + " must be a decimal string such as \"49.00\"");
      return 0;
    }
    auto parsed = domain::ParseMinorUnits(value->get_string(), currency);
    if (!parsed) {
      Fail("invalid_amount", fmt::format("{} \"{}\" is not an amount in {}: {}", Name(key),
                                         std::string_view(value->get_string()), currency,
                                         domain::MoneyErrorName(parsed.error())));
      return 0;
    }
    return *parsed;
  }

  void RejectUnknown(std::initializer_list<std::string_view> known) {
    if (error_) return;
    for (const auto& [key, value] : object_) {
      bool is_known = false;
      for (std::string_view name : known) is_known = is_known || key == name;
      if (!is_known) {
        Fail("unknown_field", Name(key) + " is not a field of this request");
        return;
      }
    }
  }

  void Fail(std::string code, std::string message) {
    if (!error_) error_ = ApiError{400, std::move(code), std::move(message)};
  }

 private:
  const json::object& object_;
  std::string path_;
  std::optional<ApiError>& error_;
};

// A basic_parser handler that stops at the first key given twice in one object: json::parse
// keeps the last one silently, so {"amount":"1.00","amount":"2.00"} would record 2.00 without a
// word. Only keys are looked at; the values are json::parse's.
class DuplicateKeyFinder {
 public:
  static constexpr size_t max_array_size = static_cast<size_t>(-1);
  static constexpr size_t max_object_size = static_cast<size_t>(-1);
  static constexpr size_t max_string_size = static_cast<size_t>(-1);
  static constexpr size_t max_key_size = static_cast<size_t>(-1);
  using error_code = boost::system::error_code;
  using string_view = json::string_view;

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(size_t, error_code&) { return true; }
  bool on_object_begin(error_code&) {
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(size_t, error_code&) {
    keys_.pop_back();
    return true;
  }
  bool on_string_part(string_view, size_t, error_code&) { return true; }
  bool on_string(string_view, size_t, error_code&) { return true; }
  bool on_key_part(string_view part, size_t, error_code&) {
    key_.append(part.data(), part.size());
    return true;
  }
  bool on_key(string_view part, size_t, error_code& ec) {
    key_.append(part.data(), part.size());
    if (!keys_.back().insert(key_).second) {
      duplicate = std::move(key_);
      ec = make_error_code(boost::system::errc::invalid_argument);
      return false;
    }
    key_.clear();
    return true;
  }
  bool on_number_part(string_view, error_code&) { return true; }
  bool on_int64(int64_t, string_view, error_code&) { return true; }
  bool on_uint64(uint64_t, string_view, error_code&) { return true; }
  bool on_double(double, string_view, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

  std::optional<std::string> duplicate;  // The key found twice.

 private:
  std::vector<std::set<std::string, std::less<>>> keys_;  // One set per open object.
  std::string key_;
};

// The body as a JSON object, or the error to answer.
Result<json::object, ApiError> ParseBody(std::string_view body, bool empty_is_object) {
  if (body.empty() && empty_is_object) return json::object();
  json::parse_options options;
  options.max_depth = kJsonDepthMax;
  boost::system::error_code ec;
  json::value value = json::parse(body, ec, {}, options);
  if (ec) {
    return Unexpected(ApiError{400, "malformed_json", "the body is not JSON: " + ec.message()});
  }
  if (!value.is_object()) {
    return Unexpected(ApiError{400, "malformed_json", "the body must be a JSON object"});
  }
  json::basic_parser<DuplicateKeyFinder> keys(options);
  keys.write_some(false, body.data(), body.size(), ec);
  if (const std::optional<std::string>& key = keys.handler().duplicate) {
    // Named, up to 64 bytes (cut at a character boundary: json::parse checked the UTF-8).
    size_t shown = std::min<size_t>(key->size(), 64);
    while (shown < key->size() && shown > 0 &&
           (static_cast<uint8_t>((*key)[shown]) & 0xC0) == 0x80) {
      --shown;
    }
    return Unexpected(ApiError{400, "malformed_json",
                               "the body gives \"" + key->substr(0, shown) +
                                   (shown < key->size() ? "..." : "") + "\" twice in one object"});
  }
  return std::move(value.get_object());
}

HttpServerResponse ToResponse(const ApiError& error) {
  return ErrorResponse(error.status, error.code, error.message);
}

// The currency field, checked against ISO 4217 before any amount is read.
std::string ReadCurrency(ObjectReader& reader, std::optional<ApiError>& error) {
  std::string currency = reader.String("currency", true);
  if (!error && !domain::FindCurrency(currency)) {
    reader.Fail("unknown_currency", "currency \"" + currency + "\" is not an ISO 4217 code");
  }
  return currency;
}

// "Fulfillment Error", "fulfillment_error", ... -> the status.
std::optional<domain::OrderStatus> ParseOrderStatus(std::string_view text) {
  for (domain::OrderStatus status : domain::AllOrderStatuses()) {
    const std::string_view name = domain::OrderStatusName(status);
    if (text.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      const char want = name[i] == ' ' ? '_' : static_cast<char>(std::tolower(name[i]));
      const char have = static_cast<char>(std::tolower(text[i]));
      same = have == want || text[i] == name[i];
    }
    if (same) return status;
  }
  return std::nullopt;
}

// A `limit` query parameter: `fallback` when absent, nullopt when not 1..maximum.
std::optional<size_t> ParseLimit(const HttpServerRequest& request, size_t fallback,
                                 size_t maximum) {
  auto text = request.Query("limit");
  if (!text) return fallback;
  auto value = ParseDecimal(*text);
  if (!value || *value == 0 || *value > maximum) return std::nullopt;
  return static_cast<size_t>(*value);
}

// The oldest age an orphan payments query may ask for: a century.
constexpr uint64_t kMinAgeSecondsMax = 100ull * 365 * 86'400;

HttpServerResponse LimitOutOfRange(size_t maximum) {
  return ErrorResponse(400, "invalid_parameter", fmt::format("limit must be 1..{}", maximum));
}

// A query's failure: kInvalidArgument (a cursor or range the list refuses) is the caller's.
HttpServerResponse QueryErrorResponse(const eventstore::Error& error) {
  if (error.code == eventstore::ErrorCode::kInvalidArgument) {
    return ErrorResponse(400, "invalid_parameter", error.message);
  }
  return StoreErrorResponse(error);
}

json::object CaptureJson(const projections::PaymentCapture& capture) {
  return {{"processor", capture.processor},
          {"reference", capture.reference},
          {"amount", AmountValue(capture.amount.minor_units, capture.amount.currency)},
          {"currency", capture.amount.currency},
          {"card_type", capture.card_type},
          {"card_last_digits", capture.card_last_digits},
          {"captured_at", TimeValue(capture.captured_at_us)},
          {"excess", capture.excess},
          {"position", capture.position},
          {"recorded_at", TimeValue(capture.recorded_at_us)}};
}

// Reads one basket line of a placement body.
// The answer the domain gives to a basket over its limits (RejectionCode::kLimitExceeded).
ApiError LimitExceeded(std::string detail) {
  const domain::Rejection rejection{RejectionCode::kLimitExceeded, std::move(detail)};
  return ApiError{.status = RejectionStatus(rejection.code),
                  .code = std::string(domain::RejectionName(rejection.code)),
                  .message = RejectionText(rejection)};
}

domain::Line ReadLine(const json::value& value, size_t index, std::string_view currency,
                      std::optional<ApiError>& error) {
  const std::string path = "lines[" + std::to_string(index) + "]";
  domain::Line line;
  if (!value.is_object()) {
    error = ApiError{400, "invalid_field", path + " must be an object"};
    return line;
  }
  ObjectReader reader(value.get_object(), path, error);
  reader.RejectUnknown(
      {"line_id", "product_type", "sku", "title", "quantity", "unit_price", "attributes"});
  line.line_id = reader.String("line_id", true);
  line.product_type = reader.String("product_type", true);
  line.sku = reader.String("sku", false);
  line.title = reader.String("title", false);
  line.quantity = reader.Integer("quantity", true);
  line.unit_price_minor = reader.Amount("unit_price", currency, true);
  if (const json::object* attributes = reader.Object("attributes", false)) {
    // Counted before anything is copied: the domain refuses more with the same answer, but
    // only after the request's million attributes were copied twice (tens of MB per request).
    if (attributes->size() > domain::kAttributesPerLineMax && !error) {
      error = LimitExceeded(fmt::format("{}.attributes has {}, at most {}", path,
                                        attributes->size(), domain::kAttributesPerLineMax));
      return line;
    }
    for (const auto& [name, attribute] : *attributes) {
      if (!attribute.is_string()) {
        reader.Fail("invalid_field",
                    path + ".attributes." + std::string(name) + " must be a string");
        break;
      }
      line.attributes.push_back({std::string(name), std::string(attribute.get_string())});
    }
  }
  return line;
}

Result<domain::PlaceOrder, ApiError> ReadPlaceOrder(const json::object& body) {
  std::optional<ApiError> error;
  ObjectReader reader(body, "", error);
  reader.RejectUnknown({"order_number", "partner", "basket_id", "user", "lines", "shipping_method",
                        "shipping_charge", "billing_address", "order_total", "currency"});
  domain::PlaceOrder command;
  command.order_number = reader.OptionalString("order_number");
  command.partner = reader.String("partner", true);
  command.basket_id = reader.Integer("basket_id", false);
  command.currency = ReadCurrency(reader, error);
  if (const json::object* user = reader.Object("user", true)) {
    ObjectReader user_reader(*user, "user", error);
    user_reader.RejectUnknown({"id", "username", "email"});
    command.user.id = user_reader.Integer("id", true);
    // The LMS's user ids start at 1, and GET /v1/orders?user= takes only those: an order under
    // another id could be placed but never listed.
    if (command.user.id < 1) {
      user_reader.Fail("invalid_field", "user.id must be a positive integer");
    }
    command.user.username = user_reader.String("username", true);
    command.user.email = user_reader.String("email", false);
  }
  if (const json::array* lines = reader.Array("lines", true)) {
    if (lines->size() > domain::kLinesMax && !error) {
      error = LimitExceeded(fmt::format("{} lines, at most {}", lines->size(), domain::kLinesMax));
    }
    for (size_t i = 0; i < lines->size() && !error; ++i) {
      command.lines.push_back(ReadLine((*lines)[i], i, command.currency, error));
    }
  }
  command.shipping_method = reader.String("shipping_method", false);
  command.shipping_charge_minor = reader.Amount("shipping_charge", command.currency, false);
  if (const json::object* address = reader.Object("billing_address", false)) {
    ObjectReader address_reader(*address, "billing_address", error);
    address_reader.RejectUnknown(
        {"first_name", "last_name", "line1", "line2", "city", "state", "postcode", "country"});
    domain::Address& a = command.billing_address;
    a.first_name = address_reader.String("first_name", false);
    a.last_name = address_reader.String("last_name", false);
    a.line1 = address_reader.String("line1", false);
    a.line2 = address_reader.String("line2", false);
    a.city = address_reader.String("city", false);
    a.state = address_reader.String("state", false);
    a.postcode = address_reader.String("postcode", false);
    a.country = address_reader.String("country", false);
  }
  command.total_minor = reader.Amount("order_total", command.currency, true);
  if (error) return Unexpected(*error);
  return command;
}

}  // namespace

LedgerApi::LedgerApi(eventstore::EventStore& store,
                     std::vector<projections::ProjectionRunner*> runners,
                     fulfillment::ProcessManager* process_manager, LedgerApiOptions options)
    : store_(store),
      service_(store),
      runners_(std::move(runners)),
      process_manager_(process_manager),
      options_(std::move(options)),
      streams_(std::make_unique<EventStreamHub>(
          store, EventStreamOptions{.heartbeat_ms = options_.subscribe_heartbeat_ms})) {
  for (projections::ProjectionRunner* runner : runners_) {
    if (runner->name() == projections::OrderStatusProjection::kName) order_status_ = runner;
  }
  LEDGER_ASSERT(order_status_ != nullptr, "LedgerApi needs the order_status projection");
}

LedgerApi::~LedgerApi() = default;

int64_t LedgerApi::NowUs() const {
  if (options_.clock_us) return options_.clock_us();
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void LedgerApi::Register(Router& router) {
  // Who may call what (server/auth.h); without an authenticator every route is open.
  constexpr Roles kWriter = static_cast<Roles>(Role::kWriter);
  constexpr Roles kOps = static_cast<Roles>(Role::kOps);
  constexpr Roles kQueries = Role::kReader | Role::kOps | Role::kAuditor;
  // `query`: the parameters the endpoint takes; any other is 400, not ignored.
  auto add = [this, &router](std::string method, std::string_view pattern,
                             std::optional<Roles> allowed,
                             HttpServerResponse (LedgerApi::*member)(const HttpServerRequest&),
                             std::vector<std::string> query = {}) {
    HttpHandler handler = AcceptingQuery(
        std::move(query),
        [this, member](const HttpServerRequest& request) { return (this->*member)(request); });
    if (allowed && options_.auth != nullptr) {
      handler = options_.auth->Guard(*allowed, std::move(handler));
    }
    router.Add(std::move(method), pattern, std::move(handler));
  };
  add("POST", "/v1/payments", kWriter, &LedgerApi::PostPayment);
  add("POST", "/v1/orders", kWriter, &LedgerApi::PostOrder, {"fulfillment"});
  add("GET", "/v1/orders/{number}", kQueries, &LedgerApi::GetOrder, {"as_of", "min_position"});
  add("GET", "/v1/orders/{number}/events", kQueries, &LedgerApi::GetOrderEvents);
  add("POST", "/v1/orders/{number}/fulfill", kOps, &LedgerApi::PostFulfill);
  add("POST", "/v1/orders/{number}/lines/{line_id}/revoke", kOps, &LedgerApi::PostRevoke);
  add("GET", "/healthz", std::nullopt, &LedgerApi::GetHealth);
  add("GET", "/v1/orders", kQueries, &LedgerApi::ListOrders,
      {"status", "user", "line_status", "placed_from", "placed_to", "limit", "cursor"});
  add("GET", "/v1/events", kQueries, &LedgerApi::GetEvents, {"from", "limit"});
  add("GET", "/v1/projections", kQueries, &LedgerApi::GetProjections);
  add("POST", "/v1/projections/{name}/rebuild", kOps, &LedgerApi::PostRebuild);
  add("GET", "/v1/payments/orphans", kQueries, &LedgerApi::ListOrphans,
      {"min_age_s", "limit", "cursor"});
  add("GET", "/v1/payments/excess", kQueries, &LedgerApi::ListExcess, {"limit", "cursor"});
  add("GET", "/v1/revenue", kQueries, &LedgerApi::GetRevenue, {"from", "to"});
  add("GET", "/v1/subscribe", kQueries, &LedgerApi::Subscribe, {"from", "stream_prefix", "types"});
  add("GET", "/metrics", std::nullopt, &LedgerApi::GetMetrics);
  add("GET", "/v1/whoami", kAllRoles, &LedgerApi::GetWhoami);
}

std::string LedgerApi::Actor(const HttpServerRequest& request) const {
  if (options_.auth == nullptr) return "api";
  const std::optional<TokenGrant> grant = options_.auth->Authenticate(request);
  return grant ? "api:" + grant->name : "api";
}

std::optional<HttpServerResponse> LedgerApi::CheckRequestedBy(std::string& requested_by,
                                                              const std::string& actor) {
  // The process manager's own requests (its automatic retries) say so in requested_by; a
  // caller's request must not pass for one in the log.
  if (boost::beast::iequals(requested_by, "process-manager")) {
    return ErrorResponse(400, "invalid_field",
                         "requested_by \"" + requested_by +
                             "\" is the process manager's: automatic retries are its own");
  }
  if (requested_by.empty()) requested_by = actor;
  return std::nullopt;
}

HttpServerResponse LedgerApi::GetWhoami(const HttpServerRequest& request) {
  std::optional<TokenGrant> grant;
  if (options_.auth != nullptr) grant = options_.auth->Authenticate(request);
  const Roles roles = grant ? grant->roles : kAllRoles;
  json::array names;
  for (const Role role : {Role::kWriter, Role::kReader, Role::kOps, Role::kAuditor}) {
    if ((roles & static_cast<Roles>(role)) != 0)
      names.emplace_back(RoleNames(static_cast<Roles>(role)));
  }
  return JsonResponse(
      200, json::object{{"name", grant ? grant->name : "unauthenticated (no access control)"},
                        {"roles", std::move(names)}});
}

// How far /metrics counts each queue of orders (see OrderStatusProjection::CountByStatus).
constexpr uint64_t kQueueCountMax = 100'000;

HttpServerResponse LedgerApi::GetMetrics(const HttpServerRequest&) {
  using Kind = MetricSample::Kind;
  PrometheusText out;
  const uint64_t head = store_.HeadPosition();
  const eventstore::StoreStats store = store_.stats();
  out.Samples({
      {Kind::kGauge, "ledger_store_head_position", "Position of the last committed event", head},
      {Kind::kCounter, "ledger_store_appends_total", "Appends that wrote events", store.appends},
      {Kind::kCounter, "ledger_store_events_appended_total", "Events written",
       store.events_appended},
      {Kind::kCounter, "ledger_store_appends_replayed_total",
       "Idempotent repeats answered without writing", store.appends_replayed},
      {Kind::kCounter, "ledger_store_appends_rejected_total",
       "Appends refused (wrong expected version, invalid)", store.appends_rejected},
      {Kind::kCounter, "ledger_store_group_commits_total", "Synced writes, each one group commit",
       store.group_commits},
  });
  out.Histogram("ledger_store_group_commit_events", "Events per group commit", store.group_events);
  out.Histogram("ledger_store_write_seconds", "Time of each group commit's write, fsync included",
                store.write_seconds);
  // Each family's samples one after the other, as the format wants.
  for (const bool lag : {false, true}) {
    for (projections::ProjectionRunner* runner : runners_) {
      const MetricLabels labels{{"projection", std::string(runner->name())}};
      if (lag) {
        out.Gauge("ledger_projection_lag_events", "Events committed and not yet applied",
                  static_cast<double>(runner->lag()), labels);
      } else {
        out.Gauge("ledger_projection_checkpoint", "Last position the projection has applied",
                  static_cast<double>(runner->checkpoint()), labels);
      }
    }
  }
  // Ops' two queues, from the order status projection (what GET /v1/orders?status=... and
  // ?line_status=revocation_error list). A count the store cannot give is left out, not a 0.
  {
    using projections::OrderStatusProjection;
    const projections::ProjectionView view = order_status_->View();
    if (auto errors = OrderStatusProjection::CountByStatus(
            view, domain::OrderStatus::kFulfillmentError, kQueueCountMax)) {
      out.Gauge("ledger_orders_fulfillment_error",
                "Orders in Fulfillment Error (counted up to 100000)", static_cast<double>(*errors));
    }
    if (auto errors = OrderStatusProjection::CountWithRevocationErrors(view, kQueueCountMax)) {
      out.Gauge("ledger_orders_revocation_error",
                "Orders with a line in Revocation Error (counted up to 100000)",
                static_cast<double>(*errors));
    }
  }
  if (process_manager_ != nullptr) {
    const fulfillment::ProcessManagerStats pm = process_manager_->stats();
    out.Samples({
        {Kind::kGauge, "ledger_fulfillment_lag_events",
         "Events the process manager has not read yet",
         head > pm.checkpoint ? head - pm.checkpoint : 0},
        {Kind::kCounter, "ledger_fulfillment_attempts_total", "Lines handed to fulfillment modules",
         pm.attempts},
        {Kind::kCounter, "ledger_fulfillment_lines_fulfilled_total", "Lines fulfilled",
         pm.lines_fulfilled},
        {Kind::kCounter, "ledger_fulfillment_lines_failed_total", "Line attempts that failed",
         pm.lines_failed},
        {Kind::kCounter, "ledger_fulfillment_lines_revoked_total", "Lines revoked",
         pm.lines_revoked},
        {Kind::kCounter, "ledger_fulfillment_revocations_failed_total", "Revocations that failed",
         pm.revocations_failed},
        {Kind::kCounter, "ledger_fulfillment_automatic_retries_total",
         "Retries the process manager requested on its own", pm.automatic_retries},
        {Kind::kGauge, "ledger_fulfillment_retries_pending",
         "Automatic retries scheduled, not yet issued", pm.retries_pending},
        {Kind::kGauge, "ledger_fulfillment_orders_in_flight",
         "Orders whose lines are being fulfilled", pm.orders_in_flight},
    });
  }
  out.Samples({
      {Kind::kGauge, "ledger_subscribe_streams", "Open GET /v1/subscribe streams",
       streams_->streams_open()},
      {Kind::kCounter, "ledger_subscribe_events_sent_total", "Events sent to subscribers",
       streams_->events_sent()},
  });
  if (options_.http_metrics != nullptr) options_.http_metrics->Write(out);
  if (options_.extra_metrics) options_.extra_metrics(out);
  return {.status = 200,
          .content_type = "text/plain; version=0.0.4; charset=utf-8",
          .body = out.text()};
}

HttpServerResponse LedgerApi::Subscribe(const HttpServerRequest& request) {
  uint64_t first_position = 1;
  if (auto from = request.Query("from")) {
    auto parsed = ParseDecimal(*from);
    if (!parsed) return ErrorResponse(400, "invalid_parameter", "from must be a position");
    first_position = *parsed;
  }
  // An EventSource reconnecting: resume right after the last event it received.
  size_t last_event_ids = 0;
  for (const auto& [name, value] : request.headers) {
    if (boost::beast::iequals(name, "last-event-id")) ++last_event_ids;
  }
  if (last_event_ids > 1) {
    return ErrorResponse(400, "invalid_parameter", "Last-Event-ID is given more than once");
  }
  if (auto last = request.Header("last-event-id")) {
    auto parsed = ParseDecimal(*last);
    if (!parsed || *parsed == UINT64_MAX) {
      return ErrorResponse(400, "invalid_parameter", "Last-Event-ID must be a position");
    }
    first_position = *parsed + 1;
  }
  // Past the next position the log will take, the positions in between would be skipped without
  // a word: a client resuming against a ledger restored from an older copy must notice.
  if (const uint64_t head = store_.HeadPosition(); first_position > head + 1) {
    return ErrorResponse(
        400, "invalid_parameter",
        fmt::format("the stream would start at position {}, past the log's head ({}): the log "
                    "has no events {}..{} to send",
                    first_position, head, head + 1, first_position - 1));
  }
  EventFilter filter;
  filter.stream_prefix = std::string(request.Query("stream_prefix").value_or(""));
  if (auto types = request.Query("types"); types && !types->empty()) {
    const std::vector<std::string_view> known = domain::EventTypeNames();
    // Every comma separates two names: an empty one, first, last or between, is refused.
    for (size_t start = 0;;) {
      const size_t comma = types->find(',', start);
      const std::string_view type =
          types->substr(start, comma == std::string_view::npos ? comma : comma - start);
      if (std::find(known.begin(), known.end(), type) == known.end()) {
        return ErrorResponse(400, "invalid_parameter",
                             fmt::format("unknown event type '{}' in types (known: {})", type,
                                         fmt::join(known, ", ")));
      }
      filter.types.emplace_back(type);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  HttpServerResponse response{
      .status = 200,
      .content_type = "text/event-stream",
      // The reconnection delay an EventSource should use, in ms.
      .body = "retry: 1000\n\n",
      .headers = {{"Cache-Control", "no-store"}, {"X-Accel-Buffering", "no"}},
      .stream = streams_->Open(first_position, std::move(filter))};
  return response;
}

HttpServerResponse LedgerApi::PostPayment(const HttpServerRequest& request) {
  auto body = ParseBody(request.body, false);
  if (!body) return ToResponse(body.error());
  std::optional<ApiError> error;
  ObjectReader reader(*body, "", error);
  reader.RejectUnknown({"order_number", "processor", "reference", "amount", "currency", "card_type",
                        "card_last_digits"});
  domain::CapturePayment command;
  command.order_number = reader.String("order_number", true);
  command.processor = reader.String("processor", true);
  command.reference = reader.String("reference", true);
  command.amount.currency = ReadCurrency(reader, error);
  command.amount.minor_units = reader.Amount("amount", command.amount.currency, true);
  command.card_type = reader.String("card_type", false);
  command.card_last_digits = reader.String("card_last_digits", false);
  if (error) return ToResponse(*error);
  command.captured_at_us = NowUs();

  auto handled =
      service_.Handle(command, {.correlation_id = {}, .causation_id = {}, .actor = Actor(request)});
  if (!handled) return FailureResponse(handled.error());
  // A repeat appended nothing: the original capture's position comes from its event id.
  uint64_t position = handled->first_position;
  if (handled->events.empty()) {
    const EventId id =
        domain::DeterministicEventId(domain::PaymentCaptured{.order_number = command.order_number,
                                                             .processor = command.processor,
                                                             .reference = command.reference});
    auto original = store_.ReadEvent(id);
    if (!original) return StoreErrorResponse(original.error());
    if (*original) position = (*original)->position;
  }
  bool excess = false;
  for (const domain::CaptureRecord& capture : handled->order.state.captures) {
    if (capture.processor == command.processor && capture.reference == command.reference) {
      excess = capture.excess;
    }
  }
  return JsonResponse(
      handled->events.empty() ? 200 : 201,
      json::object{
          {"position", position}, {"order_number", command.order_number}, {"excess", excess}});
}

HttpServerResponse LedgerApi::PostOrder(const HttpServerRequest& request) {
  bool synchronous = options_.fulfillment_sync_default;
  if (auto mode = request.Query("fulfillment")) {
    if (*mode != "sync" && *mode != "async") {
      return ErrorResponse(400, "invalid_parameter", "fulfillment must be \"sync\" or \"async\"");
    }
    synchronous = *mode == "sync";
  }
  auto body = ParseBody(request.body, false);
  if (!body) return ToResponse(body.error());
  auto command = ReadPlaceOrder(*body);
  if (!command) return ToResponse(command.error());
  command->placed_at_us = NowUs();
  command->synchronous = synchronous;

  auto handled = service_.Handle(
      *command, {.correlation_id = {}, .causation_id = {}, .actor = Actor(request)});
  if (!handled) return FailureResponse(handled.error());
  const int status = handled->events.empty() ? 200 : 201;
  eventstore::LoadedOrder order = handled->order;
  json::object answer;
  if (synchronous && process_manager_ != nullptr) {
    auto outcome = process_manager_->WaitForOutcome(
        handled->order_number, std::chrono::milliseconds(options_.sync_timeout_ms));
    if (!outcome) return StoreErrorResponse(outcome.error());
    order = outcome->order;
    answer = OrderJson(order.state, order.position);
    answer["fulfillment"] = outcome->settled ? "settled" : "pending";
  } else {
    answer = OrderJson(order.state, order.position);
  }
  return JsonResponse(status, answer);
}

HttpServerResponse LedgerApi::GetOrder(const HttpServerRequest& request) {
  const std::string_view number = request.PathParam("number");
  if (auto invalid = InvalidOrderNumber(number)) return std::move(*invalid);
  if (auto as_of = request.Query("as_of")) {
    if (request.Query("min_position")) {
      return ErrorResponse(400, "invalid_parameter",
                           "as_of and min_position do not go together: as_of answers from the "
                           "log up to a point, min_position waits for the projection");
    }
    return GetOrderAsOf(request, *as_of);
  }
  if (auto min_position = request.Query("min_position")) {
    auto position = ParseDecimal(*min_position);
    if (!position) {
      return ErrorResponse(400, "invalid_parameter", "min_position must be a log position");
    }
    if (!order_status_->WaitFor(*position,
                                std::chrono::milliseconds(options_.min_position_wait_ms))) {
      return ErrorResponse(
          504, "projection_behind",
          fmt::format("the order_status projection is at position {}, not yet at {}",
                      order_status_->checkpoint(), *position));
    }
  }
  const projections::ProjectionView view = order_status_->View();
  auto row = projections::OrderStatusProjection::Get(view, number);
  if (!row) return StoreErrorResponse(row.error());
  if (!*row) {
    return ErrorResponse(404, "order_not_found", "no order " + std::string(number));
  }
  json::object answer = OrderJson((*row)->state, (*row)->position);
  answer["stream_version"] = (*row)->stream_version;
  answer["status_since"] = TimeValue((*row)->status_since_us);
  answer["projection_position"] = view.position();
  return JsonResponse(200, answer);
}

HttpServerResponse LedgerApi::GetOrderAsOf(const HttpServerRequest& request,
                                           std::string_view as_of) {
  const std::string_view number = request.PathParam("number");
  uint64_t position = 0;
  if (auto given = ParseDecimal(as_of)) {
    // A position the log has not reached yet has no fixed answer: refused, not answered as
    // of the head under a position that later events would change.
    if (const uint64_t head = store_.HeadPosition(); *given > head) {
      return ErrorResponse(400, "invalid_parameter",
                           fmt::format("as_of {} is past the log's head ({})", *given, head));
    }
    position = *given;
  } else if (auto time_us = ParseRfc3339(as_of)) {
    // Likewise a time to come: later events would change the answer.
    if (*time_us > NowUs()) {
      return ErrorResponse(400, "invalid_parameter",
                           fmt::format("as_of {} is in the future", as_of));
    }
    auto found = projections::PositionAtTime(store_, *time_us);
    if (!found) return StoreErrorResponse(found.error());
    position = *found;
  } else {
    return ErrorResponse(400, "invalid_parameter",
                         "as_of must be a log position or an RFC 3339 time");
  }
  auto loaded = projections::OrderAsOf(store_, number, position);
  if (!loaded) return StoreErrorResponse(loaded.error());
  if (!loaded->stream_version) {
    return ErrorResponse(404, "order_not_found",
                         fmt::format("no order {} at position {}", number, position));
  }
  json::object answer = OrderJson(loaded->state, loaded->position);
  answer["stream_version"] = *loaded->stream_version;
  answer["as_of_position"] = position;
  return JsonResponse(200, answer);
}

HttpServerResponse LedgerApi::GetOrderEvents(const HttpServerRequest& request) {
  if (auto invalid = InvalidOrderNumber(request.PathParam("number"))) return std::move(*invalid);
  const std::string stream = domain::OrderStreamName(request.PathParam("number"));
  json::array events;
  uint64_t from_version = 0;
  constexpr size_t kPage = 1000;
  while (events.size() < options_.stream_events_max) {
    auto page = store_.ReadStream(stream, eventstore::Direction::kForward, from_version, kPage);
    if (!page) return StoreErrorResponse(page.error());
    for (const eventstore::RecordedEvent& record : *page) {
      auto event = RecordJson(record);
      if (!event) return StoreErrorResponse(event.error());
      events.emplace_back(std::move(*event));
      from_version = record.version + 1;
    }
    if (page->size() < kPage) break;
  }
  if (events.empty()) {
    return ErrorResponse(404, "order_not_found",
                         "no order " + std::string(request.PathParam("number")));
  }
  // A stream longer than stream_events_max is cut; the caller pages the rest through
  // GET /v1/events.
  const bool truncated = events.size() >= options_.stream_events_max;
  return JsonResponse(200, json::object{{"order_number", request.PathParam("number")},
                                        {"events", std::move(events)},
                                        {"truncated", truncated}});
}

HttpServerResponse LedgerApi::PostFulfill(const HttpServerRequest& request) {
  if (process_manager_ == nullptr) {
    return ErrorResponse(503, "fulfillment_unavailable", "fulfillment is not running");
  }
  auto body = ParseBody(request.body, true);
  if (!body) return ToResponse(body.error());
  std::optional<ApiError> error;
  ObjectReader reader(*body, "", error);
  reader.RejectUnknown({"requested_by", "reason"});
  std::string requested_by = reader.String("requested_by", false);
  const std::string reason = reader.String("reason", false);
  if (error) return ToResponse(*error);
  const std::string actor = Actor(request);
  if (auto refused = CheckRequestedBy(requested_by, actor)) return std::move(*refused);
  const std::string_view number = request.PathParam("number");
  auto handled = process_manager_->RequestRetry(number, requested_by, reason, actor);
  if (!handled) return FailureResponse(handled.error());
  json::array line_ids;
  for (const domain::Event& event : handled->events) {
    if (auto* retry = std::get_if<domain::FulfillmentRetryRequested>(&event)) {
      line_ids = StringsJson(retry->line_ids);
    }
  }
  return JsonResponse(202, json::object{{"position", handled->first_position},
                                        {"order_number", number},
                                        {"line_ids", std::move(line_ids)}});
}

HttpServerResponse LedgerApi::PostRevoke(const HttpServerRequest& request) {
  if (process_manager_ == nullptr) {
    return ErrorResponse(503, "fulfillment_unavailable", "fulfillment is not running");
  }
  auto body = ParseBody(request.body, true);
  if (!body) return ToResponse(body.error());
  std::optional<ApiError> error;
  ObjectReader reader(*body, "", error);
  reader.RejectUnknown({"refund_reference", "requested_by"});
  const std::string refund_reference = reader.String("refund_reference", false);
  std::string requested_by = reader.String("requested_by", false);
  if (error) return ToResponse(*error);
  const std::string actor = Actor(request);
  if (auto refused = CheckRequestedBy(requested_by, actor)) return std::move(*refused);
  const std::string_view number = request.PathParam("number");
  const std::string_view line_id = request.PathParam("line_id");
  auto handled =
      process_manager_->Revoke(number, line_id, refund_reference, requested_by,
                               std::chrono::milliseconds(options_.sync_timeout_ms), actor);
  if (!handled) return FailureResponse(handled.error());
  const domain::OrderState& state = handled->order.state;
  const domain::LineState* line = state.FindLine(line_id);
  if (line == nullptr) return ErrorResponse(404, "unknown_line", "no line " + std::string(line_id));
  json::object answer{
      {"order_number", number},
      {"position", handled->order.position},
      {"order_status", domain::OrderStatusName(state.status)},
      {"line", LineStateJson(*line, state.placement ? state.placement->currency : std::string())}};
  // 202 while the revocation is still pending (recorded; the process manager finishes it).
  return JsonResponse(line->revocation_requested ? 202 : 200, answer);
}

HttpServerResponse LedgerApi::GetHealth(const HttpServerRequest&) {
  bool healthy = true;
  json::array projections;
  for (projections::ProjectionRunner* runner : runners_) {
    json::object projection{{"name", runner->name()},
                            {"checkpoint", runner->checkpoint()},
                            {"lag", runner->lag()},
                            {"generation", runner->generation()}};
    if (auto failure = runner->failure()) {
      healthy = false;
      projection["failure"] = failure->ToString();
    }
    projections.emplace_back(std::move(projection));
  }
  json::object answer{{"head_position", store_.HeadPosition()},
                      {"projections", std::move(projections)}};
  if (process_manager_ != nullptr) {
    const fulfillment::ProcessManagerStats stats = process_manager_->stats();
    json::object manager{
        {"checkpoint", stats.checkpoint},
        {"lag", store_.HeadPosition() - std::min(stats.checkpoint, store_.HeadPosition())},
        {"orders_in_flight", stats.orders_in_flight},
        {"retries_pending", stats.retries_pending},
        {"lines_fulfilled", stats.lines_fulfilled},
        {"lines_failed", stats.lines_failed}};
    if (stats.failure) {
      manager["failure"] = stats.failure->ToString();
      manager["failure_age_ms"] = stats.failure_age.count();
      // Failing still (a failing piece of work records its error again at each try): the
      // manager is not getting on with its work. An old failure is history, not health.
      if (stats.failure_age < std::chrono::seconds(10)) healthy = false;
    }
    answer["process_manager"] = std::move(manager);
  } else {
    answer["process_manager"] = nullptr;
  }
  // Components outside the API (the JetStream publisher): their detail, never their failure
  // as the ledger's (the ledger serves while they wait and retry).
  if (options_.extra_health) options_.extra_health(answer);
  answer["status"] = healthy ? "ok" : "degraded";
  return JsonResponse(healthy ? 200 : 503, answer);
}

HttpServerResponse LedgerApi::ListOrders(const HttpServerRequest& request) {
  using projections::OrderStatusProjection;
  auto limit = ParseLimit(request, 100, OrderStatusProjection::kPageRowsMax);
  if (!limit) return LimitOutOfRange(OrderStatusProjection::kPageRowsMax);
  const std::string_view cursor = request.Query("cursor").value_or("");
  auto status = request.Query("status");
  auto user = request.Query("user");
  auto line_status = request.Query("line_status");
  if ((status ? 1 : 0) + (user ? 1 : 0) + (line_status ? 1 : 0) > 1) {
    return ErrorResponse(400, "invalid_parameter", "give one of status, user and line_status");
  }
  // Only one line status has a list: the queue of revocations that failed.
  if (line_status && *line_status != "revocation_error" && *line_status != "Revocation Error") {
    return ErrorResponse(400, "invalid_parameter",
                         "line_status lists revocation_error only (lines whose revocation failed)");
  }
  // placed_from / placed_to: a UTC day (YYYY-MM-DD: from its start, to its end) or an RFC 3339
  // time, both included.
  auto placed_bound = [](std::string_view text, bool end_of_day) -> std::optional<int64_t> {
    if (text.size() == 10) {
      auto day = ParseRfc3339(std::string(text) + "T00:00:00Z");
      if (!day) return std::nullopt;
      return end_of_day ? *day + 86'400'000'000 - 1 : *day;
    }
    return ParseRfc3339(text);
  };
  auto placed_from = request.Query("placed_from");
  auto placed_to = request.Query("placed_to");
  std::optional<int64_t> from_us, to_us;
  if (placed_from && !(from_us = placed_bound(*placed_from, false))) {
    return ErrorResponse(400, "invalid_parameter", "placed_from must be YYYY-MM-DD or RFC 3339");
  }
  if (placed_to && !(to_us = placed_bound(*placed_to, true))) {
    return ErrorResponse(400, "invalid_parameter", "placed_to must be YYYY-MM-DD or RFC 3339");
  }
  if (from_us && to_us && *from_us > *to_us) {
    return ErrorResponse(400, "invalid_parameter", "placed_from is after placed_to");
  }
  if ((placed_from || placed_to) && (status || user || line_status)) {
    return ErrorResponse(400, "invalid_parameter",
                         "placed_from and placed_to list all orders; they do not combine with "
                         "status, user or line_status");
  }
  const projections::ProjectionView view = order_status_->View();
  eventstore::StoreResult<projections::OrderPage> page = projections::OrderPage{};
  if (placed_from || placed_to) {
    // Times map to positions: recorded times never decrease along the log.
    uint64_t first = 1, last = UINT64_MAX - 1;
    if (from_us) {
      auto before = projections::PositionAtTime(store_, *from_us - 1);
      if (!before) return StoreErrorResponse(before.error());
      first = *before + 1;
    }
    if (to_us) {
      auto at = projections::PositionAtTime(store_, *to_us);
      if (!at) return StoreErrorResponse(at.error());
      last = *at;
    }
    page = OrderStatusProjection::ListPlacedBetween(view, first, last, *limit, cursor);
  } else if (line_status) {
    page = OrderStatusProjection::ListWithRevocationErrors(view, *limit, cursor);
  } else if (status) {
    auto parsed = ParseOrderStatus(*status);
    if (!parsed) {
      return ErrorResponse(400, "invalid_parameter",
                           "unknown status \"" + std::string(*status) + "\"");
    }
    page = OrderStatusProjection::ListByStatus(view, *parsed, *limit, cursor);
  } else if (user) {
    auto id = ParseDecimal(*user);
    if (!id || *id == 0 || *id > static_cast<uint64_t>(INT64_MAX)) {
      return ErrorResponse(400, "invalid_parameter", "user must be a user id (a positive integer)");
    }
    page = OrderStatusProjection::ListByUser(view, static_cast<int64_t>(*id), *limit, cursor);
  } else {
    page = OrderStatusProjection::ListAll(view, *limit, cursor);
  }
  if (!page) return QueryErrorResponse(page.error());
  json::array orders;
  for (const projections::OrderRow& row : page->rows) {
    orders.emplace_back(OrderJson(row.state, row.position));
  }
  return JsonResponse(200, json::object{{"orders", std::move(orders)},
                                        {"next_cursor", page->next_cursor},
                                        {"projection_position", view.position()}});
}

HttpServerResponse LedgerApi::GetEvents(const HttpServerRequest& request) {
  constexpr size_t kEventsPerPageMax = 1000;
  auto limit = ParseLimit(request, 100, kEventsPerPageMax);
  auto from = ParseDecimal(request.Query("from").value_or("1"));
  if (!limit || !from) {
    return ErrorResponse(400, "invalid_parameter",
                         fmt::format("from must be a position, limit 1..{}", kEventsPerPageMax));
  }
  auto page = store_.ReadAll(std::max<uint64_t>(*from, 1), *limit);
  if (!page) return StoreErrorResponse(page.error());
  json::array events;
  for (const eventstore::RecordedEvent& record : page->events) {
    auto event = RecordJson(record);
    if (!event) return StoreErrorResponse(event.error());
    events.emplace_back(std::move(*event));
  }
  return JsonResponse(200, json::object{{"events", std::move(events)},
                                        {"next_position", page->next_position},
                                        {"head_position", page->head_position}});
}

HttpServerResponse LedgerApi::GetProjections(const HttpServerRequest&) {
  json::array list;
  for (projections::ProjectionRunner* runner : runners_) {
    const projections::RebuildStatus rebuild = runner->rebuild_status();
    json::object rebuild_json{{"running", rebuild.running},
                              {"generation", rebuild.generation},
                              {"events_done", rebuild.events_done},
                              {"events_total", rebuild.events_total}};
    if (rebuild.failure) rebuild_json["failure"] = rebuild.failure->ToString();
    json::object projection{{"name", runner->name()},
                            {"checkpoint", runner->checkpoint()},
                            {"lag", runner->lag()},
                            {"generation", runner->generation()},
                            {"rebuild", std::move(rebuild_json)}};
    if (auto failure = runner->failure()) projection["failure"] = failure->ToString();
    list.emplace_back(std::move(projection));
  }
  return JsonResponse(200, json::object{{"projections", std::move(list)}});
}

HttpServerResponse LedgerApi::PostRebuild(const HttpServerRequest& request) {
  const std::string_view name = request.PathParam("name");
  for (projections::ProjectionRunner* runner : runners_) {
    if (runner->name() != name) continue;
    auto started = runner->StartRebuild();
    if (!started) {
      if (started.error().code == eventstore::ErrorCode::kInvalidArgument) {
        return ErrorResponse(409, "rebuild_running", started.error().message);
      }
      return StoreErrorResponse(started.error());
    }
    return JsonResponse(
        202, json::object{{"name", name}, {"generation", runner->rebuild_status().generation}});
  }
  return ErrorResponse(404, "unknown_projection", "no projection " + std::string(name));
}

projections::ProjectionRunner* LedgerApi::FindRunner(std::string_view name) const {
  for (projections::ProjectionRunner* runner : runners_) {
    if (runner->name() == name) return runner;
  }
  return nullptr;
}

HttpServerResponse LedgerApi::ListOrphans(const HttpServerRequest& request) {
  using projections::PaymentsProjection;
  projections::ProjectionRunner* runner = FindRunner(PaymentsProjection::kName);
  if (runner == nullptr) return ErrorResponse(503, "projection_unavailable", "no payments");
  auto limit = ParseLimit(request, 100, PaymentsProjection::kPageRowsMax);
  auto min_age_s = ParseDecimal(request.Query("min_age_s").value_or("0"));
  if (!limit) return LimitOutOfRange(PaymentsProjection::kPageRowsMax);
  if (!min_age_s || *min_age_s > kMinAgeSecondsMax) {
    return ErrorResponse(400, "invalid_parameter",
                         fmt::format("min_age_s must be 0..{} seconds", kMinAgeSecondsMax));
  }
  auto page = PaymentsProjection::ListOrphans(runner->View(), NowUs(),
                                              static_cast<int64_t>(*min_age_s) * 1'000'000, *limit,
                                              request.Query("cursor").value_or(""));
  if (!page) return QueryErrorResponse(page.error());
  json::array payments;
  for (const projections::OrphanPayment& orphan : page->rows) {
    json::object payment = CaptureJson(orphan.capture);
    payment["order_number"] = orphan.order_number;
    payments.emplace_back(std::move(payment));
  }
  return JsonResponse(
      200, json::object{{"payments", std::move(payments)}, {"next_cursor", page->next_cursor}});
}

HttpServerResponse LedgerApi::ListExcess(const HttpServerRequest& request) {
  using projections::PaymentsProjection;
  projections::ProjectionRunner* runner = FindRunner(PaymentsProjection::kName);
  if (runner == nullptr) return ErrorResponse(503, "projection_unavailable", "no payments");
  auto limit = ParseLimit(request, 100, PaymentsProjection::kPageRowsMax);
  if (!limit) return LimitOutOfRange(PaymentsProjection::kPageRowsMax);
  auto page =
      PaymentsProjection::ListExcess(runner->View(), *limit, request.Query("cursor").value_or(""));
  if (!page) return QueryErrorResponse(page.error());
  json::array orders;
  for (const projections::ExcessPayment& excess : page->rows) {
    json::array captures;
    for (const auto& capture : excess.order.captures) captures.emplace_back(CaptureJson(capture));
    json::object order{{"order_number", excess.order.order_number},
                       {"placed", excess.order.placed},
                       {"currency", excess.currency},
                       {"captured", AmountValue(excess.captured_minor, excess.currency)},
                       {"captures", std::move(captures)}};
    order["order_total"] = excess.order.placed
                               ? AmountValue(excess.order.total_minor, excess.currency)
                               : json::value(nullptr);
    order["excess"] = excess.excess_minor ? AmountValue(*excess.excess_minor, excess.currency)
                                          : json::value(nullptr);
    // Money in currencies the order does not use: all of it to hand back once placed.
    json::array other_currencies;
    for (const projections::CurrencyExcess& other : excess.other_currencies) {
      other_currencies.emplace_back(json::object{
          {"currency", other.currency},
          {"captured", AmountValue(other.captured_minor, other.currency)},
          {"excess", other.excess_minor ? AmountValue(*other.excess_minor, other.currency)
                                        : json::value(nullptr)}});
    }
    order["other_currencies"] = std::move(other_currencies);
    orders.emplace_back(std::move(order));
  }
  return JsonResponse(
      200, json::object{{"orders", std::move(orders)}, {"next_cursor", page->next_cursor}});
}

HttpServerResponse LedgerApi::GetRevenue(const HttpServerRequest& request) {
  using projections::RevenueProjection;
  projections::ProjectionRunner* runner = FindRunner(RevenueProjection::kName);
  if (runner == nullptr) return ErrorResponse(503, "projection_unavailable", "no revenue");
  auto from = request.Query("from");
  auto to = request.Query("to");
  if (!from || !to || !RevenueProjection::IsValidDay(*from) ||
      !RevenueProjection::IsValidDay(*to)) {
    return ErrorResponse(400, "invalid_parameter", "from and to must be days, YYYY-MM-DD");
  }
  if (*from > *to) return ErrorResponse(400, "invalid_parameter", "from is after to");
  const projections::ProjectionView view = runner->View();
  auto rows = RevenueProjection::Range(view, *from, *to);
  if (!rows) return QueryErrorResponse(rows.error());
  json::array days;
  for (const projections::RevenueRow& row : *rows) {
    days.emplace_back(json::object{{"day", row.day},
                                   {"currency", row.currency},
                                   {"captured", AmountValue(row.captured_minor, row.currency)},
                                   {"refunded", AmountValue(row.refunded_minor, row.currency)},
                                   {"captures", row.captures},
                                   {"revocations", row.revocations}});
  }
  return JsonResponse(
      200, json::object{{"days", std::move(days)}, {"projection_position", view.position()}});
}

}  // namespace ledger::server
