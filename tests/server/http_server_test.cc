// The HTTP server on its own: routing, keep-alive, the idle timeout, and a graceful stop that
// lets a request in flight finish.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "fulfillment/http_client.h"

namespace ledger::server {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<HttpServer> StartServer(HttpServerOptions options = {}) {
  Router router;
  router.Add("GET", "/echo/{word}", [](const HttpServerRequest& request) {
    return HttpServerResponse{.status = 200,
                              .content_type = "text/plain",
                              .body = std::string(request.PathParam("word")) + "|" +
                                      std::string(request.Query("q").value_or("-"))};
  });
  router.Add("POST", "/size", [](const HttpServerRequest& request) {
    return HttpServerResponse{
        .status = 200, .content_type = "text/plain", .body = std::to_string(request.body.size())};
  });
  router.Add("GET", "/slow", [](const HttpServerRequest&) {
    std::this_thread::sleep_for(300ms);
    return HttpServerResponse{.status = 200, .content_type = "text/plain", .body = "done"};
  });
  router.Add("GET", "/throw", [](const HttpServerRequest&) -> HttpServerResponse {
    throw std::runtime_error("a bug");
  });
  auto server = HttpServer::Start(options, std::move(router));
  REQUIRE(server);
  return std::move(*server);
}

fulfillment::HttpResponse Get(fulfillment::HttpClient& client, uint16_t port,
                              const std::string& path) {
  auto response = client.Send({.method = "GET",
                               .url = "http://127.0.0.1:" + std::to_string(port) + path,
                               .headers = {},
                               .body = {},
                               .connect_timeout_ms = 2'000,
                               .timeout_ms = 5'000});
  if (!response) FAIL_CHECK(response.error().message);
  REQUIRE(response);
  return *response;
}

TEST_CASE("the router decodes path and query, and connections are kept alive") {
  auto server = StartServer();
  fulfillment::HttpClient client;
  CHECK(Get(client, server->port(), "/echo/a%2Fb?q=x%20y").body == "a/b|x y");
  CHECK(Get(client, server->port(), "/echo/c").body == "c|-");
  // A parameter given twice is refused, not one of them taken; the connection stays open.
  auto twice = Get(client, server->port(), "/echo/c?q=1&q=2");
  CHECK(twice.status == 400);
  CHECK(twice.body.find("invalid_parameter") != std::string::npos);
  CHECK(twice.body.find("the query gives q more than once") != std::string::npos);
  CHECK(Get(client, server->port(), "/echo/c?q=1&r=1").body == "c|1");
  CHECK(client.stats().connections_opened == 1);
  CHECK(Get(client, server->port(), "/echo").status == 404);
  auto thrown = Get(client, server->port(), "/throw");
  CHECK(thrown.status == 500);
  CHECK(thrown.body.find("internal_error") != std::string::npos);
}

// A connected loopback socket with a receive timeout.
int Connect(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  timeval timeout{.tv_sec = 5, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return fd;
}

std::string Receive(int fd) {
  char buffer[4096];
  const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

TEST_CASE("Expect: 100-continue gets 100 Continue before the body, or 413 instead") {
  auto server = StartServer({.body_bytes_max = 4096});
  const int fd = Connect(server->port());
  const std::string head =
      "POST /size HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\nExpect: 100-continue\r\n\r\n";
  REQUIRE(::send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size()));
  CHECK(Receive(fd).rfind("HTTP/1.1 100 Continue", 0) == 0);
  const std::string body(3000, 'x');
  REQUIRE(::send(fd, body.data(), body.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(body.size()));
  const std::string answer = Receive(fd);
  CHECK(answer.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(answer.find("\r\n\r\n3000") != std::string::npos);

  const std::string too_big =
      "POST /size HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n";
  REQUIRE(::send(fd, too_big.data(), too_big.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(too_big.size()));
  CHECK(Receive(fd).rfind("HTTP/1.1 413", 0) == 0);
  ::close(fd);
}

TEST_CASE("an idle connection is closed after the idle timeout") {
  auto server = StartServer({.idle_timeout_ms = 200});
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(server->port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  timeval timeout{.tv_sec = 5, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const auto start = std::chrono::steady_clock::now();
  char byte = 0;
  CHECK(::recv(fd, &byte, 1, 0) == 0);  // Closed by the server, nothing sent.
  CHECK(std::chrono::steady_clock::now() - start < 3s);
  ::close(fd);
}

TEST_CASE("stop lets a request in flight finish and refuses new connections") {
  auto server = StartServer();
  const uint16_t port = server->port();
  auto slow = std::async(std::launch::async, [port] {
    fulfillment::HttpClient client;
    return Get(client, port, "/slow");
  });
  for (int i = 0; i < 200 && server->requests_in_flight() == 0; ++i)
    std::this_thread::sleep_for(5ms);
  REQUIRE(server->requests_in_flight() == 1);
  server->Stop();
  const fulfillment::HttpResponse answer = slow.get();
  CHECK(answer.status == 200);
  CHECK(answer.body == "done");
  CHECK(answer.Header("Connection") == "close");
  fulfillment::HttpClient client;
  auto refused = client.Send({.method = "GET",
                              .url = "http://127.0.0.1:" + std::to_string(port) + "/echo/x",
                              .headers = {},
                              .body = {},
                              .connect_timeout_ms = 500,
                              .timeout_ms = 500});
  CHECK_FALSE(refused);
}

}  // namespace
}  // namespace ledger::server
