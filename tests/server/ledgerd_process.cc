#include "tests/server/ledgerd_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

namespace ledger::testing {

using namespace std::chrono_literals;

// Starts ledgerd on a free port and reads its stdout up to the "listening on" line.
Child StartLedgerd(const std::string& data_dir, const std::string& config_path) {
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    if (config_path.empty()) {
      ::execl(LEDGER_LEDGERD, LEDGER_LEDGERD, "--data-dir", data_dir.c_str(), "--listen",
              "127.0.0.1:0", "--lms-standin", static_cast<char*>(nullptr));
    } else {
      ::execl(LEDGER_LEDGERD, LEDGER_LEDGERD, "--data-dir", data_dir.c_str(), "--listen",
              "127.0.0.1:0", "--lms-standin", "--config", config_path.c_str(),
              static_cast<char*>(nullptr));
    }
    ::_exit(127);
  }
  ::close(out[1]);
  FILE* output = ::fdopen(out[0], "r");
  REQUIRE(output != nullptr);
  Child child{.pid = pid, .port = 0};
  char line[512];
  const std::string marker = "listening on http://127.0.0.1:";
  const std::string standin_marker = "LMS stand-in on ";
  while (std::fgets(line, sizeof(line), output) != nullptr) {
    const std::string text = line;
    if (text.rfind(standin_marker, 0) == 0) {
      child.standin_url = text.substr(standin_marker.size());
      while (!child.standin_url.empty() && std::isspace(child.standin_url.back()) != 0) {
        child.standin_url.pop_back();
      }
    }
    if (text.rfind(marker, 0) == 0) {
      child.port = static_cast<uint16_t>(std::stoi(text.substr(marker.size())));
      break;
    }
  }
  // The rest of the output goes nowhere; the pipe stays open until the child exits.
  std::thread([output] {
    char rest[512];
    while (std::fgets(rest, sizeof(rest), output) != nullptr) {
    }
    std::fclose(output);
  }).detach();
  REQUIRE(child.port != 0);
  return child;
}

int StopAndWait(const Child& child) {
  REQUIRE(::kill(child.pid, SIGTERM) == 0);
  int status = 0;
  for (int i = 0; i < 1000; ++i) {
    if (::waitpid(child.pid, &status, WNOHANG) == child.pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(10ms);
  }
  ::kill(child.pid, SIGKILL);
  ::waitpid(child.pid, &status, 0);
  FAIL("ledgerd did not exit within 10 s of SIGTERM");
  return -1;
}

void KillAndWait(const Child& child) {
  REQUIRE(::kill(child.pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(child.pid, &status, 0) == child.pid);
}

Result<fulfillment::HttpResponse, fulfillment::HttpError> Send(uint16_t port,
                                                               const std::string& token,
                                                               const std::string& method,
                                                               const std::string& path,
                                                               const std::string& body) {
  fulfillment::HttpClient client;
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  return client.Send({.method = method,
                      .url = "http://127.0.0.1:" + std::to_string(port) + path,
                      .headers = std::move(headers),
                      .body = body,
                      .connect_timeout_ms = 2'000,
                      .timeout_ms = 10'000});
}

std::string OrderBody(const std::string& number) {
  return R"({"order_number": ")" + number + R"(",
    "user": {"id": 7, "username": "ada", "email": "ada@example.com"},
    "lines": [{"line_id": "1", "product_type": "Seat", "sku": "S1", "title": "Seat",
               "quantity": 1, "unit_price": "49.00",
               "attributes": {"course_key": "course-v1:edX+DemoX+Demo",
                              "certificate_type": "verified"}}],
    "shipping_method": "No shipping required", "shipping_charge": "0.00",
    "billing_address": {"first_name": "Ada", "last_name": "Lovelace", "line1": "1 Main",
                        "city": "Cambridge", "postcode": "02139", "country": "US"},
    "order_total": "49.00", "currency": "USD", "partner": "EDX"})";
}

std::string PaymentFor(const std::string& number) {
  return R"({"order_number": ")" + number + R"(", "processor": "paypal", "reference": "p-)" +
         number + R"(", "amount": "49.00", "currency": "USD"})";
}

std::filesystem::path FreshDataDir(const std::string& name) {
  const char* root = std::getenv("LEDGER_TEST_TMP");
  const std::filesystem::path data_dir = std::filesystem::path(root != nullptr ? root : "/tmp") /
                                         (name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(data_dir);
  std::filesystem::create_directories(data_dir);
  return data_dir;
}

std::string ReadDevToken(const std::filesystem::path& data_dir) {
  std::ifstream file(data_dir / "dev-token");
  std::string token;
  std::getline(file, token);
  return token;
}

}  // namespace ledger::testing
