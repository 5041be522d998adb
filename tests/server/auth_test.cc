// Access control: the [auth] configuration, and Guard's 401/403 answers.
#include "server/auth.h"

#include <catch2/catch.hpp>
#include <string>

#include "base/bytes.h"

namespace ledger::server {
namespace {

HttpServerRequest Request(std::string method,
                          std::vector<std::pair<std::string, std::string>> headers,
                          std::map<std::string, std::string, std::less<>> query = {}) {
  HttpServerRequest request;
  request.method = std::move(method);
  request.headers = std::move(headers);
  request.query = std::move(query);
  return request;
}

HttpHandler Ok() {
  return [](const HttpServerRequest&) { return HttpServerResponse{.status = 200, .body = "ok"}; };
}

constexpr std::string_view kShopToken = "shop-token-0123456789";
constexpr std::string_view kOpsToken = "ops-token-0123456789abc";

TEST_CASE("Guard answers 401 without a valid token, 403 without the role, and calls through") {
  const Authenticator auth({GrantToken("shop", kShopToken, Role::kWriter | Role::kReader),
                            GrantToken("ops", kOpsToken, static_cast<Roles>(Role::kOps))});
  const HttpHandler writers = auth.Guard(static_cast<Roles>(Role::kWriter), Ok());

  const HttpServerResponse none = writers(Request("POST", {}));
  CHECK(none.status == 401);
  CHECK(none.body.find("\"unauthenticated\"") != std::string::npos);
  REQUIRE(none.headers.size() == 1);
  CHECK(none.headers[0].first == "WWW-Authenticate");

  CHECK(writers(Request("POST", {{"authorization", "Bearer not-a-token-at-all"}})).status == 401);
  CHECK(writers(Request("POST", {{"authorization", "Basic c2hvcDpzaG9w"}})).status == 401);
  CHECK(writers(Request("POST", {{"authorization", "Bearer"}})).status == 401);

  const HttpServerResponse wrong_role =
      writers(Request("POST", {{"authorization", "Bearer " + std::string(kOpsToken)}}));
  CHECK(wrong_role.status == 403);
  CHECK(wrong_role.body.find("\"forbidden\"") != std::string::npos);
  CHECK(wrong_role.body.find("writer") != std::string::npos);

  // The scheme is case-insensitive and spaces around the token do not matter.
  CHECK(writers(Request("POST", {{"authorization", "bearer  " + std::string(kShopToken) + " "}}))
            .status == 200);
}

TEST_CASE(
    "access_token in the query works for GET (and HEAD) only (EventSource cannot set headers)") {
  const Authenticator auth({GrantToken("shop", kShopToken, kAllRoles)});
  const HttpHandler guarded = auth.Guard(kAllRoles, Ok());
  CHECK(guarded(Request("GET", {}, {{"access_token", std::string(kShopToken)}})).status == 200);
  CHECK(guarded(Request("POST", {}, {{"access_token", std::string(kShopToken)}})).status == 401);
  CHECK(guarded(Request("HEAD", {}, {{"access_token", std::string(kShopToken)}})).status == 200);
  CHECK(guarded(Request("GET", {}, {{"access_token", "wrong-token-0123456789"}})).status == 401);
}

TEST_CASE("ParseAuthConfig reads tokens in clear or as SHA-256 digests with roles") {
  const std::string digest = ToHex(std::span<const uint8_t>(Sha256Digest(kOpsToken)));
  auto grants = ParseAuthConfig(R"(
[[auth.tokens]]
name = "shop"
token = "shop-token-0123456789"
roles = ["writer", "reader"]

[[auth.tokens]]
name = "ops"
token_sha256 = ")" + digest + R"("
roles = ["ops", "auditor"]
)");
  REQUIRE(grants);
  REQUIRE(grants->size() == 2);
  CHECK((*grants)[0].name == "shop");
  CHECK((*grants)[0].roles == (Role::kWriter | Role::kReader));
  CHECK((*grants)[1].roles == (Role::kOps | Role::kAuditor));
  const Authenticator auth(std::move(*grants));
  auto grant =
      auth.Authenticate(Request("GET", {{"authorization", "Bearer " + std::string(kOpsToken)}}));
  REQUIRE(grant);
  CHECK(grant->name == "ops");

  auto none = ParseAuthConfig("[server]\nlisten = \"127.0.0.1:1\"\n");
  REQUIRE(none);
  CHECK(none->empty());
}

TEST_CASE("ParseAuthConfig refuses malformed entries with a message naming them") {
  struct Case {
    const char* document;
    const char* expected;
  };
  const Case cases[] = {
      {"[auth]\nkey = 1\n", "auth.key (line 2): unknown key"},
      {"[auth]\ntokens = 3\n", "auth.tokens (line 2): must be an array of tables"},
      {"auth = 3\n", "auth (line 1): must be a table"},
      {"[[auth.tokens]]\nname = \"a\"\ntoken = \"short\"\nroles = [\"reader\"]\n",
       "auth.tokens[0].token (line 3): shorter"},
      {"[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nroles = [\"root\"]\n",
       "roles"},
      {"[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nroles = []\n", "role"},
      {"[[auth.tokens]]\ntoken = \"0123456789abcdef0\"\nroles = [\"ops\"]\n", "name"},
      {"[[auth.tokens]]\nname = \"a\"\nroles = [\"ops\"]\n", "needs token"},
      {"[[auth.tokens]]\nname = \"a\"\ntoken_sha256 = \"abc\"\nroles = [\"ops\"]\n", "64 hex"},
      {"[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nroles = [\"ops\"]\n"
       "[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef1\"\nroles = [\"ops\"]\n",
       "auth.tokens[1] (line 5): the name 'a' is taken"},
      {"[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nroles = [\"ops\"]\n"
       "[[auth.tokens]]\nname = \"b\"\ntoken = \"0123456789abcdef0\"\nroles = [\"ops\"]\n",
       "twice"},
      {"[[auth.tokens]]\nname = \"a\"\ntoken = \"0123456789abcdef0\"\nroles = [\"ops\"]\nx = 1\n",
       "unknown key"},
      {"[auth\n", ""},
  };
  for (const Case& c : cases) {
    INFO(c.document);
    auto parsed = ParseAuthConfig(c.document);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().find(c.expected) != std::string::npos);
  }
}

TEST_CASE("NewToken gives 64 hex digits, different each time") {
  const std::string a = NewToken();
  const std::string b = NewToken();
  CHECK(a.size() == 64);
  CHECK(FromHex(a).has_value());
  CHECK(a != b);
}

}  // namespace
}  // namespace ledger::server
