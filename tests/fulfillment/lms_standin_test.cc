// The LMS stand-in itself: its API checks, idempotency memory, control endpoints, and that
// garbage on the wire costs a connection, never the server.
#include <catch2/catch.hpp>

#include "fulfillment/http_client.h"
#include "tests/fulfillment/test_support.h"

namespace ledger::fulfillment {
namespace {

using namespace testing;

HttpResponse Call(HttpClient& client, const server::LmsStandin& standin, std::string method,
                  std::string path, std::string body = "",
                  std::vector<std::pair<std::string, std::string>> headers = {
                      {"X-Edx-Api-Key", std::string(kApiKey)}}) {
  HttpRequest request;
  request.method = std::move(method);
  request.url = standin.url() + path;
  request.headers = std::move(headers);
  request.body = std::move(body);
  auto response = client.Send(request);
  REQUIRE(response.has_value());
  return std::move(*response);
}

const std::string kEnrollBody =
    R"({"user":"bob","mode":"verified","course_details":{"course_id":"course-v1:X+Y+Z"}})";

TEST_CASE("stand-in: API key missing -> 401, wrong -> 403", "[standin]") {
  auto standin = StartStandin();
  HttpClient client;
  CHECK(Call(client, *standin, "POST", "/api/enrollment/v1/enrollment", kEnrollBody, {}).status ==
        401);
  CHECK(Call(client, *standin, "POST", "/api/enrollment/v1/enrollment", kEnrollBody,
             {{"X-Edx-Api-Key", "nope"}})
            .status == 403);
  CHECK(standin->Stats().Effects("enrollment") == 0);
}

TEST_CASE("stand-in: bad bodies, unknown paths and methods", "[standin]") {
  auto standin = StartStandin();
  HttpClient client;
  CHECK(Call(client, *standin, "POST", "/api/enrollment/v1/enrollment", "{not json").status == 400);
  CHECK(Call(client, *standin, "POST", "/api/enrollment/v1/enrollment", R"({"user":"x"})").status ==
        400);
  CHECK(Call(client, *standin, "POST", "/api/entitlements/v1/entitlements/", R"({"user":"x"})")
            .status == 400);
  CHECK(Call(client, *standin, "GET", "/api/enrollment/v1/enrollment").status == 405);
  CHECK(Call(client, *standin, "GET", "/nowhere").status == 404);
  CHECK(Call(client, *standin, "POST", "/control/faults", R"({"explode": 1})").status == 400);
  CHECK(Call(client, *standin, "POST", "/control/faults", R"({"fail_next": -1})").status == 400);
}

TEST_CASE("stand-in: a key reused for another request is refused with 422", "[standin]") {
  auto standin = StartStandin();
  HttpClient client;
  std::vector<std::pair<std::string, std::string>> headers = {
      {"X-Edx-Api-Key", std::string(kApiKey)}, {"Idempotency-Key", "same"}};
  CHECK(Call(client, *standin, "POST", "/api/enrollment/v1/enrollment", kEnrollBody, headers)
            .status == 200);
  const HttpResponse replay =
      Call(client, *standin, "POST", "/api/enrollment/v1/enrollment", kEnrollBody, headers);
  CHECK(replay.status == 200);
  CHECK(replay.Header("Idempotent-Replayed") == "true");
  CHECK(Call(client, *standin, "POST", "/api/entitlements/v1/entitlements/",
             R"({"user":"bob","course_uuid":"u","mode":"verified"})", headers)
            .status == 422);
  CHECK(standin->Stats().EffectsForKey("same") == 1);
}

TEST_CASE("stand-in: control endpoints over HTTP", "[standin]") {
  auto standin = StartStandin();
  HttpClient client;
  const HttpResponse set =
      Call(client, *standin, "POST", "/control/faults", R"({"fail_next": 2, "status": 503})");
  CHECK(set.status == 200);
  CHECK_THAT(set.body, Catch::Contains(R"("fail_next":2)"));
  CHECK(Call(client, *standin, "POST", "/api/enrollment/v1/enrollment", kEnrollBody).status == 503);
  CHECK(Call(client, *standin, "POST", "/api/enrollment/v1/enrollment", kEnrollBody).status == 503);
  CHECK(Call(client, *standin, "POST", "/api/enrollment/v1/enrollment", kEnrollBody,
             {{"X-Edx-Api-Key", std::string(kApiKey)}, {"Idempotency-Key", "k"}})
            .status == 200);

  const HttpResponse stats = Call(client, *standin, "GET", "/control/stats");
  CHECK(stats.status == 200);
  CHECK_THAT(stats.body, Catch::Contains(R"("requests":3)"));
  CHECK_THAT(stats.body, Catch::Contains(R"("effects_by_kind":{"enrollment":1})"));
  CHECK_THAT(stats.body, Catch::Contains(R"("effects_by_key":{"k":1})"));
  const HttpResponse records = Call(client, *standin, "GET", "/control/records");
  CHECK_THAT(records.body, Catch::Contains(R"("user":"bob")"));

  CHECK(Call(client, *standin, "POST", "/control/reset").status == 200);
  CHECK(standin->Stats().requests == 0);
  CHECK(standin->Enrollments().empty());
  // After a reset the key is forgotten: the same call performs the effect again.
  CHECK(Call(client, *standin, "POST", "/api/enrollment/v1/enrollment", kEnrollBody,
             {{"X-Edx-Api-Key", std::string(kApiKey)}, {"Idempotency-Key", "k"}})
            .status == 200);
  CHECK(standin->Stats().Effects("enrollment") == 1);
}

TEST_CASE("stand-in: garbage on the wire costs a connection, never the server", "[standin]") {
  auto standin = StartStandin();
  CHECK_THAT(RawExchange(standin->port(), "GARBAGE\r\n\r\n"), Catch::StartsWith("HTTP/1.1 400"));
  RawExchange(standin->port(), std::string("\x00\x01\x02\xff\r\n\r\n", 8));
  RawExchange(standin->port(), "POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\nx");
  RawExchange(standin->port(), "GET / HTTP/1.1\r\nHost: x\r\n" + std::string(20'000, 'h'));
  RawExchange(standin->port(), "GET /control/stats HTTP/1.1\r\nHost");  // Cut, then closed.
  CHECK(standin->Stats().bad_requests >= 3);

  HttpClient client;
  CHECK(Call(client, *standin, "POST", "/api/enrollment/v1/enrollment", kEnrollBody).status == 200);
}

TEST_CASE("stand-in: stops cleanly with connections open and answers pending", "[standin]") {
  auto standin = StartStandin();
  HttpClient client;
  REQUIRE(client.Send(HttpRequest{.url = standin->url() + "/control/stats"}).has_value());
  standin->SetFaults({.delay_next = 1, .delay_ms = 60'000});
  std::thread caller([&] {
    HttpRequest request;
    request.url = standin->url() + "/api/enrollment/v1/enrollment";
    request.timeout_ms = 5'000;
    auto response = client.Send(request);
    CHECK_FALSE(response.has_value());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  standin->Stop();
  caller.join();
  standin->Stop();  // Idempotent.
  auto refused = client.Send(HttpRequest{.url = standin->url() + "/control/stats"});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == HttpError::Kind::kConnect);
}

}  // namespace
}  // namespace ledger::fulfillment
