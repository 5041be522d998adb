// GET /v1/subscribe: server-sent events over the real HTTP server, read with a raw socket and a
// small chunked-transfer and SSE decoder, so that the bytes on the wire are what is tested.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/event_id.h"
#include "domain/commands.h"
#include "domain/events.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "eventstore/state_store.h"
#include "projections/projection_runner.h"
#include "projections/registry.h"
#include "server/data_dir.h"
#include "server/http_server.h"
#include "server/ledger_api.h"
#include "tests/server/api_fixture.h"

namespace ledger::server {
namespace {

using namespace std::chrono_literals;

struct SseMessage {
  std::string id;
  std::string event;
  std::string data;
  std::string comment;
};

// One SSE connection: sends the request, checks the chunked header, then decodes messages.
class SseClient {
 public:
  SseClient(uint16_t port, const std::string& target,
            const std::vector<std::string>& extra_headers = {}) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    timeval timeout{.tv_sec = 0, .tv_usec = 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    std::string request = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const std::string& header : extra_headers) request += header + "\r\n";
    request += "\r\n";
    REQUIRE(::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (raw_.find("\r\n\r\n") == std::string::npos) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      if (!Receive()) break;
    }
    const size_t end = raw_.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    header_ = raw_.substr(0, end);
    raw_.erase(0, end + 4);
    status_ = std::stoi(header_.substr(9, 3));
  }
  ~SseClient() { ::close(fd_); }

  int status() const { return status_; }
  const std::string& header() const { return header_; }

  // The next message within `wait`, nullopt if none came (or the stream ended).
  std::optional<SseMessage> Next(std::chrono::milliseconds wait = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (true) {
      DecodeChunks();
      const size_t end = body_.find("\n\n");
      if (end != std::string::npos) {
        const std::string block = body_.substr(0, end);
        body_.erase(0, end + 2);
        SseMessage message;
        size_t start = 0;
        while (start <= block.size()) {
          size_t newline = block.find('\n', start);
          if (newline == std::string::npos) newline = block.size();
          const std::string line = block.substr(start, newline - start);
          start = newline + 1;
          if (line.rfind("id: ", 0) == 0) message.id = line.substr(4);
          if (line.rfind("event: ", 0) == 0) message.event = line.substr(7);
          if (line.rfind("data: ", 0) == 0) message.data = line.substr(6);
          if (line.rfind(": ", 0) == 0) message.comment = line.substr(2);
        }
        if (message.id.empty() && message.event.empty() && message.comment.empty()) {
          continue;  // "retry: 1000"
        }
        return message;
      }
      if (ended_ || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      if (!Receive()) ended_ = true;
    }
  }

  // The next event (skipping keep-alive comments).
  std::optional<SseMessage> NextEvent(std::chrono::milliseconds wait = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
      auto message = Next(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
      if (!message) return std::nullopt;
      if (!message->id.empty() || !message->event.empty()) return message;
    }
    return std::nullopt;
  }

  bool ended() const { return ended_; }
  // Whether the server ended the chunked body (the last, empty chunk).
  bool got_last_chunk() const { return last_chunk_; }

 private:
  // false when the peer closed; true on data or a receive timeout.
  bool Receive() {
    char buffer[65536];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n > 0) {
      raw_.append(buffer, static_cast<size_t>(n));
      return true;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void DecodeChunks() {
    while (!last_chunk_) {
      const size_t line_end = raw_.find("\r\n");
      if (line_end == std::string::npos) return;
      const size_t size = std::stoul(raw_.substr(0, line_end), nullptr, 16);
      if (raw_.size() < line_end + 2 + size + 2) return;
      body_ += raw_.substr(line_end + 2, size);
      raw_.erase(0, line_end + 2 + size + 2);
      if (size == 0) last_chunk_ = true;
    }
  }

  int fd_ = -1;
  int status_ = 0;
  std::string header_;
  std::string raw_;   // Received, not yet de-chunked.
  std::string body_;  // De-chunked, not yet split into messages.
  bool ended_ = false;
  bool last_chunk_ = false;
};

// GET `target` on a connection of its own: the status and the body (Content-Length framed).
std::pair<int, std::string> Get(uint16_t port, const std::string& target) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  const std::string request =
      "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size()));
  std::string raw;
  char buffer[65536];
  ssize_t n = 0;
  while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0)
    raw.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  const size_t end = raw.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  return {std::stoi(raw.substr(9, 3)), raw.substr(end + 4)};
}

TEST_CASE("subscribe catches up, then delivers live events in position order") {
  ApiFixture ledger;
  ledger.Pay(0, 40);
  SseClient client(ledger.port(), "/v1/subscribe?from=1");
  REQUIRE(client.status() == 200);
  CHECK(client.header().find("text/event-stream") != std::string::npos);
  CHECK(client.header().find("chunked") != std::string::npos);
  for (int position = 1; position <= 40; ++position) {
    auto event = client.NextEvent();
    REQUIRE(event);
    CHECK(event->id == std::to_string(position));
    CHECK(event->event == "PaymentCaptured");
    const boost::json::value data = boost::json::parse(event->data);
    CHECK(data.at("position").as_int64() == position);
    CHECK(data.at("data").at("order_number").as_string() == "EDX-" + std::to_string(position - 1));
  }
  // Caught up: nothing more until something is appended.
  CHECK_FALSE(client.NextEvent(200ms));
  ledger.Pay(40, 25);
  for (int position = 41; position <= 65; ++position) {
    auto event = client.NextEvent();
    REQUIRE(event);
    CHECK(event->id == std::to_string(position));
  }
}

TEST_CASE("each event's data is the JSON of GET /v1/events, byte for byte, awkward text included") {
  ApiFixture ledger;
  // Stream names, actors and payload texts with quotes, backslashes, control characters and
  // multi-byte UTF-8: the stream's writer escapes them as the API's JSON does.
  std::string awkward = "\"q\" b\\s /";
  for (char c = 1; c < 0x20; ++c) awkward += c;
  awkward += "\x7f caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  for (int i = 0; i < 30; ++i) {
    const domain::Event event = domain::PaymentCaptured{
        .order_number = "EDX-" + std::to_string(i) + awkward,
        .processor = "paypal",
        .reference = awkward + std::to_string(i),
        .amount = {.minor_units = 4'900 + i, .currency = i % 2 == 0 ? "USD" : "XYZ"},
        .card_type = awkward,
        .card_last_digits = "4242",
        .captured_at_us = 1'795'000'000'000'000 + i,
        .excess = i % 3 == 0};
    const eventstore::NewEvent new_event =
        eventstore::ToNewEvent(event, {.actor = "actor " + awkward});
    auto appended = ledger.store().Append("stream " + std::to_string(i % 4) + awkward,
                                          eventstore::ExpectedVersion::Any(), {&new_event, 1});
    REQUIRE(appended);
  }
  const auto [status, body] = Get(ledger.port(), "/v1/events?from=1&limit=1000");
  REQUIRE(status == 200);
  const boost::json::value page = boost::json::parse(body);
  const boost::json::array& events = page.at("events").as_array();
  REQUIRE(events.size() == 30);

  SseClient client(ledger.port(), "/v1/subscribe?from=1");
  REQUIRE(client.status() == 200);
  for (const boost::json::value& expected : events) {
    auto message = client.NextEvent();
    REQUIRE(message);
    CHECK(message->id == std::to_string(expected.at("position").as_int64()));
    CHECK(message->event == "PaymentCaptured");
    CHECK(boost::json::parse(message->data) == expected);
    CHECK(message->data == boost::json::serialize(expected));
  }
  CHECK_FALSE(client.NextEvent(200ms));
}

TEST_CASE(
    "an event whose data does not decode ends the stream with an error message after the "
    "events before it") {
  ApiFixture ledger;
  ledger.Pay(0, 3);
  eventstore::NewEvent damaged{.event_id = EventId::NewRandom(),
                               .event_type = "PaymentCaptured",
                               .payload = "not a Cap'n Proto message",
                               .actor = "test"};
  REQUIRE(ledger.store().Append("order-EDX-damaged", eventstore::ExpectedVersion::Any(),
                                {&damaged, 1}));
  ledger.Pay(3, 2);
  SseClient client(ledger.port(), "/v1/subscribe?from=2");
  REQUIRE(client.status() == 200);
  for (const char* id : {"2", "3"}) {
    auto event = client.NextEvent();
    REQUIRE(event);
    CHECK(event->id == id);
  }
  auto error = client.NextEvent();
  REQUIRE(error);
  CHECK(error->id.empty());
  CHECK(error->event == "error");
  const boost::json::value data = boost::json::parse(error->data);
  CHECK(data.at("code").as_string() == "corruption");
  CHECK(std::string_view(data.at("message").as_string()).find("4") != std::string_view::npos);
  CHECK_FALSE(client.Next(2s));
  CHECK(client.got_last_chunk());
}

TEST_CASE("Last-Event-ID resumes right after the last event: nothing skipped or repeated") {
  ApiFixture ledger;
  ledger.Pay(0, 30);
  std::string last_id;
  {
    SseClient first(ledger.port(), "/v1/subscribe?from=1");
    for (int i = 0; i < 12; ++i) {
      auto event = first.NextEvent();
      REQUIRE(event);
      last_id = event->id;
    }
  }
  CHECK(last_id == "12");
  ledger.Pay(30, 5);  // While disconnected.
  // Last-Event-ID wins over from, as when an EventSource reconnects to its original URL.
  SseClient second(ledger.port(), "/v1/subscribe?from=1", {"Last-Event-ID: " + last_id});
  REQUIRE(second.status() == 200);
  for (int position = 13; position <= 35; ++position) {
    auto event = second.NextEvent();
    REQUIRE(event);
    CHECK(event->id == std::to_string(position));
  }
  CHECK_FALSE(second.NextEvent(200ms));
}

TEST_CASE("subscribe filters by stream prefix and type; bad parameters are 400") {
  ApiFixture ledger;
  ledger.Pay(0, 25);  // Orders EDX-0 .. EDX-24: the prefix "order-EDX-1" matches 1 and 10..19.
  SseClient prefix(ledger.port(), "/v1/subscribe?stream_prefix=order-EDX-1&types=PaymentCaptured");
  REQUIRE(prefix.status() == 200);
  std::vector<std::string> ids;
  while (auto event = prefix.NextEvent(300ms)) ids.push_back(event->id);
  CHECK(ids ==
        std::vector<std::string>{"2", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20"});

  SseClient no_match(ledger.port(), "/v1/subscribe?types=OrderCreated");
  REQUIRE(no_match.status() == 200);
  CHECK_FALSE(no_match.NextEvent(300ms));

  for (const char* target :
       {"/v1/subscribe?from=x", "/v1/subscribe?types=Nope",
        "/v1/subscribe?types=PaymentCaptured,,OrderCreated", "/v1/subscribe?types=PaymentCaptured,",
        "/v1/subscribe?types=,PaymentCaptured"}) {
    SseClient bad(ledger.port(), target);
    INFO(target);
    CHECK(bad.status() == 400);
  }
  SseClient bad_id(ledger.port(), "/v1/subscribe", {"Last-Event-ID: twelve"});
  CHECK(bad_id.status() == 400);
  SseClient two_ids(ledger.port(), "/v1/subscribe", {"Last-Event-ID: 3", "Last-Event-ID: 9"});
  CHECK(two_ids.status() == 400);

  // Past the next position (head 25, next 26): the positions between would be skipped.
  SseClient next(ledger.port(), "/v1/subscribe?from=26");
  CHECK(next.status() == 200);
  SseClient caught_up(ledger.port(), "/v1/subscribe", {"Last-Event-ID: 25"});
  CHECK(caught_up.status() == 200);
  SseClient beyond(ledger.port(), "/v1/subscribe?from=27");
  CHECK(beyond.status() == 400);
  SseClient restored(ledger.port(), "/v1/subscribe", {"Last-Event-ID: 1000"});
  CHECK(restored.status() == 400);
}

TEST_CASE("a caught-up subscriber gets keep-alive comments, and Stop ends every stream") {
  ApiFixture ledger({.subscribe_heartbeat_ms = 100});
  ledger.Pay(0, 3);
  std::vector<std::unique_ptr<SseClient>> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::make_unique<SseClient>(ledger.port(), "/v1/subscribe?from=1"));
  }
  for (auto& client : clients) {
    for (int position = 1; position <= 3; ++position) REQUIRE(client->NextEvent());
  }
  auto heartbeat = clients.front()->Next(2s);
  REQUIRE(heartbeat);
  CHECK(heartbeat->comment == "keep-alive");
  CHECK(ledger.server().requests_in_flight() == 20);

  // Streams count as requests in flight until they end; Stop cancels them and returns.
  const auto started = std::chrono::steady_clock::now();
  ledger.server().Stop();
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  CHECK(ledger.server().requests_in_flight() == 0);
  for (auto& client : clients) {
    while (client->Next(2s)) {
    }
    CHECK(client->got_last_chunk());
  }
}

TEST_CASE("Stop does not wait on a subscriber that stopped reading") {
  ApiFixture ledger;
  // Eight events of 800 KB each: more than the socket buffers hold.
  for (int i = 0; i < 8; ++i) {
    const domain::Event event =
        domain::PaymentCaptured{.order_number = "EDX-" + std::to_string(i),
                                .processor = "paypal",
                                .reference = std::string(800'000, 'r'),
                                .amount = {.minor_units = 4'900, .currency = "USD"},
                                .card_type = "visa",
                                .card_last_digits = "4242",
                                .captured_at_us = 1'700'000'000'000'000};
    const eventstore::NewEvent new_event = eventstore::ToNewEvent(event, {.actor = "test"});
    REQUIRE(ledger.store().Append("order-EDX-" + std::to_string(i),
                                  eventstore::ExpectedVersion::Any(), {&new_event, 1}));
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  const int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(ledger.port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  const std::string request = "GET /v1/subscribe?from=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size()));
  std::this_thread::sleep_for(1s);  // The stream fills the buffers; its write waits on the client.
  REQUIRE(ledger.server().requests_in_flight() == 1);

  const auto started = std::chrono::steady_clock::now();
  ledger.server().Stop();  // Before: until the 30 s idle timeout.
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK(ledger.server().requests_in_flight() == 0);
  ::close(fd);
}

TEST_CASE("a subscriber that leaves frees its stream") {
  ApiFixture ledger;
  ledger.Pay(0, 2);
  {
    SseClient client(ledger.port(), "/v1/subscribe?from=1");
    REQUIRE(client.NextEvent());
    REQUIRE(client.NextEvent());
    CHECK(ledger.server().requests_in_flight() == 1);
  }
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (ledger.server().requests_in_flight() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(ledger.server().requests_in_flight() == 0);
}

}  // namespace
}  // namespace ledger::server
