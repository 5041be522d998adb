// The HTTP client: connection reuse, its two timeouts, safe re-sending on a stale pooled
// connection, concurrent callers, and every kind of failure.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "fulfillment/http_client.h"
#include "tests/fulfillment/test_support.h"

namespace ledger::fulfillment {
namespace {

using namespace testing;
using Kind = HttpError::Kind;

HttpRequest Get(const std::string& url, int64_t timeout_ms = 2'000) {
  return HttpRequest{.method = "GET",
                     .url = url,
                     .headers = {},
                     .body = "",
                     .connect_timeout_ms = 1'000,
                     .timeout_ms = timeout_ms};
}

HttpRequest Enroll(const server::LmsStandin& standin, std::string idempotency_key) {
  HttpRequest request;
  request.method = "POST";
  request.url = standin.url() + "/api/enrollment/v1/enrollment";
  request.headers = {{"X-Edx-Api-Key", std::string(kApiKey)}};
  if (!idempotency_key.empty()) request.headers.emplace_back("Idempotency-Key", idempotency_key);
  request.body = R"({"user":"alice","mode":"audit","course_details":{"course_id":"c"}})";
  request.connect_timeout_ms = 1'000;
  request.timeout_ms = 2'000;
  return request;
}

TEST_CASE("http client: sequential calls reuse one kept-alive connection", "[http]") {
  auto standin = StartStandin();
  HttpClient client;
  for (int i = 0; i < 5; ++i) {
    auto response = client.Send(Get(standin->url() + "/control/stats"));
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    CHECK(response->Header("content-type") == "application/json");
  }
  CHECK(client.stats().requests == 5);
  CHECK(client.stats().connections_opened == 1);
  CHECK(client.stats().connections_reused == 4);
  CHECK(standin->Stats().connections_accepted == 1);

  client.CloseIdleConnections();
  REQUIRE(client.Send(Get(standin->url() + "/control/stats")).has_value());
  CHECK(standin->Stats().connections_accepted == 2);
}

TEST_CASE("http client: safe from several threads at once", "[http]") {
  auto standin = StartStandin();
  HttpClient client;
  constexpr int kThreads = 6;
  constexpr int kCallsPerThread = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        auto response =
            client.Send(Enroll(*standin, "key-" + std::to_string(t) + "-" + std::to_string(i)));
        if (response && response->status == 200) ok.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(ok.load() == kThreads * kCallsPerThread);
  CHECK(client.stats().connections_opened <= kThreads);
  CHECK(standin->Stats().Effects("enrollment") == kThreads * kCallsPerThread);
}

TEST_CASE("http client: a slow answer is a timeout, bounded by timeout_ms", "[http][timeout]") {
  auto standin = StartStandin();
  HttpClient client;
  standin->SetFaults({.delay_next = 1, .delay_ms = 2'000});
  const auto started = std::chrono::steady_clock::now();
  auto response = client.Send(Get(standin->url() + "/api/enrollment/v1/enrollment", 200));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(response.has_value());
  CHECK(response.error().kind == Kind::kTimeout);
  CHECK(elapsed >= std::chrono::milliseconds(190));
  CHECK(elapsed < std::chrono::milliseconds(Sanitized() ? 1'500 : 1'000));
  // The timed-out connection is not reused: the next call gets an answer on a fresh one.
  auto next = client.Send(Get(standin->url() + "/control/stats"));
  REQUIRE(next.has_value());
  CHECK(client.stats().connections_opened == 2);
}

TEST_CASE("http client: Shutdown cuts calls in flight short at once and refuses later ones",
          "[http]") {
  auto standin = StartStandin();
  HttpClient client;
  // Both calls are performed by the stand-in but answered only after 20 s.
  standin->SetFaults({.delay_next = 2, .delay_ms = 20'000});
  std::vector<std::optional<Result<HttpResponse, HttpError>>> results(2);
  std::vector<std::thread> callers;
  for (size_t i = 0; i < results.size(); ++i) {
    callers.emplace_back([&, i] {
      HttpRequest request = Enroll(*standin, "shutdown-" + std::to_string(i));
      request.timeout_ms = 30'000;
      results[i] = client.Send(request);
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (standin->Stats().requests < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE(standin->Stats().requests == 2);
  const auto started = std::chrono::steady_clock::now();
  client.Shutdown();
  for (auto& caller : callers) caller.join();
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
  for (const auto& result : results) {
    REQUIRE(result.has_value());
    REQUIRE_FALSE(result->has_value());
    CHECK(result->error().kind == Kind::kCancelled);
    CHECK_THAT(result->error().message,
               Catch::Contains("shutting down") && Catch::Contains("the partner may have acted"));
  }
  // Later calls fail at once, without a connection.
  const uint64_t opened = client.stats().connections_opened;
  auto later = client.Send(Get(standin->url() + "/control/stats"));
  REQUIRE_FALSE(later.has_value());
  CHECK(later.error().kind == Kind::kCancelled);
  CHECK(client.stats().connections_opened == opened);
  CHECK(HttpErrorKindName(Kind::kCancelled) == "cancelled");
  client.Shutdown();  // Idempotent.
}

TEST_CASE("http client: a connection that is never accepted is a connect timeout",
          "[http][timeout]") {
  // A listener with a backlog of 0 that never accepts: once its queue is full, the kernel drops
  // further SYNs and a connect hangs until the client gives up.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  REQUIRE(::listen(listener, 0) == 0);
  socklen_t size = sizeof(address);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size) == 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/";

  HttpClient client;
  std::vector<int> fillers;
  bool timed_out = false;
  // Fill the queue with plain connections, then the client's connect must wait.
  for (int i = 0; i < 8 && !timed_out; ++i) {
    HttpRequest request = Get(url, 100);
    request.connect_timeout_ms = 150;
    auto response = client.Send(request);
    REQUIRE_FALSE(response.has_value());
    if (response.error().kind == Kind::kConnect) {
      CHECK_THAT(response.error().message, Catch::Contains("timed out after 150 ms"));
      timed_out = true;
    } else {
      // Connected into the queue: the request then waits for an answer that never comes.
      CHECK(response.error().kind == Kind::kTimeout);
    }
  }
  CHECK(timed_out);
  ::close(listener);
}

TEST_CASE("http client: connection refused is a connect error", "[http]") {
  HttpClient client;
  auto response = client.Send(Get("http://127.0.0.1:" + std::to_string(RefusingPort()) + "/x"));
  REQUIRE_FALSE(response.has_value());
  CHECK(response.error().kind == Kind::kConnect);
  CHECK_THAT(response.error().message, Catch::Contains("refused"));
}

TEST_CASE("http client: invalid requests are refused before any I/O", "[http]") {
  HttpClient client;
  for (const std::string url :
       {"https://127.0.0.1/", "ftp://x/", "not a url", "http:///path", "http://127.0.0.1:99999/"}) {
    auto response = client.Send(Get(url));
    REQUIRE_FALSE(response.has_value());
    CHECK((response.error().kind == Kind::kInvalidRequest ||
           response.error().kind == Kind::kConnect));
  }
  HttpRequest injected = Get("http://127.0.0.1:1/");
  injected.headers = {{"X-Edx-Api-Key", "key\r\nX-Evil: 1"}};
  auto response = client.Send(injected);
  REQUIRE_FALSE(response.has_value());
  CHECK(response.error().kind == Kind::kInvalidRequest);
  HttpRequest bad_method = Get("http://127.0.0.1:1/");
  bad_method.method = "FETCH";
  CHECK(client.Send(bad_method).error().kind == Kind::kInvalidRequest);
  CHECK(client.stats().connections_opened == 0);
}

TEST_CASE("http client: a dropped connection is kClosed; re-sent once only when safe", "[http]") {
  auto standin = StartStandin();
  HttpClient client;
  SECTION("fresh connection dropped: closed, no re-send") {
    standin->SetFaults({.drop_next = 1});
    auto response = client.Send(Enroll(*standin, "k1"));
    REQUIRE_FALSE(response.has_value());
    CHECK(response.error().kind == Kind::kClosed);
    CHECK(client.stats().stale_resends == 0);
  }
  SECTION("pooled connection dropped, request with an Idempotency-Key: re-sent on a fresh one") {
    REQUIRE(client.Send(Enroll(*standin, "k0")).has_value());
    standin->SetFaults({.drop_next = 1});
    auto response = client.Send(Enroll(*standin, "k2"));
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    CHECK(client.stats().stale_resends == 1);
    CHECK(standin->Stats().Effects("enrollment") == 2);
  }
  SECTION("pooled connection dropped, POST without a key: never re-sent") {
    REQUIRE(client.Send(Enroll(*standin, "k0")).has_value());
    standin->SetFaults({.drop_next = 1});
    auto response = client.Send(Enroll(*standin, ""));
    REQUIRE_FALSE(response.has_value());
    CHECK(response.error().kind == Kind::kClosed);
    CHECK(client.stats().stale_resends == 0);
  }
}

TEST_CASE("http client: a pooled connection the server closed is not used", "[http]") {
  RawServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  HttpClient client;
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  // The raw server answers without "Connection: close" and then closes: the client pools the
  // connection, and must notice it is dead before the next call.
  for (int i = 0; i < 3; ++i) {
    auto response = client.Send(Get(url));
    REQUIRE(response.has_value());
    CHECK(response->body == "ok");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(client.stats().connections_opened == 3);
}

TEST_CASE("http client: garbage or cut answers are protocol or closed errors", "[http]") {
  HttpClient client;
  SECTION("not HTTP") {
    RawServer server("SSH-2.0-OpenSSH_9.2\r\n\r\n");
    auto response = client.Send(Get("http://127.0.0.1:" + std::to_string(server.port()) + "/"));
    REQUIRE_FALSE(response.has_value());
    CHECK(response.error().kind == Kind::kProtocol);
  }
  SECTION("cut in the middle of the body") {
    RawServer server("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
    auto response = client.Send(Get("http://127.0.0.1:" + std::to_string(server.port()) + "/"));
    REQUIRE_FALSE(response.has_value());
    CHECK(response.error().kind == Kind::kClosed);
    CHECK_THAT(response.error().message, Catch::Contains("middle"));
  }
  SECTION("closed without a byte") {
    RawServer server("");
    auto response = client.Send(Get("http://127.0.0.1:" + std::to_string(server.port()) + "/"));
    REQUIRE_FALSE(response.has_value());
    CHECK(response.error().kind == Kind::kClosed);
  }
  SECTION("a body over the limit") {
    HttpClient small(HttpClientOptions{.response_bytes_max = 10});
    RawServer server("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world");
    auto response = small.Send(Get("http://127.0.0.1:" + std::to_string(server.port()) + "/"));
    REQUIRE_FALSE(response.has_value());
    CHECK(response.error().kind == Kind::kProtocol);
  }
}

}  // namespace
}  // namespace ledger::fulfillment
