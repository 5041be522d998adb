// Helpers for the fulfillment tests: an in-process LMS stand-in, orders and lines, and raw TCP
// peers that misbehave in ways the stand-in does not (hang on connect, answer garbage).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "domain/events.h"
#include "fulfillment/http_client.h"
#include "fulfillment/modules.h"
#include "server/lms_standin.h"

namespace ledger::fulfillment::testing {

inline constexpr std::string_view kApiKey = "test-api-key";

// A stand-in on 127.0.0.1 and a free port, requiring kApiKey.
std::unique_ptr<server::LmsStandin> StartStandin();

// Settings that reach `standin` with kApiKey; short timeouts keep failing tests fast.
LmsSettings SettingsFor(const server::LmsStandin& standin, int64_t timeout_ms = 2'000);

domain::Line SeatLine(std::string line_id, std::string course_key, std::string certificate_type);
domain::Line EntitlementLine(std::string line_id, std::string course_uuid, std::string mode);
domain::Line LineOfType(std::string line_id, std::string product_type, int64_t quantity = 1);
domain::OrderCreated Order(std::string order_number, std::vector<domain::Line> lines,
                           std::string username = "alice");
domain::LineState FulfilledLine(const domain::Line& line, std::string module,
                                std::string external_reference = "");

// A loopback port nobody listens on (bound, then closed: a connection is refused).
uint16_t RefusingPort();

// A raw TCP peer on a loopback port. Each accepted connection reads what arrives for a moment,
// then writes `answer` and closes.
class RawServer {
 public:
  explicit RawServer(std::string answer);
  ~RawServer();
  uint16_t port() const { return port_; }

 private:
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// Sends `bytes` on a fresh connection to 127.0.0.1:port and returns what comes back until the
// peer closes or a second passes.
std::string RawExchange(uint16_t port, const std::string& bytes);

// Whether the suite runs under sanitizers (LEDGER_SANITIZED=1): slower, so looser time bounds.
bool Sanitized();

}  // namespace ledger::fulfillment::testing
