// The dashboard's files as ledgerd serves them: through the real HttpServer on a loopback port,
// with their content types, the Content-Security-Policy, revalidation by ETag, and checks that
// keep the files honest (only this origin, no innerHTML, every referenced file embedded).
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <regex>
#include <string>

#include "fulfillment/http_client.h"
#include "server/dashboard.h"
#include "server/http_server.h"

namespace ledger::server {
namespace {

class DashboardServer {
 public:
  DashboardServer() {
    Router router;
    RegisterDashboard(router);
    // Another route under the root, as ledgerd has the API's beside the dashboard's.
    router.Add("GET", "/v1/ping", [](const HttpServerRequest&) {
      return HttpServerResponse{.status = 200, .body = "{}"};
    });
    auto started = HttpServer::Start({.address = "127.0.0.1", .port = 0}, std::move(router));
    REQUIRE(started);
    server_ = std::move(*started);
  }

  fulfillment::HttpResponse Get(const std::string& path, const std::string& if_none_match = "") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!if_none_match.empty()) headers.emplace_back("If-None-Match", if_none_match);
    auto response =
        client_.Send({.method = "GET",
                      .url = "http://127.0.0.1:" + std::to_string(server_->port()) + path,
                      .headers = std::move(headers),
                      .body = {},
                      .connect_timeout_ms = 2'000,
                      .timeout_ms = 5'000});
    REQUIRE(response);
    return std::move(*response);
  }

 private:
  std::unique_ptr<HttpServer> server_;
  fulfillment::HttpClient client_;
};

TEST_CASE("the dashboard is served at / with its content type, CSP and cache headers") {
  DashboardServer server;
  const fulfillment::HttpResponse page = server.Get("/");
  CHECK(page.status == 200);
  CHECK(page.Header("Content-Type") == "text/html; charset=utf-8");
  CHECK(page.Header("Content-Security-Policy") == kDashboardContentSecurityPolicy);
  CHECK(page.Header("X-Content-Type-Options") == "nosniff");
  CHECK(page.Header("Referrer-Policy") == "no-referrer");
  CHECK(page.Header("Cache-Control") == "no-cache");
  CHECK_FALSE(page.Header("ETag").empty());
  CHECK(page.body == FindDashboardAsset("index.html")->content);
  CHECK(page.body.find("<script src=\"/dashboard/app.js\"") != std::string::npos);

  CHECK(server.Get("/?next=orders").status == 200);
  CHECK(server.Get("/v1/ping").status == 200);  // The root route does not shadow others.

  const fulfillment::HttpResponse script = server.Get("/dashboard/app.js");
  CHECK(script.status == 200);
  CHECK(script.Header("Content-Type") == "text/javascript; charset=utf-8");
  CHECK(script.body == FindDashboardAsset("app.js")->content);
  CHECK(server.Get("/dashboard/style.css").Header("Content-Type") == "text/css; charset=utf-8");
  CHECK(server.Get("/dashboard/favicon.svg").Header("Content-Type") == "image/svg+xml");
}

TEST_CASE("a dashboard file is revalidated by its ETag") {
  DashboardServer server;
  const fulfillment::HttpResponse first = server.Get("/dashboard/app.js");
  const std::string etag(first.Header("ETag"));
  REQUIRE(etag.size() > 2);
  const fulfillment::HttpResponse again = server.Get("/dashboard/app.js", etag);
  CHECK(again.status == 304);
  CHECK(again.body.empty());
  CHECK(again.Header("ETag") == etag);
  CHECK(server.Get("/dashboard/app.js", "\"other\", W/" + etag).status == 304);
  CHECK(server.Get("/dashboard/app.js", "\"other\"").status == 200);
  // Another file has another tag.
  CHECK(server.Get("/dashboard/style.css", etag).status == 200);
}

TEST_CASE("an unknown dashboard file is 404 and nothing else is served") {
  DashboardServer server;
  const fulfillment::HttpResponse missing = server.Get("/dashboard/secret.txt");
  CHECK(missing.status == 404);
  CHECK(missing.body.find("\"not_found\"") != std::string::npos);
  CHECK(server.Get("/dashboard/..%2Fdashboard.h").status == 404);
  CHECK(server.Get("/dashboard/").status == 404);
  CHECK(server.Get("/index.html").status == 404);
}

TEST_CASE("the dashboard's files refer to this origin only and render no HTML from data") {
  const DashboardAsset* page = FindDashboardAsset("index.html");
  const DashboardAsset* script = FindDashboardAsset("app.js");
  REQUIRE(page != nullptr);
  REQUIRE(script != nullptr);
  // Every file the page loads is embedded.
  const std::string html(page->content);
  const std::regex reference(R"re((?:src|href)="/dashboard/([^"]+)")re");
  int references = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), reference);
       it != std::sregex_iterator(); ++it) {
    INFO((*it)[1].str());
    CHECK(FindDashboardAsset((*it)[1].str()) != nullptr);
    ++references;
  }
  CHECK(references >= 3);
  for (const DashboardAsset& asset : DashboardAssets()) {
    INFO(asset.name);
    CHECK_FALSE(asset.content.empty());
    // No remote sources (the SVG namespace is a name, not a fetch).
    std::string text(asset.content);
    const std::string svg_namespace = "http://www.w3.org/2000/svg";
    for (size_t at = text.find(svg_namespace); at != std::string::npos;
         at = text.find(svg_namespace)) {
      text.erase(at, svg_namespace.size());
    }
    CHECK(text.find("http://") == std::string::npos);
    CHECK(text.find("https://") == std::string::npos);
    CHECK(text.find("//cdn") == std::string::npos);
  }
  // Values reach the page as text nodes and attributes only; inline handlers and styles would be
  // refused by the CSP anyway.
  const std::string js(script->content);
  for (const char* forbidden : {".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write",
                                "eval(", "new Function"}) {
    INFO(forbidden);
    CHECK(js.find(forbidden) == std::string::npos);
  }
  CHECK(html.find(" style=") == std::string::npos);
  CHECK(html.find(" onclick=") == std::string::npos);
}

}  // namespace
}  // namespace ledger::server
