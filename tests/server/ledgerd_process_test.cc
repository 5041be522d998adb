// ledgerd as a process: it prints where it listens, serves, exits 0 on SIGTERM, and a restart
// finds what it acknowledged.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "fulfillment/http_client.h"

namespace {

using namespace std::chrono_literals;

struct Child {
  pid_t pid = -1;
  uint16_t port = 0;
};

// Starts ledgerd on a free port and reads its stdout up to the "listening on" line.
Child StartLedgerd(const std::string& data_dir) {
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    ::execl(LEDGER_LEDGERD, LEDGER_LEDGERD, "--data-dir", data_dir.c_str(), "--listen",
            "127.0.0.1:0", "--lms-standin", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  FILE* output = ::fdopen(out[0], "r");
  REQUIRE(output != nullptr);
  Child child{.pid = pid, .port = 0};
  char line[512];
  const std::string marker = "listening on http://127.0.0.1:";
  while (std::fgets(line, sizeof(line), output) != nullptr) {
    const std::string text = line;
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

ledger::Result<ledger::fulfillment::HttpResponse, ledger::fulfillment::HttpError> Send(
    uint16_t port, const std::string& method, const std::string& path,
    const std::string& body = "") {
  ledger::fulfillment::HttpClient client;
  return client.Send({.method = method,
                      .url = "http://127.0.0.1:" + std::to_string(port) + path,
                      .headers = {},
                      .body = body,
                      .connect_timeout_ms = 2'000,
                      .timeout_ms = 10'000});
}

TEST_CASE("ledgerd serves, exits 0 on SIGTERM, and a restart keeps what it acknowledged") {
  const char* root = std::getenv("LEDGER_TEST_TMP");
  const std::filesystem::path data_dir = std::filesystem::path(root != nullptr ? root : "/tmp") /
                                         ("ledgerd-process-" + std::to_string(::getpid()));
  std::filesystem::remove_all(data_dir);

  const Child first = StartLedgerd(data_dir.string());
  auto paid = Send(first.port, "POST", "/v1/payments",
                   R"({"order_number": "EDX-9", "processor": "paypal", "reference": "p-9",
                       "amount": "12.50", "currency": "USD"})");
  REQUIRE(paid);
  CHECK(paid->status == 201);
  CHECK(StopAndWait(first) == 0);

  const Child second = StartLedgerd(data_dir.string());
  auto events = Send(second.port, "GET", "/v1/orders/EDX-9/events");
  REQUIRE(events);
  CHECK(events->status == 200);
  CHECK(events->body.find("\"p-9\"") != std::string::npos);
  auto health = Send(second.port, "GET", "/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(StopAndWait(second) == 0);
  std::filesystem::remove_all(data_dir);
}

}  // namespace
