// ledgerd as a process: it prints where it listens, serves behind bearer tokens, exits 0 on
// SIGTERM, and a restart (after SIGTERM or SIGKILL) finds everything it acknowledged.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/ledgerd_process.h"
#include "tests/support/run_program.h"

namespace {

using namespace std::chrono_literals;
using namespace ledger::testing;

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
  // Writes right before SIGTERM: the projections still apply them before ledgerd exits.
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 25; ++i) {
        (void)Send(first.port, token, "POST", "/v1/payments", PaymentBody(100 + w * 25 + i));
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  CHECK(StopAndWait(first) == 0);
  const ProgramRun check =
      RunProgram(LEDGER_LEDGERCTL, {"--data-dir", data_dir.string(), "--json", "check"});
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  CHECK(check.out.find("\"lag\":0") != std::string::npos);

  // The key of the enrollment codes: made at the first start, readable by its owner only.
  const std::filesystem::path code_key = data_dir / "enrollment-codes.key";
  REQUIRE(std::filesystem::exists(code_key));
  CHECK((std::filesystem::status(code_key).permissions() & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  std::string first_key;
  std::getline(std::ifstream(code_key) >> std::ws, first_key);
  CHECK(first_key.size() >= 32);

  const Child second = StartLedgerd(data_dir.string());
  CHECK(ReadDevToken(data_dir) == token);  // The same token after a restart.
  std::string second_key;
  std::getline(std::ifstream(code_key) >> std::ws, second_key);
  CHECK(second_key == first_key);  // The same codes for a line retried after a restart.
  auto events = Send(second.port, token, "GET", "/v1/orders/EDX-9/events");
  REQUIRE(events);
  CHECK(events->status == 200);
  CHECK(events->body.find("\"p-9\"") != std::string::npos);
  // The log says who wrote it: the token's name.
  CHECK(events->body.find("\"actor\":\"api:development\"") != std::string::npos);
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
  auto whoami = Send(child.port, "audit-token-0123456789", "GET", "/v1/whoami");
  REQUIRE(whoami);
  CHECK(whoami->status == 200);
  CHECK(whoami->body == R"({"name":"audit","roles":["auditor"]})");
  auto anonymous = Send(child.port, "", "GET", "/v1/events?from=1");
  REQUIRE(anonymous);
  CHECK(anonymous->status == 401);
  CHECK(StopAndWait(child) == 0);
  std::filesystem::remove_all(data_dir);
}

TEST_CASE("a configuration it cannot use stops ledgerd at start with exit 2, naming the key") {
  const std::filesystem::path dir = FreshDataDir("ledgerd-config");
  const std::filesystem::path config = dir / "ledgerd.toml";
  struct Case {
    std::string toml;
    std::string message;  // What stderr must say.
  };
  const std::vector<Case> cases = {
      {"[server]\nhandler_threads = 2000\n",
       "server.handler_threads (line 2): must be from 1 to 1024, not 2000"},
      {"[server]\nbody_bytes_max = -1\n", "server.body_bytes_max (line 2): must be from 1 to"},
      {"[server]\nlisten = 8080\n", "server.listen (line 2): must be a non-empty string"},
      {"\n[server]\nhandler_thread = 4\n",
       "server.handler_thread (line 3): unknown key (known: listen, data_dir,"},
      {"[audit]\nwait_ms = 1.5\n", "audit.wait_ms (line 2): must be an integer from 1 to 600000"},
      {"[audit]\ndigest_file = \"\"\n", "audit.digest_file (line 2): must be a non-empty string"},
      {"[fulfillment]\nworkers = 0\n", "fulfillment.workers"},
      {"[surprise]\n", "surprise (line 1): unknown table"},
      {"server = 5\n", "server (line 1): must be a table"},
      {"[audit]\ndigest_interval_s = 60\ndigest_file = \"" + config.string() + "/d.jsonl\"\n",
       "audit.digest_file: cannot append to"},
      {"audit = \"x\"\n", "audit (line 1): must be a table"},
      {"[server\n", "TOML syntax error"},
  };
  for (const Case& c : cases) {
    INFO(c.toml);
    {
      std::ofstream file(config);
      file << c.toml;
    }
    const ProgramRun run =
        RunProgram(LEDGER_LEDGERD, {"--data-dir", (dir / "data").string(), "--listen",
                                    "127.0.0.1:0", "--config", config.string()});
    INFO(run.err);
    CHECK(run.exit_code == 2);
    CHECK(run.err.find(c.message) != std::string::npos);
    CHECK(run.out.find("listening") == std::string::npos);
  }

  // Flags: each mistake stops ledgerd before it makes or opens any data directory.
  const std::string data = (dir / "flags-data").string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> flag_cases = {
      {{"--data-dir", ""}, "--data-dir must not be empty"},
      {{"--data-dir", data, "--config", dir.string()}, "it is a directory"},
      {{"--data-dir", data, "--config", (dir / "missing.toml").string()},
       "No such file or directory"},
      {{"--data-dir", data, "--listen", "localhost:0"}, "--listen wants IPv4:PORT or [IPv6]:PORT"},
      {{"--data-dir", data, "--listen", "::1:0"}, "--listen wants IPv4:PORT or [IPv6]:PORT"},
      {{"--data-dir", data, "--listen", "127.0.0.1:0", "--listen", "127.0.0.1:1"},
       "--listen is given more than once"},
  };
  for (const auto& [arguments, message] : flag_cases) {
    const ProgramRun run = RunProgram(LEDGER_LEDGERD, arguments);
    INFO(fmt::format("{}", fmt::join(arguments, " ")) << "\n" << run.err);
    CHECK(run.exit_code == 2);
    CHECK(run.err.find(message) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(data));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a missing signing key with digests signed by it stops ledgerd; a new key is said") {
  const std::filesystem::path data_dir = FreshDataDir("ledgerd-lost-key");
  const Child first = StartLedgerd(data_dir.string());
  auto paid = Send(first.port, ReadDevToken(data_dir), "POST", "/v1/payments", PaymentBody(3));
  REQUIRE(paid);
  REQUIRE(paid->status == 201);
  CHECK(StopAndWait(first) == 0);
  const std::filesystem::path key = data_dir / "audit" / "signing.key";
  const std::filesystem::path digests = data_dir / "audit" / "digests.jsonl";
  REQUIRE(std::filesystem::exists(key));
  std::filesystem::remove(key);
  {
    std::ofstream file(digests, std::ios::app);
    file << R"({"digest":"orderledger.digest.v1","position":1,"key_id":"cda1c215a73254ee"})"
         << "\n";
  }

  const std::vector<std::string> arguments = {"--data-dir", data_dir.string(), "--listen",
                                              "127.0.0.1:0"};
  const ProgramRun refused = RunProgram(LEDGER_LEDGERD, arguments);
  INFO(refused.err);
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("the signing key " + key.string() + " is missing, but " +
                         digests.string() + " holds digests signed with key cda1c215a73254ee") !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(key));  // No new key made.

  // The digests moved aside: it starts with a new key, and says so (the log is not empty).
  std::filesystem::rename(digests, data_dir / "audit" / "digests.old.jsonl");
  const ProgramRun started = RunProgram(
      LEDGER_LEDGERD, arguments, {}, std::chrono::seconds(20),
      [](const std::string& out) { return out.find("listening on") != std::string::npos; });
  INFO(started.err);
  CHECK(started.out.find("listening on") != std::string::npos);
  CHECK(started.err.find("created a new signing key") != std::string::npos);
  CHECK(std::filesystem::exists(key));
  std::filesystem::remove_all(data_dir);
}

TEST_CASE("a damaged enrollment-codes key stops ledgerd and is never replaced") {
  const std::filesystem::path data_dir = FreshDataDir("ledgerd-code-key");
  CHECK(StopAndWait(StartLedgerd(data_dir.string())) == 0);
  const std::filesystem::path key = data_dir / "enrollment-codes.key";
  REQUIRE(std::filesystem::exists(key));
  const std::vector<std::string> arguments = {"--data-dir", data_dir.string(), "--listen",
                                              "127.0.0.1:0"};
  for (const std::string damaged : {"", "zz\n"}) {
    std::ofstream(key, std::ios::trunc) << damaged;
    const ProgramRun refused = RunProgram(LEDGER_LEDGERD, arguments);
    INFO(refused.err);
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("enrollment codes: " + key.string() + " holds no key") !=
          std::string::npos);
    std::ostringstream kept;
    kept << std::ifstream(key).rdbuf();
    CHECK(kept.str() == damaged);  // Left as it was: no new key behind ops' back.
  }
  // Removed by ops: a new key is made.
  std::filesystem::remove(key);
  const Child restarted = StartLedgerd(data_dir.string());
  CHECK(std::filesystem::file_size(key) > 32);
  CHECK(StopAndWait(restarted) == 0);
  std::filesystem::remove_all(data_dir);
}

TEST_CASE("a port another process holds stops ledgerd before it makes its data directory") {
  const int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(holder >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(holder, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(holder, 1) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  const std::string listen = fmt::format("127.0.0.1:{}", ntohs(address.sin_port));

  const std::filesystem::path dir = FreshDataDir("port-taken");
  const std::string data = (dir / "data").string();
  const ProgramRun run = RunProgram(LEDGER_LEDGERD, {"--data-dir", data, "--listen", listen});
  ::close(holder);
  INFO(run.err);
  CHECK(run.exit_code == 1);
  CHECK(run.err.find("cannot listen on " + listen) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(data));
  std::filesystem::remove_all(dir);
}

TEST_CASE(
    "SIGTERM cuts short LMS calls in flight: a waiting placement is answered, no failure is "
    "recorded, and the next start enrolls the lines") {
  const std::filesystem::path data_dir = FreshDataDir("slow-lms");
  const Child first = StartLedgerd(data_dir.string());
  const std::string token = ReadDevToken(data_dir);
  // Both enrollments are made, but answered only after 30 s, past the LMS timeout (7 s): before,
  // SIGTERM waited for that timeout and recorded a Timeout failure for each line.
  ledger::fulfillment::HttpClient lms;
  auto lms_call = [&](const std::string& method, const std::string& path, const std::string& body) {
    auto answer = lms.Send({.method = method,
                            .url = first.standin_url + path,
                            .headers = {},
                            .body = body,
                            .connect_timeout_ms = 2'000,
                            .timeout_ms = 5'000});
    REQUIRE(answer);
    REQUIRE(answer->status == 200);
    return boost::json::parse(answer->body);
  };
  lms_call("POST", "/control/faults", R"({"delay_next": 2, "delay_ms": 30000})");
  for (const std::string number : {"EDX-1", "EDX-2"}) {
    auto paid = Send(first.port, token, "POST", "/v1/payments", PaymentFor(number));
    REQUIRE(paid);
    REQUIRE(paid->status == 201);
  }
  auto placed = Send(first.port, token, "POST", "/v1/orders", OrderBody("EDX-1"));
  REQUIRE(placed);
  REQUIRE(placed->status == 201);
  std::optional<ledger::Result<ledger::fulfillment::HttpResponse, ledger::fulfillment::HttpError>>
      waiting;
  std::thread synchronous([&] {
    waiting = Send(first.port, token, "POST", "/v1/orders?fulfillment=sync", OrderBody("EDX-2"));
  });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (lms_call("GET", "/control/stats", "").at("requests").as_int64() < 2 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(lms_call("GET", "/control/stats", "").at("requests").as_int64() == 2);

  const auto stopping = std::chrono::steady_clock::now();
  CHECK(StopAndWait(first) == 0);
  CHECK(std::chrono::steady_clock::now() - stopping < 4s);
  synchronous.join();
  REQUIRE(waiting.has_value());
  REQUIRE(*waiting);
  CHECK((*waiting)->status == 201);
  CHECK((*waiting)->body.find(R"("fulfillment":"pending")") != std::string::npos);

  // The next start's stand-in is a new one, which enrolls at once.
  const Child second = StartLedgerd(data_dir.string());
  for (const std::string number : {"EDX-1", "EDX-2"}) {
    INFO(number);
    std::string body;
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (body.find(R"("status":"Complete")") == std::string::npos &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(20ms);
      auto order = Send(second.port, token, "GET", "/v1/orders/" + number);
      REQUIRE(order);
      body = order->body;
    }
    CHECK(body.find(R"("status":"Complete")") != std::string::npos);
    auto events = Send(second.port, token, "GET", "/v1/orders/" + number + "/events");
    REQUIRE(events);
    CHECK(events->body.find("FulfillmentFailed") == std::string::npos);
    CHECK(events->body.find("LineFulfilled") != std::string::npos);
  }
  CHECK(StopAndWait(second) == 0);
  std::filesystem::remove_all(data_dir);
}

}  // namespace
