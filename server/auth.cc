#include "server/auth.h"

#include <sys/random.h>

#include <toml++/toml.h>
#include <boost/beast/core/string.hpp>
#include <cerrno>
#include <set>
#include <stdexcept>

#include "base/bytes.h"

namespace ledger::server {
namespace {

constexpr std::string_view kRoleNames[] = {"writer", "reader", "ops", "auditor"};

std::optional<std::string_view> BearerToken(const HttpServerRequest& request) {
  if (auto header = request.Header("authorization")) {
    std::string_view value = *header;
    constexpr std::string_view kScheme = "bearer ";
    if (value.size() <= kScheme.size() ||
        !boost::beast::iequals(value.substr(0, kScheme.size()), kScheme)) {
      return std::nullopt;
    }
    value.remove_prefix(kScheme.size());
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    return value;
  }
  // HEAD is GET without the body: the same token.
  if (request.method == "GET" || request.method == "HEAD") return request.Query("access_token");
  return std::nullopt;
}

}  // namespace

std::optional<Role> ParseRole(std::string_view name) {
  for (size_t i = 0; i < std::size(kRoleNames); ++i) {
    if (name == kRoleNames[i]) return static_cast<Role>(1u << i);
  }
  return std::nullopt;
}

std::string RoleNames(Roles roles) {
  std::string names;
  for (size_t i = 0; i < std::size(kRoleNames); ++i) {
    if ((roles & (1u << i)) == 0) continue;
    if (!names.empty()) names += ", ";
    names += kRoleNames[i];
  }
  return names;
}

TokenGrant GrantToken(std::string name, std::string_view token, Roles roles) {
  return {.name = std::move(name), .token_sha256 = Sha256Digest(token), .roles = roles};
}

std::string NewToken() {
  std::array<uint8_t, 32> bytes{};
  size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t got = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed");
    }
    filled += static_cast<size_t>(got);
  }
  return ToHex(std::span<const uint8_t>(bytes));
}

Result<std::vector<TokenGrant>, std::string> ParseAuthConfig(std::string_view toml_document) {
  toml::table document;
  try {
    document = toml::parse(toml_document);
  } catch (const toml::parse_error& error) {
    return Unexpected(std::string(error.description()));
  }
  std::vector<TokenGrant> grants;
  // " (line N)", as the other tables' messages say where.
  const auto line = [](const toml::node& node) {
    return " (line " + std::to_string(node.source().begin.line) + ")";
  };
  const toml::node* auth_node = document.get("auth");
  if (auth_node == nullptr) return grants;
  const toml::table* auth = auth_node->as_table();
  if (auth == nullptr) return Unexpected("auth" + line(*auth_node) + ": must be a table");
  for (const auto& [key, node] : *auth) {
    if (key != "tokens") {
      return Unexpected("auth." + std::string(key.str()) + line(node) +
                        ": unknown key (known: tokens)");
    }
  }
  const toml::array* tokens = (*auth)["tokens"].as_array();
  if (tokens == nullptr) {
    const toml::node* given = auth->get("tokens");
    return Unexpected("auth.tokens" + line(given != nullptr ? *given : *auth_node) +
                      ": must be an array of tables ([[auth.tokens]])");
  }
  std::set<std::string> names;
  std::set<Hash256> digests;
  for (size_t i = 0; i < tokens->size(); ++i) {
    const std::string where = "auth.tokens[" + std::to_string(i) + "]" + line((*tokens)[i]);
    const toml::table* entry = (*tokens)[i].as_table();
    if (entry == nullptr) return Unexpected(where + ": must be a table");
    TokenGrant grant;
    bool has_token = false;
    for (const auto& [key, node] : *entry) {
      const std::string_view name = key.str();
      // A key's problem names the key's own line.
      const std::string key_where =
          "auth.tokens[" + std::to_string(i) + "]." + std::string(name) + line(node);
      if (name == "name" && node.is_string()) {
        grant.name = node.as_string()->get();
      } else if (name == "token" && node.is_string()) {
        const std::string& token = node.as_string()->get();
        if (token.size() < kTokenBytesMin) {
          return Unexpected(key_where + ": shorter than " + std::to_string(kTokenBytesMin) +
                            " characters (guessable)");
        }
        if (has_token) return Unexpected(where + ": give token or token_sha256, not both");
        grant.token_sha256 = Sha256Digest(token);
        has_token = true;
      } else if (name == "token_sha256" && node.is_string()) {
        auto bytes = FromHex(node.as_string()->get());
        if (!bytes || bytes->size() != grant.token_sha256.size()) {
          return Unexpected(key_where + ": not 64 hex digits");
        }
        if (has_token) return Unexpected(where + ": give token or token_sha256, not both");
        std::copy(bytes->begin(), bytes->end(), grant.token_sha256.begin());
        has_token = true;
      } else if (name == "roles" && node.is_array()) {
        for (const toml::node& role_node : *node.as_array()) {
          const std::optional<std::string> role_name = role_node.value<std::string>();
          const std::optional<Role> role = role_name ? ParseRole(*role_name) : std::nullopt;
          if (!role) {
            return Unexpected(key_where +
                              ": each role is one of \"writer\", \"reader\", \"ops\", "
                              "\"auditor\"");
          }
          grant.roles = grant.roles | *role;
        }
      } else {
        return Unexpected(key_where +
                          ": unknown key or wrong type (known: name, token or token_sha256: "
                          "strings; roles: array of strings)");
      }
    }
    if (grant.name.empty()) return Unexpected(where + ": needs a name");
    if (!has_token) return Unexpected(where + ": needs token or token_sha256");
    if (grant.roles == 0) return Unexpected(where + ": needs at least one role");
    if (!names.insert(grant.name).second) {
      return Unexpected(where + ": the name '" + grant.name + "' is taken");
    }
    if (!digests.insert(grant.token_sha256).second) {
      return Unexpected(where + ": the same token is configured twice");
    }
    grants.push_back(std::move(grant));
  }
  return grants;
}

Authenticator::Authenticator(std::vector<TokenGrant> grants) : grants_(std::move(grants)) {}

std::optional<TokenGrant> Authenticator::Authenticate(const HttpServerRequest& request) const {
  const std::optional<std::string_view> token = BearerToken(request);
  if (!token || token->empty()) return std::nullopt;
  const Hash256 digest = Sha256Digest(*token);
  for (const TokenGrant& grant : grants_) {
    if (grant.token_sha256 == digest) return grant;
  }
  return std::nullopt;
}

HttpHandler Authenticator::Guard(Roles allowed, HttpHandler handler) const {
  return [this, allowed, handler = std::move(handler)](const HttpServerRequest& request) {
    const std::optional<TokenGrant> grant = Authenticate(request);
    if (!grant) {
      HttpServerResponse response = ErrorResponse(
          401, "unauthenticated",
          BearerToken(request) ? "the bearer token is not valid"
                               : "this endpoint needs a bearer token (Authorization: Bearer ...)");
      response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"ledger\"");
      return response;
    }
    if ((grant->roles & allowed) == 0) {
      return ErrorResponse(403, "forbidden",
                           "the token '" + grant->name + "' has the roles [" +
                               RoleNames(grant->roles) + "]; this endpoint needs one of [" +
                               RoleNames(allowed) + "]");
    }
    return handler(request);
  };
}

}  // namespace ledger::server
