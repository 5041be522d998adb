// Metrics: the Prometheus text format, and GET /metrics reflecting what the ledger did.
#include "server/metrics.h"

#include <catch2/catch.hpp>
#include <string>

#include "fulfillment/http_client.h"
#include "tests/server/api_fixture.h"

namespace ledger::server {
namespace {

TEST_CASE("PrometheusText writes HELP and TYPE once per family, escapes labels, sums buckets") {
  PrometheusText out;
  out.Counter("a_total", "A counter", 3, {{"route", "/v1/x"}});
  out.Counter("a_total", "A counter", 4, {{"route", "say \"hi\"\\\n"}});
  out.Gauge("b", "A gauge", 1.5);
  ledger::Histogram histogram({0.1, 1});
  histogram.Observe(0.05);
  histogram.Observe(0.5);
  histogram.Observe(7);
  out.Histogram("c_seconds", "A histogram", histogram.Read(), {{"route", "r"}});
  CHECK(out.text() ==
        "# HELP a_total A counter\n"
        "# TYPE a_total counter\n"
        "a_total{route=\"/v1/x\"} 3\n"
        "a_total{route=\"say \\\"hi\\\"\\\\\\n\"} 4\n"
        "# HELP b A gauge\n"
        "# TYPE b gauge\n"
        "b 1.5\n"
        "# HELP c_seconds A histogram\n"
        "# TYPE c_seconds histogram\n"
        "c_seconds_bucket{route=\"r\",le=\"0.1\"} 1\n"
        "c_seconds_bucket{route=\"r\",le=\"1\"} 2\n"
        "c_seconds_bucket{route=\"r\",le=\"+Inf\"} 3\n"
        "c_seconds_sum{route=\"r\"} 7.55\n"
        "c_seconds_count{route=\"r\"} 3\n");
}

std::string GetBody(uint16_t port, const std::string& path, int expected_status = 200) {
  fulfillment::HttpClient client;
  auto response = client.Send({.method = "GET",
                               .url = "http://127.0.0.1:" + std::to_string(port) + path,
                               .headers = {},
                               .body = {},
                               .connect_timeout_ms = 2'000,
                               .timeout_ms = 5'000});
  REQUIRE(response);
  CHECK(response->status == expected_status);
  return response->body;
}

TEST_CASE("HTTP metrics label the standard methods, and any other as 'other'") {
  // The method is whatever the client sends: labelled as such, each would be a series of its
  // own, without bound.
  HttpMetrics metrics;
  for (const char* method : {"GET", "FOO", "BAR", "B!Z", "HEAD"}) {
    HttpServerRequest request;
    request.method = method;
    metrics.Record(request, 405, 10);
  }
  PrometheusText out;
  metrics.Write(out);
  const std::string& text = out.text();
  INFO(text);
  CHECK(text.find("method=\"other\",code=\"405\"} 3\n") != std::string::npos);
  CHECK(text.find("method=\"GET\",code=\"405\"} 1\n") != std::string::npos);
  CHECK(text.find("method=\"HEAD\",code=\"405\"} 1\n") != std::string::npos);
  CHECK(text.find("FOO") == std::string::npos);
}

TEST_CASE("GET /metrics shows appends, group commits, projection lag and HTTP requests") {
  ApiFixture ledger;
  ledger.Pay(0, 7);
  GetBody(ledger.port(), "/v1/orders/EDX-1/events");
  GetBody(ledger.port(), "/v1/orders/EDX-2/events");
  GetBody(ledger.port(), "/v1/nothing-here", 404);
  const std::string text = GetBody(ledger.port(), "/metrics");
  auto has = [&text](const std::string& line) {
    INFO(line);
    CHECK(text.find(line) != std::string::npos);
  };
  has("ledger_store_head_position 7\n");
  has("ledger_store_appends_total 7\n");
  has("ledger_store_events_appended_total 7\n");
  has("# TYPE ledger_store_write_seconds histogram\n");
  has("ledger_store_group_commit_events_count 7\n");
  has("ledger_projection_checkpoint{projection=\"order_status\"}");
  has("ledger_projection_lag_events{projection=\"order_status\"}");
  has("ledger_http_requests_total{route=\"/v1/orders/{number}/"
      "events\",method=\"GET\",code=\"200\"} "
      "2\n");
  has("ledger_http_requests_total{route=\"unmatched\",method=\"GET\",code=\"404\"} 1\n");
  has("ledger_http_request_seconds_count{route=\"/v1/orders/{number}/events\"} 2\n");
  has("ledger_subscribe_streams 0\n");
}

}  // namespace
}  // namespace ledger::server
