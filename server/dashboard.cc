#include "server/dashboard.h"

#include <string>

namespace ledger::server {
namespace {

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Whether an If-None-Match header names `etag` ("*", or a list of tags, weak or strong).
bool MatchesEtag(std::string_view header, std::string_view etag) {
  if (header == "*") return true;
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view tag = header.substr(0, comma);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

void AddSecurityHeaders(HttpServerResponse& response) {
  response.headers.emplace_back("Content-Security-Policy",
                                std::string(kDashboardContentSecurityPolicy));
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
  response.headers.emplace_back("X-Frame-Options", "DENY");
}

}  // namespace

const DashboardAsset* FindDashboardAsset(std::string_view name) {
  for (const DashboardAsset& asset : DashboardAssets()) {
    if (asset.name == name) return &asset;
  }
  return nullptr;
}

std::string_view DashboardContentType(std::string_view name) {
  if (EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (EndsWith(name, ".svg")) return "image/svg+xml";
  if (EndsWith(name, ".png")) return "image/png";
  return "application/octet-stream";
}

HttpServerResponse ServeDashboardAsset(const HttpServerRequest& request, std::string_view name) {
  const DashboardAsset* asset = FindDashboardAsset(name);
  if (asset == nullptr) {
    HttpServerResponse missing =
        ErrorResponse(404, "not_found", "no dashboard file " + std::string(name));
    AddSecurityHeaders(missing);
    return missing;
  }
  // A strong validator: the content's digest, shortened (64 bits tell versions apart).
  const std::string etag = "\"" + std::string(asset->sha256.substr(0, 16)) + "\"";
  HttpServerResponse response;
  response.content_type = std::string(DashboardContentType(asset->name));
  if (auto if_none_match = request.Header("If-None-Match");
      if_none_match && MatchesEtag(*if_none_match, etag)) {
    response.status = 304;
  } else {
    response.status = 200;
    response.body = std::string(asset->content);
  }
  response.headers.emplace_back("ETag", etag);
  // Revalidate every time: the files change with the binary, and a 304 costs one round trip.
  response.headers.emplace_back("Cache-Control", "no-cache");
  AddSecurityHeaders(response);
  return response;
}

void RegisterDashboard(Router& router) {
  router.Add("GET", "/", [](const HttpServerRequest& request) {
    return ServeDashboardAsset(request, "index.html");
  });
  router.Add("GET", "/dashboard/{file}", [](const HttpServerRequest& request) {
    return ServeDashboardAsset(request, request.PathParam("file"));
  });
}

}  // namespace ledger::server
