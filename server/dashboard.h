// The dashboard: the HTML, CSS and JavaScript of server/dashboard/, embedded into the binary at
// build time (server/dashboard/embed.cmake) and served by ledgerd.
//
//   GET /                   index.html
//   GET /dashboard/{file}   the other files (app.js, style.css, favicon.svg)
//
// The routes are open: the files hold no data. The page asks for a token and sends it with each
// API call (README.md, "Dashboard"). Every answer carries a Content-Security-Policy that allows
// only this origin (no inline script or style, no remote source, no framing), nosniff, no
// referrer, and Cache-Control: no-cache with an ETag from the file's SHA-256, so a browser
// revalidates each time and gets 304 Not Modified while the binary is the same.
//
// Thread safety: the assets are constants; the handlers may run concurrently.
#pragma once

#include <span>
#include <string_view>

#include "server/http_server.h"

namespace ledger::server {

struct DashboardAsset {
  std::string_view name;    // "app.js"
  std::string_view sha256;  // Hex digest of `content`.
  std::string_view content;
};

// Every embedded file (defined in the generated dashboard_assets.cc).
std::span<const DashboardAsset> DashboardAssets();

// The asset called `name`, nullptr when there is none.
const DashboardAsset* FindDashboardAsset(std::string_view name);

// "text/html; charset=utf-8" and so on, from the name's extension.
std::string_view DashboardContentType(std::string_view name);

// The Content-Security-Policy every dashboard answer carries.
inline constexpr std::string_view kDashboardContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// The answer to GET for the asset `name` (404 not_found when unknown; 304 when the request's
// If-None-Match names its ETag).
HttpServerResponse ServeDashboardAsset(const HttpServerRequest& request, std::string_view name);

// Adds the routes above to `router`.
void RegisterDashboard(Router& router);

}  // namespace ledger::server
