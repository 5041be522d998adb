// ledgerd as a process: it prints where it listens, serves behind bearer tokens, exits 0 on
// SIGTERM, and a restart (after SIGTERM or SIGKILL) finds everything it acknowledged.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "fulfillment/http_client.h"

namespace {

using namespace std::chrono_literals;

struct Child {
  pid_t pid = -1;
  uint16_t port = 0;
};

// Starts ledgerd on a free port and reads its stdout up to the "listening on" line.
Child StartLedgerd(const std::string& data_dir, const std::string& config_path = "") {
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

void KillAndWait(const Child& child) {
  REQUIRE(::kill(child.pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(child.pid, &status, 0) == child.pid);
}

ledger::Result<ledger::fulfillment::HttpResponse, ledger::fulfillment::HttpError> Send(
    uint16_t port, const std::string& token, const std::string& method, const std::string& path,
    const std::string& body = "") {
  ledger::fulfillment::HttpClient client;
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  return client.Send({.method = method,
                      .url = "http://127.0.0.1:" + std::to_string(port) + path,
                      .headers = std::move(headers),
                      .body = body,
                      .connect_timeout_ms = 2'000,
                      .timeout_ms = 10'000});
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

std::string PaymentBody(int i) {
  return R"({"order_number": "EDX-)" + std::to_string(i) +
         R"(", "processor": "paypal", "reference": "p-)" + std::to_string(i) +
         R"(", "amount": "12.50", "currency": "USD"})";
}

TEST_CASE("ledgerd serves, exits 0 on SIGTERM, and a restart keeps what it acknowledged") {
  const std::filesystem::path data_dir = FreshDataDir("ledgerd-process");

  const Child first = StartLedgerd(data_dir.string());
  // Without configured tokens, ledgerd keeps a development token with every role.
  const std::string token = ReadDevToken(data_dir);
  REQUIRE(token.size() == 64);
  auto unauthenticated = Send(first.port, "", "POST", "/v1/payments", PaymentBody(9));
  REQUIRE(unauthenticated);
  CHECK(unauthenticated->status == 401);
  auto paid = Send(first.port, token, "POST", "/v1/payments", PaymentBody(9));
  REQUIRE(paid);
  CHECK(paid->status == 201);
  CHECK(StopAndWait(first) == 0);

  const Child second = StartLedgerd(data_dir.string());
  CHECK(ReadDevToken(data_dir) == token);  // The same token after a restart.
  auto events = Send(second.port, token, "GET", "/v1/orders/EDX-9/events");
  REQUIRE(events);
  CHECK(events->status == 200);
  CHECK(events->body.find("\"p-9\"") != std::string::npos);
  auto health = Send(second.port, "", "GET", "/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(StopAndWait(second) == 0);
  std::filesystem::remove_all(data_dir);
}

TEST_CASE("a restart after SIGKILL keeps every acknowledged write") {
  const std::filesystem::path data_dir = FreshDataDir("ledgerd-kill");
  int acknowledged = 0;
  for (int round = 0; round < 3; ++round) {
    const Child child = StartLedgerd(data_dir.string());
    const std::string token = ReadDevToken(data_dir);
    // Everything acknowledged by earlier rounds is there.
    for (int i = 0; i < acknowledged; ++i) {
      auto events =
          Send(child.port, token, "GET", "/v1/orders/EDX-" + std::to_string(i) + "/events");
      REQUIRE(events);
      INFO("order EDX-" << i << " after " << round << " kills");
      CHECK(events->status == 200);
    }
    // Writes from another thread while the process is killed: every 201 must survive.
    std::atomic<bool> stop{false};
    std::atomic<int> next{acknowledged};
    std::vector<int> confirmed;
    std::thread writer([&] {
      while (!stop.load()) {
        const int i = next.load();
        auto paid = Send(child.port, token, "POST", "/v1/payments", PaymentBody(i));
        // 200: the write before the last kill had committed without its answer reaching us.
        if (!paid || (paid->status != 201 && paid->status != 200)) break;
        confirmed.push_back(i);
        next.store(i + 1);
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + 100 * round));
    KillAndWait(child);
    stop.store(true);
    writer.join();
    REQUIRE_FALSE(confirmed.empty());
    acknowledged = confirmed.back() + 1;
  }
  const Child last = StartLedgerd(data_dir.string());
  const std::string token = ReadDevToken(data_dir);
  for (int i = 0; i < acknowledged; ++i) {
    auto events = Send(last.port, token, "GET", "/v1/orders/EDX-" + std::to_string(i) + "/events");
    REQUIRE(events);
    INFO("order EDX-" << i);
    CHECK(events->status == 200);
  }
  CHECK(StopAndWait(last) == 0);
  std::filesystem::remove_all(data_dir);
}

TEST_CASE("configured tokens: 401 without one, 403 without the role, the role lets through") {
  const std::filesystem::path data_dir = FreshDataDir("ledgerd-auth");
  const std::filesystem::path config = data_dir / "ledgerd.toml";
  {
    std::ofstream file(config);
    file << "[[auth.tokens]]\nname = \"shop\"\ntoken = \"shop-token-0123456789\"\n"
            "roles = [\"writer\"]\n"
            "[[auth.tokens]]\nname = \"audit\"\ntoken = \"audit-token-0123456789\"\n"
            "roles = [\"auditor\"]\n";
  }
  const Child child = StartLedgerd((data_dir / "data").string(), config.string());
  CHECK_FALSE(std::filesystem::exists(data_dir / "data" / "dev-token"));
  auto paid = Send(child.port, "shop-token-0123456789", "POST", "/v1/payments", PaymentBody(1));
  REQUIRE(paid);
  CHECK(paid->status == 201);
  auto shop_reads = Send(child.port, "shop-token-0123456789", "GET", "/v1/events?from=1");
  REQUIRE(shop_reads);
  CHECK(shop_reads->status == 403);
  auto audit_reads = Send(child.port, "audit-token-0123456789", "GET", "/v1/events?from=1");
  REQUIRE(audit_reads);
  CHECK(audit_reads->status == 200);
  auto audit_writes =
      Send(child.port, "audit-token-0123456789", "POST", "/v1/payments", PaymentBody(2));
  REQUIRE(audit_writes);
  CHECK(audit_writes->status == 403);
  auto anonymous = Send(child.port, "", "GET", "/v1/events?from=1");
  REQUIRE(anonymous);
  CHECK(anonymous->status == 401);
  CHECK(StopAndWait(child) == 0);
  std::filesystem::remove_all(data_dir);
}

}  // namespace
