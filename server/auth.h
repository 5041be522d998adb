// Access control for ledgerd's API: bearer tokens from the configuration, each with roles.
//
//   writer   records payments and places orders
//   reader   reads orders, lists, payments, revenue, projections, events, subscriptions
//   ops      what a reader may, plus manual retries, revokes and projection rebuilds
//   auditor  read-only: events, subscriptions, orders and the audit endpoints
//
// A request names its token in "Authorization: Bearer <token>". GET requests may instead carry
// it as the query parameter access_token, because a browser's EventSource cannot set headers.
// No token, or one that is not configured: 401 unauthenticated (with WWW-Authenticate); a token
// without a role the endpoint accepts: 403 forbidden, naming the roles that would do.
//
// Tokens are kept as SHA-256 digests only: a presented token is hashed and looked up, so the
// time taken does not depend on how much of a secret it matches. The configuration may give a
// token in clear ("token") or as its digest ("token_sha256", hex) so that no secret sits in the
// file.
//
// Thread safety: immutable after construction; Guard's handlers may run concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/sha256.h"
#include "server/http_server.h"

namespace ledger::server {

enum class Role : uint8_t { kWriter = 1, kReader = 2, kOps = 4, kAuditor = 8 };

// A set of roles, as bits of Role.
using Roles = uint8_t;
inline constexpr Roles kAllRoles = 0x0f;
constexpr Roles operator|(Role a, Role b) {
  return static_cast<Roles>(static_cast<Roles>(a) | static_cast<Roles>(b));
}
constexpr Roles operator|(Roles a, Role b) { return static_cast<Roles>(a | static_cast<Roles>(b)); }

std::optional<Role> ParseRole(std::string_view name);  // "writer", "reader", "ops", "auditor"
// "writer, ops" (in the order of the enum).
std::string RoleNames(Roles roles);

struct TokenGrant {
  std::string name;  // Who holds it, for logs and errors ("shop", "dev").
  Hash256 token_sha256{};
  Roles roles = 0;
};

// A grant for a token given in clear.
TokenGrant GrantToken(std::string name, std::string_view token, Roles roles);

// The [auth] table of ledgerd's TOML configuration, e.g.
//
//   [[auth.tokens]]
//   name = "shop"
//   token_sha256 = "9f86d0..."      # or: token = "..."
//   roles = ["writer"]
//
// An error text naming the entry for anything malformed (unknown keys, roles, short tokens,
// duplicate names or tokens).
Result<std::vector<TokenGrant>, std::string> ParseAuthConfig(std::string_view toml_document);

// Tokens shorter than this are refused in the configuration: guessable.
inline constexpr size_t kTokenBytesMin = 16;

// A fresh random token: 32 bytes from the system's CSPRNG, as 64 hex digits.
std::string NewToken();

class Authenticator {
 public:
  explicit Authenticator(std::vector<TokenGrant> grants);

  // The grant of the request's token; nullopt when it carries none or an unknown one.
  std::optional<TokenGrant> Authenticate(const HttpServerRequest& request) const;

  // `handler`, answering 401/403 instead unless the request's token has one of `allowed`.
  HttpHandler Guard(Roles allowed, HttpHandler handler) const;

  size_t size() const { return grants_.size(); }

 private:
  std::vector<TokenGrant> grants_;
};

}  // namespace ledger::server
