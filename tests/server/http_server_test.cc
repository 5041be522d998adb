// The HTTP server on its own: routing, keep-alive, the idle timeout, and a graceful stop that
// lets a request in flight finish.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "fulfillment/http_client.h"

namespace ledger::server {
namespace {

using namespace std::chrono_literals;

// Two pieces, "one" and "two", then the end; each delivered from a thread of its own.
class TwoPieces final : public BodyStream {
 public:
  ~TwoPieces() override {
    // The last reference may go on one of these threads (inside `deliver`): that one ends by
    // itself right after.
    for (std::thread& thread : threads_) {
      if (thread.get_id() == std::this_thread::get_id()) {
        thread.detach();
      } else {
        thread.join();
      }
    }
  }
  void Next(Deliver deliver) override {
    const int sent = sent_++;
    threads_.emplace_back(
        [deliver = std::move(deliver), sent] { deliver(sent == 0 ? "one" : "two", sent == 1); });
  }
  void Cancel() override {}

 private:
  std::atomic<int> sent_{0};
  std::vector<std::thread> threads_;
};

std::unique_ptr<HttpServer> StartServer(HttpServerOptions options = {}) {
  Router router;
  router.Add("GET", "/stream", [](const HttpServerRequest&) {
    return HttpServerResponse{.status = 200,
                              .content_type = "text/event-stream",
                              .body = "zero",
                              .headers = {},
                              .stream = std::make_shared<TwoPieces>()};
  });
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

// Everything the server sends on `fd` until it closes the connection.
std::string ReceiveAll(int fd) {
  std::string all;
  for (std::string piece = Receive(fd); !piece.empty(); piece = Receive(fd)) all += piece;
  return all;
}

void SendText(int fd, const std::string& text) {
  REQUIRE(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size()));
}

TEST_CASE("HEAD is GET without the body; another method is 405 with Allow") {
  auto server = StartServer();
  const int fd = Connect(server->port());
  // A HEAD, then a GET on the same connection: the second answer must not be read as the
  // first one's body.
  SendText(fd,
           "HEAD /echo/c HTTP/1.1\r\nHost: x\r\n\r\n"
           "PUT /echo/c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
           "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /echo/d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string all = ReceiveAll(fd);
  ::close(fd);
  INFO(all);
  const size_t head_end = all.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  const std::string head = all.substr(0, head_end);
  CHECK(head.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(head.find("Content-Length: 3") != std::string::npos);  // "c|-", not sent.
  const std::string rest = all.substr(head_end + 4);
  REQUIRE(rest.rfind("HTTP/1.1 405", 0) == 0);
  CHECK(rest.find("Allow: GET, HEAD") != std::string::npos);
  CHECK(rest.find("method_not_allowed") != std::string::npos);
  // The 404 to a HEAD has no body either: the next answer starts right after its header.
  const size_t not_found = rest.find("HTTP/1.1 404");
  REQUIRE(not_found != std::string::npos);
  const size_t not_found_end = rest.find("\r\n\r\n", not_found);
  CHECK(rest.substr(not_found_end + 4).rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(all.size() >= 3);
  CHECK(all.substr(all.size() - 3) == "d|-");
}

TEST_CASE("a request target in absolute form is served like its path and query") {
  // HTTP/1.1 servers must accept the absolute form (RFC 9112 3.2.2); its host is not ours to
  // check.
  auto server = StartServer();
  const int fd = Connect(server->port());
  SendText(fd,
           "GET http://127.0.0.1/echo/e?q=z HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET http://127.0.0.1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string answer = ReceiveAll(fd);
  ::close(fd);
  INFO(answer);
  CHECK(answer.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(answer.find("e|z") != std::string::npos);
  CHECK(answer.find("HTTP/1.1 400") != std::string::npos);  // No path: not a resource.
}

TEST_CASE("a streamed answer is chunked for HTTP/1.1 and plain for HTTP/1.0") {
  auto server = StartServer();
  int fd = Connect(server->port());
  SendText(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string all = ReceiveAll(fd);
  ::close(fd);
  CHECK(all.find("Transfer-Encoding: chunked") != std::string::npos);
  CHECK(all.find("\r\n3\r\none\r\n") != std::string::npos);

  fd = Connect(server->port());
  SendText(fd, "GET /stream HTTP/1.0\r\n\r\n");
  all = ReceiveAll(fd);
  ::close(fd);
  INFO(all);
  CHECK(all.rfind("HTTP/1.0 200 OK", 0) == 0);
  CHECK(all.find("Transfer-Encoding") == std::string::npos);
  CHECK(all.substr(all.find("\r\n\r\n") + 4) == "zeroonetwo");

  // HEAD of a stream: the header, then the connection closes.
  fd = Connect(server->port());
  SendText(fd, "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  all = ReceiveAll(fd);
  ::close(fd);
  CHECK(all.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(all.substr(all.find("\r\n\r\n") + 4).empty());
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
