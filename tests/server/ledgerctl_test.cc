// ledgerctl as operators run it: the real binary against a real ledgerd (--url, --token), and
// offline on the data directory once ledgerd has stopped. Output, --json and exit codes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/event_id.h"
#include "eventstore/event_store.h"
#include "server/data_dir.h"
#include "tests/server/ledgerd_process.h"
#include "tests/support/run_program.h"

namespace {

using namespace std::chrono_literals;
using namespace ledger::testing;

using Run = ProgramRun;

// Runs ledgerctl with `args`; LEDGER_TOKEN is `token` (unset when empty). Kills it after
// `timeout`, or as soon as `stop_when` returns true for its output so far.
Run Ledgerctl(const std::vector<std::string>& args, const std::string& token = "",
              std::chrono::milliseconds timeout = 20s,
              const std::function<bool(const std::string&)>& stop_when = {}) {
  std::optional<std::string> token_variable;
  if (!token.empty()) token_variable = token;
  return RunProgram(LEDGER_LEDGERCTL, args, {{"LEDGER_TOKEN", token_variable}}, timeout, stop_when);
}

// A stand-in for ledgerd that answers what no real one does: `respond` gets each request's
// target and writes the raw answer on the connection, which is closed after it returns. One
// connection at a time, on a free loopback port.
class FakeServer {
 public:
  using Respond = std::function<void(const std::string& target, int connection)>;

  explicit FakeServer(Respond respond) : respond_(std::move(respond)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) == 0);
    REQUIRE(::listen(listener_, 16) == 0);
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }

  ~FakeServer() {
    ::shutdown(listener_, SHUT_RDWR);  // Ends the blocking accept.
    thread_.join();
    ::close(listener_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void Serve() {
    while (true) {
      const int connection = ::accept(listener_, nullptr, nullptr);
      if (connection < 0) return;
      if (auto target = ReadRequest(connection)) respond_(*target, connection);
      ::shutdown(connection, SHUT_RDWR);
      ::close(connection);
    }
  }

  // The request's target, once the whole request (with its Content-Length body) is read.
  static std::optional<std::string> ReadRequest(int connection) {
    std::string request;
    char buffer[4096];
    size_t header_end = std::string::npos;
    size_t body_bytes = 0;
    while (header_end == std::string::npos || request.size() < header_end + 4 + body_bytes) {
      const ssize_t n = ::recv(connection, buffer, sizeof(buffer), 0);
      if (n <= 0) return std::nullopt;
      request.append(buffer, static_cast<size_t>(n));
      if (header_end == std::string::npos &&
          (header_end = request.find("\r\n\r\n")) != std::string::npos) {
        std::string header = request.substr(0, header_end);
        std::transform(header.begin(), header.end(), header.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (size_t at = header.find("content-length:"); at != std::string::npos) {
          body_bytes = std::stoul(header.substr(at + 15));
        }
      }
    }
    const size_t target_start = request.find(' ') + 1;
    return request.substr(target_start, request.find(' ', target_start) - target_start);
  }

  Respond respond_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

// Writes all of `bytes`; false once the client has gone.
bool WriteRaw(int connection, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(connection, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// A complete answer with a Content-Length.
void Answer(int connection, int status, const std::string& body,
            const std::string& content_type = "application/json") {
  WriteRaw(connection, "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " +
                           content_type + "\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\nConnection: close\r\n\r\n" + body);
}

// Waits until the client closes the connection: an answer that never comes (or never ends).
void Hold(int connection) {
  char buffer[256];
  while (::recv(connection, buffer, sizeof(buffer), 0) > 0) {
  }
}

// A chunked answer: `start`, then chunks of 'x' up to `filler_bytes` (or until the client
// leaves), then held open, as a body that never ends.
void EndlessChunks(int connection, int status, const std::string& content_type,
                   const std::string& start, size_t filler_bytes) {
  auto chunk = [](const std::string& data) {
    char size[32];
    std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
    return size + data + "\r\n";
  };
  bool open = WriteRaw(connection, "HTTP/1.1 " + std::to_string(status) +
                                       " X\r\nContent-Type: " + content_type +
                                       "\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(start));
  const std::string filler = chunk(std::string(1 << 20, 'x'));
  for (size_t sent = 0; open && sent < filler_bytes; sent += 1 << 20) {
    open = WriteRaw(connection, filler);
  }
  if (open) Hold(connection);
}

// An export page's event as ledgerd's /v1/audit/export sends it.
std::string ExportEventJson(uint64_t position) {
  const std::string zeros(64, '0');
  return R"({"position":)" + std::to_string(position) + R"(,"stream":"order-EDX-1","version":)" +
         std::to_string(position) +
         R"(,"type":"OrderCreated","event_id":"00000000-0000-0000-0000-00000000000)" +
         std::to_string(position) +
         R"(","recorded_at":"1970-01-01T00:00:00.000001Z","recorded_at_us":1,)"
         R"("correlation_id":"00000000-0000-0000-0000-000000000001",)"
         R"("causation_id":"00000000-0000-0000-0000-000000000001","actor":"test",)"
         R"("schema_version":1,"payload":"","previous_hash":")" +
         zeros + R"(","hash":")" + zeros + R"("})";
}

void PlaceOrder(const Child& child, const std::string& token, const std::string& number) {
  auto paid = Send(child.port, token, "POST", "/v1/payments", PaymentFor(number));
  REQUIRE(paid);
  REQUIRE(paid->status == 201);
  auto placed = Send(child.port, token, "POST", "/v1/orders?fulfillment=sync", OrderBody(number));
  REQUIRE(placed);
  REQUIRE(placed->status == 201);
}

size_t CountLines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// The files of `dir` whose names start with `prefix`.
size_t CountFiles(const std::filesystem::path& dir, const std::string& prefix) {
  size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with(prefix)) ++count;
  }
  return count;
}

// A log (DIR/log, no state) of `events` events of one stream, each with 1 KiB of payload that
// does not compress: enough for several table blocks. Returns the head.
uint64_t FillLog(const std::filesystem::path& data_dir, size_t events) {
  auto store =
      ledger::eventstore::OpenRocksDbEventStore(ledger::server::LogPath(data_dir.string()));
  REQUIRE(store);
  std::mt19937 random(7);
  for (size_t i = 0; i < events; ++i) {
    std::string payload(1024, ' ');
    for (char& c : payload) c = static_cast<char>('a' + random() % 26);
    const ledger::eventstore::NewEvent event{.event_id = ledger::EventId::NewRandom(),
                                             .event_type = "Note",
                                             .payload = payload,
                                             .correlation_id = {},
                                             .causation_id = {},
                                             .actor = "test",
                                             .schema_version = 1};
    REQUIRE((*store)->Append("note-1", ledger::eventstore::ExpectedVersion::Any(),
                             std::span<const ledger::eventstore::NewEvent>(&event, 1)));
  }
  return (*store)->HeadPosition();
}

TEST_CASE("ledgerctl against a running ledgerd: status, events, tail, retry, revoke, rebuild") {
  const std::filesystem::path data_dir = FreshDataDir("ledgerctl");
  const Child child = StartLedgerd(data_dir.string());
  const std::string token = ReadDevToken(data_dir);
  const std::string url = "http://127.0.0.1:" + std::to_string(child.port);
  REQUIRE_FALSE(child.standin_url.empty());

  PlaceOrder(child, token, "EDX-1");
  // The LMS refuses the next order's enrollment with a 403, which is not retried automatically:
  // it ends in Fulfillment Error until the manual retry below. (With a 500, an automatic retry
  // could complete it first once the LMS is healed, and the manual retry found nothing to do.)
  ledger::fulfillment::HttpClient lms;
  auto faulted = lms.Send({.method = "POST",
                           .url = child.standin_url + "/control/faults",
                           .headers = {},
                           .body = R"({"fail_next": 1000, "status": 403})",
                           .connect_timeout_ms = 2'000,
                           .timeout_ms = 5'000});
  REQUIRE(faulted);
  REQUIRE(faulted->status == 200);
  PlaceOrder(child, token, "EDX-2");

  Run status = Ledgerctl({"--url", url, "status", "EDX-1"}, token);
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("order EDX-1: Complete") != std::string::npos);
  CHECK(status.out.find("Seat") != std::string::npos);

  Run failed = Ledgerctl({"--url", url, "status", "EDX-2"}, token);
  CHECK(failed.exit_code == 0);
  CHECK(failed.out.find("order EDX-2: Fulfillment Error") != std::string::npos);
  CHECK(failed.out.find("server") != std::string::npos);  // The failure kind of the line.

  // Ops' queue of orders in Fulfillment Error, with why each line failed.
  Run queue = Ledgerctl({"--url", url, "orders", "--status", "fulfillment_error"}, token);
  CHECK(queue.exit_code == 0);
  CHECK(queue.out.find("EDX-2 ") != std::string::npos);
  CHECK(queue.out.find("EDX-1 ") == std::string::npos);
  CHECK(queue.out.find("1: Fulfillment Server Error (server: ") != std::string::npos);
  CHECK(queue.out.find("1 orders (projection at position ") != std::string::npos);
  Run by_user = Ledgerctl({"--url", url, "--json", "orders", "--user", "7"}, token);
  REQUIRE(by_user.exit_code == 0);
  CHECK(boost::json::parse(by_user.out).at("orders").as_array().size() == 2);
  Run first = Ledgerctl({"--url", url, "--json", "orders", "--limit", "1"}, token);
  REQUIRE(first.exit_code == 0);
  const boost::json::value first_page = boost::json::parse(first.out);
  REQUIRE(first_page.at("orders").as_array().size() == 1);
  CHECK(first_page.at("orders").at(0).at("order_number").as_string() == "EDX-2");  // Newest.
  Run rest = Ledgerctl({"--url", url, "--json", "orders", "--cursor",
                        std::string(first_page.at("next_cursor").as_string())},
                       token);
  REQUIRE(rest.exit_code == 0);
  CHECK(boost::json::parse(rest.out).at("orders").at(0).at("order_number").as_string() == "EDX-1");
  Run more = Ledgerctl({"--url", url, "orders", "--limit", "1"}, token);
  CHECK(more.err.find("more orders follow: --cursor ") != std::string::npos);
  CHECK(Ledgerctl({"--url", url, "orders", "--status", "lost"}, token).exit_code == 2);  // 400.
  CHECK(Ledgerctl({"--url", url, "orders", "--status", "open", "--user", "7"}, token).exit_code ==
        2);
  CHECK(Ledgerctl({"--url", url, "orders", "--limit", "0"}, token).exit_code == 2);
  for (const char* flag : {"--limit", "--status", "--user"}) {
    Run twice = Ledgerctl({"--url", url, "orders", flag, "1", flag, "2"}, token);
    CHECK(twice.exit_code == 2);
    CHECK(twice.err.find(std::string(flag) + " is given more than once") != std::string::npos);
  }
  CHECK(Ledgerctl({"--url", url, "orders", "--user", "0"}, token).exit_code == 2);  // 400.
  CHECK(Ledgerctl({"--url", url, "orders", "--status"}, token).exit_code == 2);
  CHECK(Ledgerctl({"--data-dir", data_dir.string(), "orders"}).exit_code == 2);  // Remote only.

  Run json_status = Ledgerctl({"--url", url, "--json", "status", "EDX-1"}, token);
  REQUIRE(json_status.exit_code == 0);
  CHECK(boost::json::parse(json_status.out).at("status").as_string() == "Complete");

  Run events = Ledgerctl({"--url", url, "events", "EDX-1"}, token);
  CHECK(events.exit_code == 0);
  for (const char* type : {"PaymentCaptured", "OrderCreated", "PostCheckout", "LineFulfilled"}) {
    CHECK(events.out.find(type) != std::string::npos);
  }

  // tail from position 1 prints every event so far, in order, then waits for more.
  Run tail = Ledgerctl({"--url", url, "tail", "--from", "1"}, token, 10s,
                       [](const std::string& out) { return CountLines(out) >= 1 + 8; });
  REQUIRE(CountLines(tail.out) >= 9);
  CHECK(tail.out.find("         1  ") != std::string::npos);
  CHECK(tail.out.find("PaymentCaptured") < tail.out.find("OrderCreated"));
  Run tail_json =
      Ledgerctl({"--url", url, "--json", "tail", "--from", "2", "--types", "OrderCreated"}, token,
                10s, [](const std::string& out) { return CountLines(out) >= 2; });
  REQUIRE(CountLines(tail_json.out) >= 2);
  CHECK(boost::json::parse(tail_json.out.substr(0, tail_json.out.find('\n')))
            .at("type")
            .as_string() == "OrderCreated");

  // Ops: the LMS is healthy again; a manual retry completes EDX-2.
  auto healed = lms.Send({.method = "POST",
                          .url = child.standin_url + "/control/faults",
                          .headers = {},
                          .body = R"({"fail_next": 0})",
                          .connect_timeout_ms = 2'000,
                          .timeout_ms = 5'000});
  REQUIRE(healed);
  Run retry = Ledgerctl({"--url", url, "retry", "EDX-2"}, token);
  CHECK(retry.exit_code == 0);
  CHECK(retry.out.find("retry of order EDX-2 recorded") != std::string::npos);
  bool complete = false;
  for (int i = 0; i < 100 && !complete; ++i) {
    complete = Ledgerctl({"--url", url, "status", "EDX-2"}, token).out.find("Complete") !=
               std::string::npos;
    if (!complete) std::this_thread::sleep_for(100ms);
  }
  CHECK(complete);
  // The failure before the retry is history now, and shown as such.
  Run completed = Ledgerctl({"--url", url, "status", "EDX-2"}, token);
  CHECK(completed.out.find("(earlier) server: ") != std::string::npos);
  Run again = Ledgerctl({"--url", url, "retry", "EDX-1"}, token);
  CHECK(again.exit_code == 1);  // 409 nothing_to_fulfill: the ledger says no.
  CHECK(again.err.find("nothing_to_fulfill") != std::string::npos);

  Run revoke =
      Ledgerctl({"--url", url, "revoke", "EDX-1", "1", "--refund-reference", "rf-1"}, token);
  CHECK(revoke.exit_code == 0);
  CHECK(revoke.out.find("Revoked") != std::string::npos);

  // A refund whose unenrollment the LMS refuses: the order reads Complete, and ops' other queue
  // names it.
  PlaceOrder(child, token, "EDX-3");
  REQUIRE(lms.Send({.method = "POST",
                    .url = child.standin_url + "/control/faults",
                    .headers = {},
                    .body = R"({"fail_next": 1, "status": 403})",
                    .connect_timeout_ms = 2'000,
                    .timeout_ms = 5'000}));
  Run unrevoked = Ledgerctl({"--url", url, "revoke", "EDX-3", "1"}, token);
  CHECK(unrevoked.exit_code == 1);  // Not revoked: the ledger's answer is no.
  CHECK(unrevoked.out.find("Revocation Error (server: ") != std::string::npos);
  CHECK(unrevoked.out.find(", 1 failed revocation") != std::string::npos);
  bool queued = false;
  for (int i = 0; i < 100 && !queued; ++i) {
    Run revocations =
        Ledgerctl({"--url", url, "orders", "--line-status", "revocation_error"}, token);
    queued = revocations.out.find("EDX-3 ") != std::string::npos &&
             revocations.out.find("1: Revocation Error (server: ") != std::string::npos;
    if (!queued) std::this_thread::sleep_for(100ms);
  }
  CHECK(queued);
  // Asked again, it succeeds: the refusal before is history, not the outcome.
  Run revoked_after = Ledgerctl({"--url", url, "revoke", "EDX-3", "1"}, token);
  CHECK(revoked_after.exit_code == 0);
  CHECK(revoked_after.out == "line 1 of order EDX-3: Revoked; order Refunded\n");

  Run rebuild = Ledgerctl({"--url", url, "rebuild", "order_status"}, token);
  CHECK(rebuild.exit_code == 0);
  CHECK(rebuild.out.find("order_status: rebuilt, generation 2") != std::string::npos);
  Run projections = Ledgerctl({"--url", url, "projections"}, token);
  CHECK(projections.exit_code == 0);
  CHECK(projections.out.find("order_status") != std::string::npos);
  CHECK(projections.out.find("merkle") != std::string::npos);  // ledgerd lists the audit tree.

  // Failures: unknown order 1, bad token 2, unknown projection 1, usage 2.
  CHECK(Ledgerctl({"--url", url, "status", "EDX-404"}, token).exit_code == 1);
  Run bad_token = Ledgerctl({"--url", url, "--token", "not-the-token", "status", "EDX-1"});
  CHECK(bad_token.exit_code == 2);
  CHECK(bad_token.err.find("401") != std::string::npos);
  CHECK(Ledgerctl({"--url", url, "rebuild", "nope"}, token).exit_code == 1);
  CHECK(Ledgerctl({"--url", url, "status"}, token).exit_code == 2);
  // A --url ledgerctl cannot use is bad usage (2), not an unreachable server (3).
  for (const char* bad_url : {"notaurl", "https://127.0.0.1:1", "http://127.0.0.1:1/?x=1"}) {
    Run refused = Ledgerctl({"--url", bad_url, "status", "EDX-1"}, token);
    CHECK(refused.exit_code == 2);
    CHECK(refused.err.find("--url: ") != std::string::npos);
  }
  // What cannot be an order number is a usage error, online and offline alike (not 404).
  for (const char* number : {"", "A/B", "a b"}) {
    Run invalid = Ledgerctl({"--url", url, "status", number}, token);
    CHECK(invalid.exit_code == 2);
    CHECK(invalid.err.find("is not an order number") != std::string::npos);
    CHECK(Ledgerctl({"--url", url, "revoke", number, "1"}, token).exit_code == 2);
  }
  CHECK(Ledgerctl({"--url", url, "verify"}, token).exit_code == 2);  // Offline only.

  CHECK(StopAndWait(child) == 0);

  // Offline, on the same data directory.
  const std::string dir = (data_dir).string();
  Run verify = Ledgerctl({"--data-dir", dir, "verify"});
  CHECK(verify.exit_code == 0);
  CHECK(verify.out.find("ok: positions 1..") != std::string::npos);
  Run offline_status = Ledgerctl({"--data-dir", dir, "status", "EDX-2"});
  CHECK(offline_status.exit_code == 0);
  CHECK(offline_status.out.find("Complete") != std::string::npos);
  CHECK(offline_status.out.find("(earlier) ") != std::string::npos);
  CHECK(Ledgerctl({"--data-dir", dir, "status", "EDX-2", "--as-of", "1"}).exit_code == 1);
  CHECK(Ledgerctl({"--data-dir", dir, "status", ""}).exit_code == 2);
  CHECK(Ledgerctl({"--data-dir", dir, "events", "A/B"}).exit_code == 2);
  Run ahead = Ledgerctl({"--data-dir", dir, "status", "EDX-2", "--as-of", "999999"});
  CHECK(ahead.exit_code == 2);
  CHECK(ahead.err.find("past the log's head") != std::string::npos);
  Run future = Ledgerctl({"--data-dir", dir, "status", "EDX-2", "--as-of", "2999-01-01T00:00:00Z"});
  CHECK(future.exit_code == 2);
  CHECK(future.err.find("--as-of 2999-01-01T00:00:00Z is in the future") != std::string::npos);
  CHECK(Ledgerctl({"--data-dir", dir, "check"}).exit_code == 0);
  CHECK(Ledgerctl({"--data-dir", dir, "tail"}).exit_code == 2);  // Needs --url.
  std::filesystem::remove_all(data_dir);
}

// Sets the LMS stand-in's faults (POST /control/faults with `body`).
void SetLmsFaults(const Child& child, const std::string& body) {
  ledger::fulfillment::HttpClient lms;
  auto set = lms.Send({.method = "POST",
                       .url = child.standin_url + "/control/faults",
                       .headers = {},
                       .body = body,
                       .connect_timeout_ms = 2'000,
                       .timeout_ms = 5'000});
  REQUIRE(set);
  REQUIRE(set->status == 200);
}

// `ledgerctl --json status` of `number` once `ready` holds for its first line, or the last
// answer after 200 tries 100 ms apart.
boost::json::value WaitForLine(const std::string& url, const std::string& token,
                               const std::string& number,
                               const std::function<bool(const boost::json::object&)>& ready) {
  boost::json::value order;
  for (int i = 0; i < 200; ++i) {
    Run status = Ledgerctl({"--url", url, "--json", "status", number}, token);
    REQUIRE(status.exit_code == 0);
    order = boost::json::parse(status.out);
    if (ready(order.at("lines").at(0).as_object())) break;
    std::this_thread::sleep_for(100ms);
  }
  return order;
}

TEST_CASE(
    "ledgerctl revoke: the exit code says how it ended, and status counts failed revocations") {
  const std::filesystem::path data_dir = FreshDataDir("ledgerctl-revoke");
  const std::filesystem::path config = data_dir / "ledgerd.toml";
  std::filesystem::create_directories(data_dir);
  {
    // A revoke waits 2 s for its outcome. Failed revocations are retried after 200 ms, then
    // 3.2 s, then 51.2 s: three failures come within seconds, and then the line waits.
    std::ofstream file(config);
    file << "[fulfillment]\nsync_timeout_ms = 2000\n"
            "[fulfillment.retry]\nfirst_delay_ms = 200\nmultiplier = 16\nretries_max = 3\n";
  }
  const Child child = StartLedgerd((data_dir / "data").string(), config.string());
  const std::string token = ReadDevToken(data_dir / "data");
  const std::string url = "http://127.0.0.1:" + std::to_string(child.port);
  auto complete = [](const boost::json::object& line) {
    return line.at("status").as_string() == "Complete";
  };
  for (const char* number : {"EDX-1", "EDX-2"}) {
    PlaceOrder(child, token, number);
    REQUIRE(WaitForLine(url, token, number, complete).at("status").as_string() == "Complete");
  }

  // The LMS answers the unenrollment after the revoke stopped waiting: 202, pending (exit 4).
  SetLmsFaults(child, R"({"delay_next": 1, "delay_ms": 4000})");
  Run pending = Ledgerctl({"--url", url, "--json", "revoke", "EDX-2", "1"}, token);
  CHECK(pending.exit_code == 4);
  CHECK(boost::json::parse(pending.out).at("line").at("revocation_requested").as_bool());
  auto revoked = [](const boost::json::object& line) {
    return line.at("status").as_string() == "Revoked";
  };
  CHECK(WaitForLine(url, token, "EDX-2", revoked).at("lines").at(0).at("status").as_string() ==
        "Revoked");

  // The LMS fails every unenrollment: Revocation Error (exit 1), with the retry to come.
  SetLmsFaults(child, R"({"fail_next": 1000, "status": 500})");
  Run failed = Ledgerctl({"--url", url, "revoke", "EDX-1", "1"}, token);
  CHECK(failed.exit_code == 1);
  CHECK(failed.out.find("line 1 of order EDX-1: Revocation Error (server: ") == 0);
  // Usually the first failure; a loaded machine may have recorded a retry's before the answer.
  CHECK(std::regex_search(failed.out,
                          std::regex(", [1-3] failed revocations?, next automatic retry 20")));
  auto failed_thrice = [](const boost::json::object& line) {
    return line.at("revocation_failures").to_number<uint64_t>() == 3;
  };
  const boost::json::value order = WaitForLine(url, token, "EDX-1", failed_thrice);
  REQUIRE(order.at("lines").at(0).at("revocation_failures").to_number<uint64_t>() == 3);
  // ATTEMPTS stays the fulfillment attempts.
  CHECK(order.at("lines").at(0).at("attempts").to_number<uint64_t>() == 1);
  // The table shows them next to the fulfillment attempts, with the next automatic retry.
  const std::regex row(R"(\n  1 +Seat +Revocation Error +1 +3  20\d\d-\d\d-\d\dT[^ ]+Z  )");
  Run status = Ledgerctl({"--url", url, "status", "EDX-1"}, token);
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("FAILED REVOCATIONS") != std::string::npos);
  CHECK(std::regex_search(status.out, row));
  Run queue = Ledgerctl({"--url", url, "orders", "--line-status", "revocation_error"}, token);
  CHECK(queue.out.find(", 3 failed revocations, next automatic retry ") != std::string::npos);

  // Offline, the same from the log.
  CHECK(StopAndWait(child) == 0);
  const std::string dir = (data_dir / "data").string();
  Run offline = Ledgerctl({"--data-dir", dir, "status", "EDX-1"});
  CHECK(offline.exit_code == 0);
  CHECK(offline.out.find("FAILED REVOCATIONS") != std::string::npos);
  CHECK(std::regex_search(offline.out, row));
  // The failure's kind, as the remote status shows it.
  CHECK(offline.out.find("  server: ") != std::string::npos);
  Run offline_json = Ledgerctl({"--data-dir", dir, "--json", "status", "EDX-1"});
  CHECK(offline_json.exit_code == 0);
  // The server's JSON: a line has the same fields online and offline.
  const boost::json::object line =
      boost::json::parse(offline_json.out).at("lines").at(0).as_object();
  CHECK(line.at("revocation_failures").to_number<uint64_t>() >= 3);
  CHECK(line.at("last_error").at("kind").as_string() == "server");
  CHECK(line.at("next_retry_at").as_string().starts_with("20"));
  std::vector<std::string> offline_keys, online_keys;
  for (const auto& field : line) offline_keys.emplace_back(field.key());
  for (const auto& field : order.at("lines").at(0).as_object()) {
    online_keys.emplace_back(field.key());
  }
  CHECK(offline_keys == online_keys);
  std::filesystem::remove_all(data_dir);
}

TEST_CASE("ledgerctl: an unreachable server is exit code 3, usage errors 2") {
  Run unreachable = Ledgerctl({"--url", "http://127.0.0.1:1", "status", "EDX-1"});
  CHECK(unreachable.exit_code == 3);
  CHECK(unreachable.err.find("Connection refused") != std::string::npos);
  CHECK(Ledgerctl({}).exit_code == 2);
  CHECK(Ledgerctl({"frobnicate"}).exit_code == 2);
  CHECK(Ledgerctl({"--url"}).exit_code == 2);
  Run empty_dir = Ledgerctl({"--data-dir", "", "verify"});
  CHECK(empty_dir.exit_code == 2);
  CHECK(empty_dir.err.find("--data-dir must not be empty") != std::string::npos);
  CHECK(Ledgerctl({"--url", "http://127.0.0.1:1", "--data-dir", "x", "status", "A"}).exit_code ==
        2);
  Run help = Ledgerctl({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("tail") != std::string::npos);
}

TEST_CASE("ledgerctl: an unexpected 2xx answer is exit code 3 with a message, never a crash") {
  auto expect_unexpected = [](const Run& run) {
    INFO("exit " << run.exit_code << ", stdout: " << run.out << "stderr: " << run.err);
    CHECK(run.exit_code == 3);
    CHECK(run.err.find("unexpected answer from the server") != std::string::npos);
  };
  {
    // Not JSON at all: a proxy's page, another service on the port.
    FakeServer server(
        [](const std::string&, int connection) { Answer(connection, 200, "hello", "text/plain"); });
    const std::string url = server.url();
    expect_unexpected(Ledgerctl({"--url", url, "status", "EDX-1"}));
    expect_unexpected(Ledgerctl({"--url", url, "--json", "status", "EDX-1"}));
    expect_unexpected(Ledgerctl({"--url", url, "events", "EDX-1"}));
    expect_unexpected(Ledgerctl({"--url", url, "tail"}, "", 5s));
    expect_unexpected(Ledgerctl({"--url", url, "retry", "EDX-1"}));
    expect_unexpected(Ledgerctl({"--url", url, "revoke", "EDX-1", "1"}));
    expect_unexpected(Ledgerctl({"--url", url, "projections"}));
    expect_unexpected(Ledgerctl({"--url", url, "rebuild", "x"}));
    expect_unexpected(Ledgerctl({"--url", url, "export"}));
  }
  {
    // JSON objects with fields left out or of another type.
    FakeServer server([](const std::string& target, int connection) {
      if (target.starts_with("/v1/projections")) {
        Answer(connection, target.ends_with("/rebuild") ? 202 : 200,
               R"({"projections":[{"name":"x"}]})");
      } else if (target.starts_with("/v1/audit/export")) {
        Answer(connection, 200, R"({"events":[],"head_position":-1})");
      } else if (target.starts_with("/v1/events")) {
        Answer(connection, 200, R"({"events":[],"head_position":"7"})");
      } else {
        Answer(connection, 200, R"({"user":1,"lines":[{"line_id":"1"}]})");
      }
    });
    const std::string url = server.url();
    // What can be shown is shown; a missing field is left blank.
    Run projections = Ledgerctl({"--url", url, "projections"});
    CHECK(projections.exit_code == 0);
    CHECK(projections.out.find("x ") != std::string::npos);
    Run status = Ledgerctl({"--url", url, "status", "EDX-1"});
    CHECK(status.exit_code == 0);
    // What a command needs and cannot find is an unexpected answer.
    expect_unexpected(Ledgerctl({"--url", url, "rebuild", "x"}));
    expect_unexpected(Ledgerctl({"--url", url, "rebuild", "y"}));  // Not listed: no endless wait.
    expect_unexpected(Ledgerctl({"--url", url, "export"}));
    expect_unexpected(Ledgerctl({"--url", url, "tail"}, "", 5s));
    expect_unexpected(Ledgerctl({"--url", url, "revoke", "EDX-1", "1"}));
  }
}

TEST_CASE("ledgerctl: digest --url refuses a digest that names no public key") {
  const std::string zeros(64, '0');
  const std::string digest = R"({"digest":"orderledger.digest.v1","position":1,"tree_size":1,)"
                             R"("root":")" +
                             zeros + R"(","chain_head":")" + zeros +
                             R"(","time_us":1,"key_id":"0000000000000000","signature":")" + zeros +
                             zeros + R"("})";
  FakeServer server([&](const std::string& target, int connection) {
    Answer(connection, target.starts_with("/v1/audit/digest") ? 200 : 404, digest);
  });
  const std::filesystem::path dir = FreshDataDir("ledgerctl-digest");
  const std::string out = (dir / "digest.json").string();
  Run run = Ledgerctl({"--url", server.url(), "digest", "--out", out});
  INFO("stdout: " << run.out << "stderr: " << run.err);
  CHECK(run.exit_code == 3);
  CHECK(run.err.find("names no public key") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));
  std::filesystem::remove_all(dir);
}

TEST_CASE("ledgerctl offline: a directory without a ledger is an error, never a new ledger") {
  const std::filesystem::path dir = FreshDataDir("ledgerctl-no-ledger");
  const std::string mistyped = (dir / "dta").string();
  std::filesystem::create_directories(mistyped);
  for (const std::vector<std::string>& command : std::vector<std::vector<std::string>>{
           {"verify"}, {"digest"}, {"status", "EDX-1"}, {"check"}, {"export"}}) {
    for (const std::string& data_dir : {mistyped, (dir / "missing").string()}) {
      std::vector<std::string> args{"--data-dir", data_dir};
      args.insert(args.end(), command.begin(), command.end());
      Run run = Ledgerctl(args);
      INFO(command.front() << " on " << data_dir << ": stdout: " << run.out
                           << "stderr: " << run.err);
      CHECK(run.exit_code == 3);
      CHECK(run.err.find("no ledger at " + data_dir) != std::string::npos);
    }
  }
  // Nothing was created: no log, no state, no signing key.
  CHECK(std::filesystem::is_empty(mistyped));
  CHECK_FALSE(std::filesystem::exists(dir / "missing"));
  // A range that ends before it starts is a usage error, not "ok" over nothing.
  Run backwards = Ledgerctl({"--data-dir", mistyped, "verify", "--from", "10", "--to", "5"});
  CHECK(backwards.exit_code == 2);
  CHECK(backwards.err.find("--to before --from") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("ledgerctl export --url writes each page as it arrives") {
  // Two events of four, then a page that never comes (or a failure).
  const std::string first_page =
      R"({"head_position":4,"events":[)" + ExportEventJson(1) + "," + ExportEventJson(2) + "]}";
  std::atomic<bool> fail_second_page = false;
  FakeServer server([&](const std::string& target, int connection) {
    if (target.starts_with("/v1/audit/export?from=1&")) {
      Answer(connection, 200, first_page);
    } else if (fail_second_page) {
      Answer(connection, 500, R"({"error":{"code":"internal","message":"disk"}})");
    } else {
      Hold(connection);
    }
  });
  Run streamed = Ledgerctl({"--url", server.url(), "export"}, "", 4s,
                           [](const std::string& out) { return CountLines(out) >= 3; });
  INFO("stdout: " << streamed.out << "stderr: " << streamed.err);
  REQUIRE(CountLines(streamed.out) >= 3);  // The header and the first page, before the second.
  CHECK(streamed.out.find(R"("export":)") < streamed.out.find(R"("position":1)"));
  CHECK(streamed.out.find(R"("position":2)") != std::string::npos);

  // With --out, a failed export leaves no file (the pages go to FILE.partial, removed).
  fail_second_page = true;
  const std::filesystem::path dir = FreshDataDir("ledgerctl-export");
  const std::string out = (dir / "ledger.jsonl").string();
  Run failed = Ledgerctl({"--url", server.url(), "export", "--out", out});
  CHECK(failed.exit_code == 3);
  CHECK(failed.err.find("disk") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));
  CHECK_FALSE(std::filesystem::exists(out + ".partial"));
  // A complete one is renamed into place.
  Run complete = Ledgerctl({"--url", server.url(), "export", "--to", "2", "--out", out});
  CHECK(complete.exit_code == 0);
  std::ifstream file(out);
  std::stringstream text;
  text << file.rdbuf();
  CHECK(CountLines(text.str()) == 3);
  CHECK_FALSE(std::filesystem::exists(out + ".partial"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("ledgerctl tail bounds what it keeps: an endless event or refusal is exit 3") {
  // An event that never ends (no blank line): past 16 MiB, an unexpected answer.
  {
    FakeServer server([](const std::string&, int connection) {
      EndlessChunks(connection, 200, "text/event-stream",
                    "id: 1\nevent: OrderCreated\ndata: ", 40 << 20);
    });
    Run run = Ledgerctl({"--url", server.url(), "tail", "--from", "1"}, "", 5s);
    INFO("stderr: " << run.err);
    CHECK(run.exit_code == 3);
    CHECK(run.err.find("an event of more than") != std::string::npos);
  }
  // A refusal whose body never ends: read up to 1 MiB, then reported.
  {
    FakeServer server([](const std::string&, int connection) {
      EndlessChunks(connection, 503, "application/json", R"({"error":)", 40 << 20);
    });
    Run run = Ledgerctl({"--url", server.url(), "tail", "--from", "1"}, "", 5s);
    INFO("stderr: " << run.err);
    CHECK(run.err.size() < 2000);
    CHECK(run.exit_code == 3);
    CHECK(run.err.find("503") != std::string::npos);
  }
}

TEST_CASE("ledgerctl export --out on a damaged log leaves the earlier file as it was") {
  const std::filesystem::path data_dir = FreshDataDir("ledgerctl-damaged-export");
  const uint64_t head = FillLog(data_dir, 300);
  const std::string dir = data_dir.string();
  const std::string out = (data_dir / "keep.jsonl").string();
  Run good = Ledgerctl({"--data-dir", dir, "export", "--from", "1", "--out", out});
  REQUIRE(good.exit_code == 0);
  const std::string kept = ReadText(out);
  REQUIRE(CountLines(kept) == head + 1);
  CHECK_FALSE(std::filesystem::exists(out + ".partial"));

  // One flipped byte early in the largest table file (the log's records, which opening the log
  // moved out of the write-ahead log): a block the export reads, not one the open reads.
  std::filesystem::path largest;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir / "log")) {
    if (entry.path().extension() == ".sst" &&
        (largest.empty() || entry.file_size() > std::filesystem::file_size(largest))) {
      largest = entry.path();
    }
  }
  REQUIRE_FALSE(largest.empty());
  {
    std::fstream table(largest, std::ios::binary | std::ios::in | std::ios::out);
    table.seekg(100);
    const char byte = static_cast<char>(table.get());
    table.seekp(100);
    table.put(static_cast<char>(byte ^ 0x01));
  }
  Run damaged = Ledgerctl({"--data-dir", dir, "export", "--from", "1", "--out", out});
  INFO("stdout: " << damaged.out << "stderr: " << damaged.err);
  CHECK(damaged.exit_code == 3);
  CHECK(ReadText(out) == kept);
  CHECK_FALSE(std::filesystem::exists(out + ".partial"));
  // Without --out the failure is the same exit code (what reached stdout is not a whole export).
  CHECK(Ledgerctl({"--data-dir", dir, "export", "--from", "1"}).exit_code == 3);
  std::filesystem::remove_all(data_dir);
}

TEST_CASE("ledgerctl offline: a data directory ledgerd holds is refused before RocksDB opens it") {
  const std::filesystem::path data_dir = FreshDataDir("ledgerctl-in-use");
  const Child child = StartLedgerd(data_dir.string());
  const std::string token = ReadDevToken(data_dir);
  PlaceOrder(child, token, "EDX-1");
  const std::string dir = data_dir.string();
  const size_t old_logs = CountFiles(data_dir / "log", "LOG.old");
  const size_t old_state_logs = CountFiles(data_dir / "state", "LOG.old");
  for (const std::vector<std::string>& command : std::vector<std::vector<std::string>>{
           {"verify"}, {"check"}, {"export"}, {"projections"}, {"status", "EDX-1"}}) {
    std::vector<std::string> args{"--data-dir", dir};
    args.insert(args.end(), command.begin(), command.end());
    Run run = Ledgerctl(args);
    INFO(command.front() << ": stdout: " << run.out << "stderr: " << run.err);
    CHECK(run.exit_code == 3);
    CHECK(run.err.find(dir +
                       " is in use by a running ledgerd (or another ledgerctl); stop it, or use "
                       "--url") != std::string::npos);
    CHECK(run.err.find("While lock file") == std::string::npos);
  }
  // ledgerd's RocksDB info logs were not rotated away from it.
  CHECK(CountFiles(data_dir / "log", "LOG.old") == old_logs);
  CHECK(CountFiles(data_dir / "state", "LOG.old") == old_state_logs);
  CHECK(StopAndWait(child) == 0);
  CHECK(Ledgerctl({"--data-dir", dir, "verify"}).exit_code == 0);
  std::filesystem::remove_all(data_dir);
}

TEST_CASE("ledgerctl offline: check reports a projection behind the log, ranges, merkle") {
  const std::filesystem::path data_dir = FreshDataDir("ledgerctl-offline");
  const Child child = StartLedgerd(data_dir.string());
  PlaceOrder(child, ReadDevToken(data_dir), "EDX-1");
  CHECK(StopAndWait(child) == 0);
  const std::string dir = data_dir.string();
  Run verified = Ledgerctl({"--data-dir", dir, "--json", "verify"});
  REQUIRE(verified.exit_code == 0);
  const uint64_t head = boost::json::parse(verified.out).at("to").to_number<uint64_t>();
  REQUIRE(head > 0);

  // verify takes positions as export does: from 1, and up to one past the head.
  for (const char* command : {"verify", "export"}) {
    Run zero = Ledgerctl({"--data-dir", dir, command, "--from", "0"});
    CHECK(zero.exit_code == 2);
    CHECK(zero.err.find("--from needs a position") != std::string::npos);
    CHECK(Ledgerctl({"--data-dir", dir, command, "--to", "0"}).exit_code == 2);
    Run past = Ledgerctl({"--data-dir", dir, command, "--from", std::to_string(head + 2)});
    CHECK(past.exit_code == 1);
    CHECK(past.err.find("is past the log's head (" + std::to_string(head) + ")") !=
          std::string::npos);
    CHECK(Ledgerctl({"--data-dir", dir, command, "--from", std::to_string(head + 1)}).exit_code ==
          0);
  }
  Run nothing = Ledgerctl({"--data-dir", dir, "verify", "--from", std::to_string(head + 1)});
  CHECK(nothing.out.find("ok: no events from position " + std::to_string(head + 1)) !=
        std::string::npos);

  // The Merkle projection is listed and rebuilt offline as ledgerd lists and rebuilds it.
  Run projections = Ledgerctl({"--data-dir", dir, "projections"});
  CHECK(projections.exit_code == 0);
  CHECK(projections.out.find("merkle") != std::string::npos);
  Run merkle = Ledgerctl({"--data-dir", dir, "rebuild", "merkle"});
  CHECK(merkle.exit_code == 0);
  CHECK(merkle.out.find("rebuilt merkle") != std::string::npos);
  CHECK(Ledgerctl({"--data-dir", dir, "rebuild", "nope"}).exit_code == 2);

  // Caught up (a projection may stop a few events behind when ledgerd stops), check agrees.
  CHECK(Ledgerctl({"--data-dir", dir, "check", "--catch-up"}).exit_code == 0);
  Run equal = Ledgerctl({"--data-dir", dir, "check"});
  CHECK(equal.exit_code == 0);
  CHECK(equal.out.find("the projection equals the log\n") != std::string::npos);

  // A state directory that was lost: the projection is at 0, the log is not; a no (exit 1).
  std::filesystem::remove_all(data_dir / "state");
  Run behind = Ledgerctl({"--data-dir", dir, "check"});
  INFO("stdout: " << behind.out << "stderr: " << behind.err);
  CHECK(behind.exit_code == 1);
  CHECK(behind.out.find("BEHIND: the projection is at position 0, the log's head is " +
                        std::to_string(head)) != std::string::npos);
  Run behind_json = Ledgerctl({"--data-dir", dir, "--json", "check"});
  CHECK(behind_json.exit_code == 1);
  const boost::json::value report = boost::json::parse(behind_json.out);
  CHECK_FALSE(report.at("ok").as_bool());
  CHECK(report.at("lag").to_number<uint64_t>() == head);
  CHECK(Ledgerctl({"--data-dir", dir, "rebuild", "order_status"}).exit_code == 0);
  CHECK(Ledgerctl({"--data-dir", dir, "check"}).exit_code == 0);

  // A state directory that lost its CURRENT file is refused, and left as it is: no new, empty
  // database that a second check would read as equal.
  std::filesystem::remove(data_dir / "state" / "CURRENT");
  for (int attempt = 0; attempt < 2; ++attempt) {
    Run lost = Ledgerctl({"--data-dir", dir, "check"});
    CHECK(lost.exit_code == 3);
    CHECK(lost.err.find("has lost its CURRENT file") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(data_dir / "state" / "CURRENT"));
  std::filesystem::rename(data_dir / "state", data_dir / "state-aside");
  CHECK(Ledgerctl({"--data-dir", dir, "check"}).exit_code == 1);
  std::filesystem::remove_all(data_dir);
}

}  // namespace
