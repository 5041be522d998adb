#include "tests/fulfillment/test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace ledger::fulfillment::testing {
namespace {

int LoopbackSocket(uint16_t port, bool listen_on_it, int backlog = 16) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto* generic = reinterpret_cast<sockaddr*>(&address);
  if (listen_on_it) {
    REQUIRE(::bind(fd, generic, sizeof(address)) == 0);
    REQUIRE(::listen(fd, backlog) == 0);
  } else {
    REQUIRE(::connect(fd, generic, sizeof(address)) == 0);
  }
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof(address);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0);
  return ntohs(address.sin_port);
}

bool WaitReadable(int fd, int timeout_ms) {
  pollfd descriptor{};
  descriptor.fd = fd;
  descriptor.events = POLLIN;
  return ::poll(&descriptor, 1, timeout_ms) > 0;
}

}  // namespace

std::unique_ptr<server::LmsStandin> StartStandin() {
  auto started = server::LmsStandin::Start(server::LmsStandinOptions{
      .address = "127.0.0.1", .port = 0, .api_key = std::string(kApiKey)});
  REQUIRE(started.has_value());
  return std::move(*started);
}

LmsSettings SettingsFor(const server::LmsStandin& standin, int64_t timeout_ms) {
  return LmsSettings{.lms_url = standin.url(),
                     .api_key = std::string(kApiKey),
                     .timeout_ms = timeout_ms,
                     .connect_timeout_ms = 2'000};
}

domain::Line SeatLine(std::string line_id, std::string course_key, std::string certificate_type) {
  domain::Line line = LineOfType(std::move(line_id), "Seat");
  line.attributes.push_back({"course_key", std::move(course_key)});
  if (!certificate_type.empty()) {
    line.attributes.push_back({"certificate_type", std::move(certificate_type)});
  }
  return line;
}

domain::Line EntitlementLine(std::string line_id, std::string course_uuid, std::string mode) {
  domain::Line line = LineOfType(std::move(line_id), "Course Entitlement");
  line.attributes.push_back({"course_uuid", std::move(course_uuid)});
  line.attributes.push_back({"certificate_type", std::move(mode)});
  return line;
}

domain::Line LineOfType(std::string line_id, std::string product_type, int64_t quantity) {
  return domain::Line{.line_id = std::move(line_id),
                      .product_type = std::move(product_type),
                      .sku = "SKU",
                      .title = "A product",
                      .quantity = quantity,
                      .unit_price_minor = 4'900,
                      .attributes = {}};
}

domain::OrderCreated Order(std::string order_number, std::vector<domain::Line> lines,
                           std::string username) {
  domain::OrderCreated order;
  order.order_number = std::move(order_number);
  order.user = domain::User{.id = 7, .username = std::move(username), .email = "a@example.com"};
  order.lines = std::move(lines);
  order.currency = "USD";
  order.partner = "EDX";
  return order;
}

domain::LineState FulfilledLine(const domain::Line& line, std::string module,
                                std::string external_reference) {
  domain::LineState state;
  state.line = line;
  state.status = domain::LineStatus::kComplete;
  state.attempts = 1;
  state.module = std::move(module);
  state.external_reference = std::move(external_reference);
  return state;
}

uint16_t RefusingPort() {
  const int fd = LoopbackSocket(0, true);
  const uint16_t port = LocalPort(fd);
  ::close(fd);
  return port;
}

RawServer::RawServer(std::string answer) {
  listener_ = LoopbackSocket(0, true);
  port_ = LocalPort(listener_);
  thread_ = std::thread([this, answer = std::move(answer)] {
    while (!stopping_.load()) {
      if (!WaitReadable(listener_, 50)) continue;
      const int connection = ::accept(listener_, nullptr, nullptr);
      if (connection < 0) continue;
      char buffer[4096];
      while (WaitReadable(connection, 100)) {
        if (::read(connection, buffer, sizeof(buffer)) <= 0) break;
      }
      if (!answer.empty()) {
        [[maybe_unused]] const ssize_t written = ::write(connection, answer.data(), answer.size());
      }
      ::close(connection);
    }
  });
}

RawServer::~RawServer() {
  stopping_.store(true);
  thread_.join();
  ::close(listener_);
}

std::string RawExchange(uint16_t port, const std::string& bytes) {
  const int fd = LoopbackSocket(port, false);
  [[maybe_unused]] const ssize_t written = ::write(fd, bytes.data(), bytes.size());
  std::string received;
  char buffer[4096];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < deadline && WaitReadable(fd, 100)) {
    const ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got <= 0) break;
    received.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return received;
}

bool Sanitized() {
  const char* value = std::getenv("LEDGER_SANITIZED");
  return value != nullptr && std::strcmp(value, "1") == 0;
}

}  // namespace ledger::fulfillment::testing
