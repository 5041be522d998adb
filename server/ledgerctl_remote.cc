// ledgerctl's remote subcommands: against a running ledgerd over HTTP (--url, --token), through
// the API of server/ledger_api.h. --json prints the server's JSON answer as it came.
#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/ledgerctl.h"

namespace ledger::ctl {
namespace {

namespace json = boost::json;

// Field access that tolerates what a different server version might leave out.
std::string Text(const json::value& value, std::string_view key) {
  const json::object* object = value.if_object();
  if (object == nullptr) return "";
  const json::value* field = object->if_contains(key);
  if (field == nullptr || field->is_null()) return "";
  if (field->is_string()) return std::string(field->as_string());
  return json::serialize(*field);
}

// The field `key` of `value`, null when `value` is not an object or has no such field.
const json::value& Field(const json::value& value, std::string_view key) {
  static const json::value kNull;
  const json::object* object = value.if_object();
  if (object == nullptr) return kNull;
  const json::value* field = object->if_contains(key);
  return field != nullptr ? *field : kNull;
}

// The field `key` of `value` as an unsigned number; nullopt when absent or not one.
std::optional<uint64_t> Unsigned(const json::value& value, std::string_view key) {
  const json::value& field = Field(value, key);
  if (!field.is_number()) return std::nullopt;
  boost::system::error_code ec;
  const auto number = field.to_number<uint64_t>(ec);
  if (ec) return std::nullopt;
  return number;
}

const json::array& Array(const json::value& value, std::string_view key) {
  static const json::array kEmpty;
  const json::object* object = value.if_object();
  if (object == nullptr) return kEmpty;
  const json::value* field = object->if_contains(key);
  return field != nullptr && field->is_array() ? field->as_array() : kEmpty;
}

// "3 failed revocations" from a line's revocation_failures; empty when there were none (or the
// server does not count them).
std::string RevocationFailures(const json::value& line) {
  const uint64_t failures = Unsigned(line, "revocation_failures").value_or(0);
  if (failures == 0) return "";
  return fmt::format("{} failed revocation{}", failures, failures == 1 ? "" : "s");
}

// What follows a line's status when it failed: " (KIND: MESSAGE)", its failed revocations and
// its next automatic retry, each when there is one.
std::string FailureDetail(const json::value& line) {
  std::string detail;
  if (const json::value& error = Field(line, "last_error"); error.is_object()) {
    detail += " (" + Text(error, "kind") + ": " + Text(error, "message") + ")";
  }
  if (const std::string failures = RevocationFailures(line); !failures.empty()) {
    detail += ", " + failures;
  }
  if (const std::string retry = Text(line, "next_retry_at"); !retry.empty()) {
    detail += ", next automatic retry " + retry;
  }
  return detail;
}

// Sends the request; prints and maps any failure. Every answer of the API is a JSON object: a
// 2xx answer that is not one is a failure too. On success with --json, prints the body.
std::optional<RemoteAnswer> Call(const Options& options, std::string_view method,
                                 const std::string& target, int& exit_code,
                                 std::string_view body = {}) {
  auto answer = Remote(options, method, target, body);
  if (!answer) {
    exit_code = answer.error();
    return std::nullopt;
  }
  if (answer->status < 200 || answer->status > 299) {
    exit_code = RemoteFail(*answer);
    return std::nullopt;
  }
  if (!answer->body.is_object()) {
    exit_code = UnexpectedAnswer(fmt::format("{} {}: {} {} is not a JSON object", method, target,
                                             answer->status, Excerpt(answer->text)));
    return std::nullopt;
  }
  if (options.json) fmt::print("{}\n", answer->text);
  return std::move(*answer);
}

int RemoteStatus(const Options& options, const std::vector<std::string>& args) {
  if (!args.empty()) {
    if (int invalid = CheckOrderArgument(args[0]); invalid != 0) return invalid;
  }
  std::string target;
  if (args.size() == 1) {
    target = "/v1/orders/" + UrlEncode(args[0]);
  } else if (args.size() == 3 && args[1] == "--as-of") {
    target = "/v1/orders/" + UrlEncode(args[0]) + "?as_of=" + UrlEncode(args[2]);
  } else {
    return Fail(kExitUsage, "usage: status ORDER [--as-of POSITION|TIME]");
  }
  int exit_code = 0;
  auto answer = Call(options, "GET", target, exit_code);
  if (!answer) return exit_code;
  if (options.json) return 0;
  const json::value& order = answer->body;
  fmt::print("order {}: {} (as of position {})\n", Text(order, "order_number"),
             Text(order, "status"), Text(order, "position"));
  if (const json::value& user = Field(order, "user"); !user.is_null()) {
    const json::value& amounts = Field(order, "amounts");
    const std::string currency = Text(order, "currency");
    fmt::print("  user {} ({}), total {} {}, captured {} {}, refunded {} {}\n",
               Text(user, "username"), Text(user, "id"), Text(amounts, "total"), currency,
               Text(amounts, "captured"), currency, Text(amounts, "refunded"), currency);
  }
  // ATTEMPTS counts fulfillment attempts; a revocation's failures have a column of their own,
  // and NEXT RETRY is the next automatic fulfillment or revocation, whichever the line awaits.
  fmt::print("  {:<8} {:<20} {:<34} {:>8}  {:>18}  {:<27}  {}\n", "LINE", "PRODUCT", "STATUS",
             "ATTEMPTS", "FAILED REVOCATIONS", "NEXT RETRY", "LAST ERROR");
  for (const json::value& line : Array(order, "lines")) {
    std::string error;
    std::string status = Text(line, "status");
    if (const json::value& last = Field(line, "last_error"); last.is_object()) {
      error = Text(last, "kind") + ": " + Text(last, "message");
      // A Complete or Revoked line's last failure is history, not its state.
      if (status == "Complete" || status == "Revoked") error = "(earlier) " + error;
    }
    if (const json::value& pending = Field(line, "revocation_requested");
        pending.is_bool() && pending.get_bool()) {
      status += ", revoking";
    }
    fmt::print("  {:<8} {:<20} {:<34} {:>8}  {:>18}  {:<27}  {}\n", Text(line, "line_id"),
               Text(line, "product_type"), status, Text(line, "attempts"),
               Unsigned(line, "revocation_failures").value_or(0), Text(line, "next_retry_at"),
               error);
  }
  return 0;
}

int RemoteEvents(const Options& options, const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail(kExitUsage, "events takes one order number");
  if (int invalid = CheckOrderArgument(args[0]); invalid != 0) return invalid;
  int exit_code = 0;
  auto answer = Call(options, "GET", "/v1/orders/" + UrlEncode(args[0]) + "/events", exit_code);
  if (!answer) return exit_code;
  if (options.json) return 0;
  fmt::print("{:>10} {:>7}  {:<26} {:<28} {}\n", "POSITION", "VERSION", "TYPE", "RECORDED AT",
             "HASH");
  for (const json::value& event : Array(answer->body, "events")) {
    fmt::print("{:>10} {:>7}  {:<26} {:<28} {}\n", Text(event, "position"), Text(event, "version"),
               Text(event, "type"), Text(event, "recorded_at"), Text(event, "hash"));
  }
  if (Text(answer->body, "truncated") == "true") {
    std::fputs("(truncated: the stream has more events than the server answers at once)\n", stderr);
  }
  return 0;
}

int RemoteRetry(const Options& options, const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail(kExitUsage, "retry takes one order number");
  if (int invalid = CheckOrderArgument(args[0]); invalid != 0) return invalid;
  int exit_code = 0;
  auto answer =
      Call(options, "POST", "/v1/orders/" + UrlEncode(args[0]) + "/fulfill", exit_code, "{}");
  if (!answer) return exit_code;
  if (options.json) return 0;
  std::vector<std::string> lines;
  for (const json::value& line : Array(answer->body, "line_ids")) {
    lines.push_back(line.is_string() ? std::string(line.as_string()) : json::serialize(line));
  }
  fmt::print("retry of order {} recorded at position {}; lines: {}\n", args[0],
             Text(answer->body, "position"), fmt::join(lines, ", "));
  return 0;
}

// What the revoke answer says of the line, and the exit code it makes: 0 Revoked; kExitPending
// while the revocation is recorded but not carried out (202); kExitNo for a line that is not
// revoked, Revocation Error above all (the LMS refused, or failed and a retry may follow).
int RevokeOutcome(const RemoteAnswer& answer, std::string& outcome) {
  const json::value& line = Field(answer.body, "line");
  if (const json::value& pending = Field(line, "revocation_requested");
      answer.status == 202 || (pending.is_bool() && pending.get_bool())) {
    outcome =
        "revocation requested, not carried out yet (the process manager finishes it; see "
        "status)";
    return kExitPending;
  }
  outcome = Text(line, "status");
  // A Revoked line's last error is a failure before this success (status shows it as
  // "(earlier)"); printed here, it would read as the outcome.
  if (outcome == "Revoked") return 0;
  outcome += FailureDetail(line);
  return kExitNo;
}

int RemoteRevoke(const Options& options, const std::vector<std::string>& args) {
  json::object body;
  if (args.size() == 4 && args[2] == "--refund-reference") {
    body["refund_reference"] = args[3];
  } else if (args.size() != 2) {
    return Fail(kExitUsage, "usage: revoke ORDER LINE [--refund-reference REF]");
  }
  if (int invalid = CheckOrderArgument(args[0]); invalid != 0) return invalid;
  int exit_code = 0;
  auto answer =
      Call(options, "POST",
           "/v1/orders/" + UrlEncode(args[0]) + "/lines/" + UrlEncode(args[1]) + "/revoke",
           exit_code, json::serialize(body));
  if (!answer) return exit_code;
  if (!Field(answer->body, "line").is_object()) {
    return UnexpectedAnswer("the revoke answer has no \"line\" object: " + Excerpt(answer->text));
  }
  // The exit code says how the revocation ended with --json too: scripts read it either way.
  std::string outcome;
  const int ended = RevokeOutcome(*answer, outcome);
  if (!options.json) {
    fmt::print("line {} of order {}: {}; order {}\n", args[1], args[0], outcome,
               Text(answer->body, "order_status"));
  }
  return ended;
}

int RemoteProjections(const Options& options, const std::vector<std::string>& args) {
  if (!args.empty()) return Fail(kExitUsage, "projections takes no arguments");
  int exit_code = 0;
  auto answer = Call(options, "GET", "/v1/projections", exit_code);
  if (!answer) return exit_code;
  if (options.json) return 0;
  fmt::print("{:<16} {:>10} {:>12} {:>10}  {}\n", "NAME", "GENERATION", "CHECKPOINT", "LAG",
             "REBUILD");
  for (const json::value& projection : Array(answer->body, "projections")) {
    const json::value& rebuild = Field(projection, "rebuild");
    const std::string state = Text(rebuild, "running") == "true"
                                  ? fmt::format("running: {}/{}", Text(rebuild, "events_done"),
                                                Text(rebuild, "events_total"))
                                  : "-";
    fmt::print("{:<16} {:>10} {:>12} {:>10}  {}\n", Text(projection, "name"),
               Text(projection, "generation"), Text(projection, "checkpoint"),
               Text(projection, "lag"), state);
  }
  return 0;
}

// What stands out on an order's lines: those not Complete or Revoked, or with a revocation
// pending, as "LINE: STATUS (KIND: MESSAGE)"; "-" when none.
std::string LineProblems(const json::value& order) {
  std::vector<std::string> problems;
  for (const json::value& line : Array(order, "lines")) {
    std::string status = Text(line, "status");
    const json::value& pending = Field(line, "revocation_requested");
    const bool revoking = pending.is_bool() && pending.get_bool();
    if ((status == "Complete" || status == "Revoked") && !revoking) continue;
    if (revoking) status += ", revoking";
    problems.push_back(Text(line, "line_id") + ": " + status + FailureDetail(line));
  }
  return problems.empty() ? "-" : fmt::format("{}", fmt::join(problems, "; "));
}

// Lists orders from the order status projection, page after page up to --limit.
int RemoteOrders(const Options& options, const std::vector<std::string>& args) {
  constexpr std::string_view kUsage =
      "usage: orders [--status S | --user ID | --line-status revocation_error | --placed-from D "
      "--placed-to D] [--limit N] [--cursor C]";
  std::string query;
  std::string cursor;
  uint64_t limit = 100;
  int lists = 0;
  bool placed = false;
  std::vector<std::string> seen;
  for (size_t i = 0; i < args.size(); ++i) {
    const bool has_value = i + 1 < args.size();
    const std::string& flag = args[i];
    if (!has_value) return Fail(kExitUsage, std::string(kUsage));
    if (std::find(seen.begin(), seen.end(), flag) != seen.end()) {
      return Fail(kExitUsage, flag + " is given more than once");
    }
    seen.push_back(flag);
    const std::string& value = args[++i];
    if (flag == "--status" || flag == "--user" || flag == "--line-status") {
      ++lists;
      std::string name = flag.substr(2);
      std::replace(name.begin(), name.end(), '-', '_');
      query += "&" + name + "=" + UrlEncode(value);
    } else if (flag == "--placed-from" || flag == "--placed-to") {
      placed = true;
      query +=
          std::string(flag == "--placed-from" ? "&placed_from=" : "&placed_to=") + UrlEncode(value);
    } else if (flag == "--limit") {
      const std::optional<uint64_t> parsed = ParseDecimal(value);
      if (!parsed || *parsed == 0 || *parsed > 1'000'000) {
        return Fail(kExitUsage, "--limit needs a number from 1 to 1000000");
      }
      limit = *parsed;
    } else if (flag == "--cursor") {
      cursor = value;
    } else {
      return Fail(kExitUsage, std::string(kUsage));
    }
  }
  if (lists + (placed ? 1 : 0) > 1) {
    return Fail(kExitUsage,
                "give one of --status, --user, --line-status and --placed-from/--placed-to");
  }
  Options quiet = options;
  quiet.json = false;
  json::array orders;
  std::string next_cursor = cursor;
  uint64_t projection_position = 0;
  do {
    const uint64_t page_rows = std::min<uint64_t>(limit - orders.size(), 1000);
    std::string target = fmt::format("/v1/orders?limit={}{}", page_rows, query);
    if (!next_cursor.empty()) target += "&cursor=" + UrlEncode(next_cursor);
    int exit_code = 0;
    auto page = Call(quiet, "GET", target, exit_code);
    if (!page) return exit_code;
    const json::value& listed = Field(page->body, "orders");
    const json::value& cursor_field = Field(page->body, "next_cursor");
    if (!listed.is_array() || !cursor_field.is_string()) {
      return UnexpectedAnswer("GET /v1/orders: no orders and next_cursor in " +
                              Excerpt(page->text));
    }
    for (const json::value& order : listed.as_array()) orders.push_back(order);
    next_cursor = cursor_field.as_string();
    projection_position = Unsigned(page->body, "projection_position").value_or(0);
  } while (!next_cursor.empty() && orders.size() < limit);

  if (options.json) {
    fmt::print("{}\n", json::serialize(json::object{{"orders", std::move(orders)},
                                                    {"next_cursor", next_cursor},
                                                    {"projection_position", projection_position}}));
    return 0;
  }
  fmt::print("{:<20} {:<18} {:<24} {:>5} {:<27} {}\n", "ORDER", "STATUS", "USER", "LINES",
             "PLACED AT", "LINES NEEDING ATTENTION");
  for (const json::value& order : orders) {
    const json::value& user = Field(order, "user");
    const std::string who =
        user.is_object() ? Text(user, "username") + " (" + Text(user, "id") + ")" : "-";
    fmt::print("{:<20} {:<18} {:<24} {:>5} {:<27} {}\n", Text(order, "order_number"),
               Text(order, "status"), who, Array(order, "lines").size(), Text(order, "placed_at"),
               LineProblems(order));
  }
  fmt::print("{} orders (projection at position {})\n", orders.size(), projection_position);
  if (!next_cursor.empty()) {
    std::fprintf(stderr, "ledgerctl: more orders follow: --cursor %s (or a larger --limit)\n",
                 next_cursor.c_str());
  }
  return 0;
}

// Starts an online rebuild and follows its progress until the new generation takes over.
int RemoteRebuild(const Options& options, const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail(kExitUsage, "rebuild takes a projection name");
  int exit_code = 0;
  Options quiet = options;
  quiet.json = false;
  auto started =
      Call(quiet, "POST", "/v1/projections/" + UrlEncode(args[0]) + "/rebuild", exit_code, "{}");
  if (!started) return exit_code;
  ProgressLine progress("rebuild " + args[0]);
  while (true) {
    auto answer = Call(quiet, "GET", "/v1/projections", exit_code);
    if (!answer) return exit_code;
    bool listed = false;
    for (const json::value& projection : Array(answer->body, "projections")) {
      if (Text(projection, "name") != args[0]) continue;
      listed = true;
      const json::value& rebuild = Field(projection, "rebuild");
      if (auto failure = Text(rebuild, "failure"); !failure.empty()) {
        progress.Finish();
        return Fail(kExitData, "rebuild failed: " + failure);
      }
      const auto done = Unsigned(rebuild, "events_done");
      const auto total = Unsigned(rebuild, "events_total");
      const json::value& running = Field(rebuild, "running");
      if (!done || !total || !running.is_bool()) {
        progress.Finish();
        return UnexpectedAnswer(fmt::format("projection {} has no readable rebuild state: {}",
                                            args[0], Excerpt(json::serialize(projection))));
      }
      if (!running.get_bool()) {
        progress.Finish();
        if (options.json) {
          fmt::print("{}\n", json::serialize(projection));
        } else {
          fmt::print("{}: rebuilt, generation {}, checkpoint {}\n", args[0],
                     Text(projection, "generation"), Text(projection, "checkpoint"));
        }
        return 0;
      }
      progress.Update(*done, *total);
    }
    if (!listed) {
      progress.Finish();
      return UnexpectedAnswer(fmt::format("GET /v1/projections does not list {}", args[0]));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// What tail keeps of an answer at most: one event of the stream (its JSON, for a payload of at
// most 1 MiB, base64 or escaped, well below this), and the body of a refusal.
constexpr size_t kStreamEventBytesMax = 16 << 20;
constexpr uint64_t kRefusalBodyBytesMax = 1 << 20;

// Follows GET /v1/subscribe and prints each event; reconnects with Last-Event-ID when the
// connection drops, so that nothing is skipped or printed twice.
class Tail {
 public:
  Tail(const Options& options, std::string query) : options_(options), query_(std::move(query)) {}

  int Run() {
    auto url = boost::urls::parse_uri(options_.url);
    if (!url || url->scheme() != "http") {
      return Fail(kExitUsage, "--url must be http://HOST:PORT, not " + options_.url);
    }
    host_ = url->host();
    port_ = url->has_port() ? std::string(url->port()) : "80";
    int failures = 0;
    while (true) {
      const std::optional<int> ended = Follow();
      if (ended) return *ended;
      ++failures;
      if (failures > 30) return Fail(kExitData, "the server stays unreachable; giving up");
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }

 private:
  // One connection: an exit code when tailing must end, nullopt to reconnect.
  std::optional<int> Follow() {
    namespace beast = boost::beast;
    namespace http = beast::http;
    using tcp = boost::asio::ip::tcp;
    boost::asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host_, port_, ec);
    if (!ec) stream.connect(endpoints, ec);
    if (ec) {
      std::fprintf(stderr, "ledgerctl: tail: %s; retrying\n", ec.message().c_str());
      return std::nullopt;
    }
    http::request<http::empty_body> request(http::verb::get, "/v1/subscribe" + query_, 11);
    request.set(http::field::host, host_);
    request.set(http::field::accept, "text/event-stream");
    if (!options_.token.empty())
      request.set(http::field::authorization, "Bearer " + options_.token);
    if (!last_id_.empty()) request.set("Last-Event-ID", last_id_);
    http::write(stream, request, ec);
    if (ec) return std::nullopt;

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    // A refusal is read whole, so bounded; the event stream is read chunk by chunk below.
    parser.body_limit(kRefusalBodyBytesMax);
    http::read_header(stream, buffer, parser, ec);
    if (ec == http::error::body_limit) {
      return UnexpectedAnswer(fmt::format("GET /v1/subscribe: {} with a body of more than {} bytes",
                                          parser.get().result_int(), kRefusalBodyBytesMax));
    }
    if (ec) return std::nullopt;
    if (parser.get().result_int() != 200) {
      // Past the limit, the refusal is reported with the part of its body that came.
      http::read(stream, buffer, parser, ec);
      RemoteAnswer answer{.status = static_cast<int>(parser.get().result_int()),
                          .body = nullptr,
                          .text = parser.get().body()};
      boost::system::error_code parse_ec;
      json::value parsed = json::parse(answer.text, parse_ec);
      if (!parse_ec) answer.body = std::move(parsed);
      return RemoteFail(answer);
    }
    if (!parser.chunked()) {
      return UnexpectedAnswer("GET /v1/subscribe: 200 without a chunked event stream");
    }
    parser.body_limit(boost::none);  // The stream has no end; each event is bounded instead.
    // The events not yet ended by a blank line: at most one, of at most kStreamEventBytesMax.
    std::string pending;
    std::optional<int> failed;
    auto on_chunk = [&](uint64_t, std::string_view data, beast::error_code& chunk_ec) -> size_t {
      size_t search_from = pending.empty() ? 0 : pending.size() - 1;
      pending.append(data);
      size_t end;
      while ((end = pending.find("\n\n", search_from)) != std::string::npos) {
        Print(std::string_view(pending).substr(0, end));
        pending.erase(0, end + 2);
        search_from = 0;
      }
      if (pending.size() > kStreamEventBytesMax) {
        failed = UnexpectedAnswer(
            fmt::format("GET /v1/subscribe: an event of more than {} bytes{}", kStreamEventBytesMax,
                        last_id_.empty() ? "" : " after position " + last_id_));
        chunk_ec = http::error::body_limit;  // Ends the read.
        return 0;
      }
      return data.size();
    };
    parser.on_chunk_body(on_chunk);
    while (!parser.is_done()) {
      http::read(stream, buffer, parser, ec);
      if (failed) return failed;
      if (ec == http::error::end_of_chunk) continue;
      if (ec) break;
    }
    std::fprintf(stderr, "ledgerctl: tail: the server ended the stream; reconnecting\n");
    return std::nullopt;
  }

  void Print(std::string_view message) {
    std::string id, type, data;
    while (!message.empty()) {
      const size_t newline = message.find('\n');
      const std::string_view line = message.substr(0, newline);
      if (line.starts_with("id: ")) id = line.substr(4);
      if (line.starts_with("event: ")) type = line.substr(7);
      if (line.starts_with("data: ")) data = line.substr(6);
      message =
          newline == std::string_view::npos ? std::string_view() : message.substr(newline + 1);
    }
    if (type == "error") {
      std::fprintf(stderr, "ledgerctl: tail: the server reports %s\n", data.c_str());
      return;
    }
    if (id.empty()) return;  // A keep-alive or the retry hint.
    last_id_ = id;
    if (options_.json) {
      fmt::print("{}\n", data);
    } else {
      boost::system::error_code ec;
      const json::value event = json::parse(data, ec);
      fmt::print("{:>10}  {:<28} {:<26} {}\n", id, Text(event, "recorded_at"), type,
                 Text(event, "stream"));
    }
    std::fflush(stdout);
  }

  const Options& options_;
  std::string query_;
  std::string host_;
  std::string port_;
  std::string last_id_;
};

int RemoteTail(const Options& options, const std::vector<std::string>& args) {
  std::string from = "";
  std::string query;
  for (size_t i = 0; i < args.size(); ++i) {
    const bool has_value = i + 1 < args.size();
    if (args[i] == "--from" && has_value) {
      if (!ParseDecimal(args[i + 1])) return Fail(kExitUsage, "--from needs a position");
      from = args[++i];
    } else if (args[i] == "--types" && has_value) {
      query += "&types=" + UrlEncode(args[++i]);
    } else if (args[i] == "--stream-prefix" && has_value) {
      query += "&stream_prefix=" + UrlEncode(args[++i]);
    } else {
      return Fail(kExitUsage, "usage: tail [--from P] [--types T1,T2] [--stream-prefix PREFIX]");
    }
  }
  if (from.empty()) {
    // By default, only what comes next: from one past the head.
    int exit_code = 0;
    Options quiet = options;
    quiet.json = false;
    auto page = Call(quiet, "GET", "/v1/events?from=1&limit=1", exit_code);
    if (!page) return exit_code;
    const std::optional<uint64_t> head = Unsigned(page->body, "head_position");
    if (!head || *head == UINT64_MAX) {
      return UnexpectedAnswer("GET /v1/events: no head_position in " + Excerpt(page->text));
    }
    from = std::to_string(*head + 1);
  }
  if (!options.json) {
    fmt::print("{:>10}  {:<28} {:<26} {}\n", "POSITION", "RECORDED AT", "TYPE", "STREAM");
  }
  return Tail(options, "?from=" + from + query).Run();
}

}  // namespace

std::vector<Command> RemoteCommands() {
  return {
      {"status", "status ORDER [--as-of P|TIME]", "", nullptr, &RemoteStatus},
      {"events", "events ORDER", "", nullptr, &RemoteEvents},
      {"projections", "projections", "", nullptr, &RemoteProjections},
      {"rebuild", "rebuild NAME", "", nullptr, &RemoteRebuild},
      {"tail", "tail [--from P] [--types T,..] [--stream-prefix S]",
       "follow the log as it grows (server-sent events; reconnects and resumes)", nullptr,
       &RemoteTail},
      {"orders",
       "orders [--status S | --user ID | --line-status revocation_error | --placed-from D "
       "--placed-to D] [--limit N] [--cursor C]",
       "list orders from the order status projection (ops' queues: --status fulfillment_error, "
       "--line-status revocation_error); newest first, or oldest in the status first",
       nullptr, &RemoteOrders},
      {"retry", "retry ORDER", "retry the order's failed lines (ops role)", nullptr, &RemoteRetry},
      {"revoke", "revoke ORDER LINE [--refund-reference R]",
       "revoke a line, e.g. on refund (ops); exit 1 when the line ends in Revocation Error, 4 "
       "while the revocation is still pending (recorded; see status)",
       nullptr, &RemoteRevoke},
  };
}

}  // namespace ledger::ctl
