// ledgerd: the ledger's server process. main() wires the components explicitly: the event store
// and the state store of the data directory, every projection runner, the fulfillment process
// manager with the configured router, and the HTTP/JSON API (server/ledger_api.h). SIGTERM or
// SIGINT stops accepting, lets requests in flight finish, stops the process manager and the
// projections (each persists its checkpoint), and exits 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netinet/in.h>
#include <pthread.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "base/allocator.h"
#include "base/bytes.h"
#include "eventstore/digest.h"
#include "eventstore/event_store.h"
#include "eventstore/state_store.h"
#include "fulfillment/config.h"
#include "fulfillment/http_client.h"
#include "fulfillment/process_manager.h"
#include "projections/merkle_projection.h"
#include "projections/projection_runner.h"
#include "projections/registry.h"
#include "server/audit_api.h"
#include "server/auth.h"
#include "server/dashboard.h"
#include "server/data_dir.h"
#include "server/http_server.h"
#include "server/jetstream_publisher.h"
#include "server/ledger_api.h"
#include "server/lms_standin.h"

namespace {

constexpr std::string_view kUsage =
    R"(usage: ledgerd [--data-dir DIR] [--listen HOST:PORT] [--config FILE]
               [--lms-standin]

Serves the ledger's HTTP/JSON API on the ledger in DIR.

  --data-dir DIR        where the ledger keeps its log and state (default ./data; created)
  --listen HOST:PORT    where to listen (default 127.0.0.1:8080; port 0 picks a free one)
  --config FILE         a TOML file: [server] listen, data_dir, body_bytes_max,
                        header_bytes_max, connections_max, idle_timeout_ms, io_threads,
                        handler_threads; [fulfillment] (see fulfillment/config.h);
                        [[auth.tokens]] name, token or token_sha256, roles (see
                        server/auth.h; without tokens, a development token with every
                        role is kept in DIR/dev-token and printed); [jetstream] enabled,
                        urls, stream, subject_prefix, replicas, storage,
                        duplicate_window_s, max_in_flight, ack_timeout_ms,
                        reconnect_backoff_ms_min/_max (see server/jetstream_publisher.h;
                        off by default); [audit] signing_key_file (default
                        DIR/audit/signing.key, created mode 0600), digest_file (default
                        DIR/audit/digests.jsonl), digest_interval_s (default 3600; 0: no
                        periodic digests), wait_ms (see server/audit_api.h). Flags override
                        the file.
  --lms-standin         start an in-process LMS stand-in and point the LMS modules that have
                        no lms_url at it (for development)
  --help                print this help
)";

using namespace ledger;

struct Flags {
  std::optional<std::string> data_dir;
  std::optional<std::string> listen;
  std::string config_path;
  bool lms_standin = false;
};

struct ServerSettings {
  std::string data_dir = "data";
  std::string listen = "127.0.0.1:8080";
  server::HttpServerOptions http{};
  fulfillment::FulfillmentConfig fulfillment = fulfillment::DefaultFulfillmentConfig();
  server::JetStreamConfig jetstream{};
  std::vector<server::TokenGrant> tokens;
  // [audit]: empty paths mean the defaults inside the data directory.
  struct {
    std::string signing_key_file;
    std::string digest_file;
    int64_t digest_interval_s = 3600;
    int64_t wait_ms = 5'000;
  } audit;
};

// One setting of a [server] or [audit] table: a non-empty string, or an integer in [min, max].
struct SettingSpec {
  std::string_view key;
  bool is_string = false;
  int64_t min = 0;
  int64_t max = 0;
};

// Reads every key of `table` (named `name`) against `specs`, handing each value to `store` (a
// string's, or an integer's as its decimal text). An unknown key, a wrong type or an integer out
// of its range is an error naming the file, the key, its line and what is expected.
Result<void, std::string> ReadTable(
    const std::string& path, std::string_view name, const toml::table& table,
    std::span<const SettingSpec> specs,
    const std::function<void(std::string_view key, const toml::node& node)>& store) {
  for (const auto& [key, node] : table) {
    const auto where = [&] {
      return fmt::format("{}: {}.{} (line {})", path, name, std::string_view(key),
                         node.source().begin.line);
    };
    const auto spec = std::find_if(specs.begin(), specs.end(),
                                   [&](const SettingSpec& s) { return s.key == key.str(); });
    if (spec == specs.end()) {
      std::vector<std::string_view> known;
      for (const SettingSpec& s : specs) known.push_back(s.key);
      return Unexpected(
          fmt::format("{}: unknown key (known: {})", where(), fmt::join(known, ", ")));
    }
    if (spec->is_string) {
      if (!node.is_string() || node.as_string()->get().empty()) {
        return Unexpected(where() + ": must be a non-empty string");
      }
    } else {
      const toml::value<int64_t>* number = node.as_integer();
      if (number == nullptr) {
        return Unexpected(
            fmt::format("{}: must be an integer from {} to {}", where(), spec->min, spec->max));
      }
      if (number->get() < spec->min || number->get() > spec->max) {
        return Unexpected(fmt::format("{}: must be from {} to {}, not {}", where(), spec->min,
                                      spec->max, number->get()));
      }
    }
    store(key.str(), node);
  }
  return {};
}

// The document's table `name`: nullptr when the file has none, an error when it is there but not
// a table.
Result<const toml::table*, std::string> TopTable(const std::string& path,
                                                 const toml::table& document,
                                                 std::string_view name) {
  const toml::node* node = document.get(name);
  if (node == nullptr) return static_cast<const toml::table*>(nullptr);
  if (!node->is_table()) {
    return Unexpected(
        fmt::format("{}: {} (line {}): must be a table", path, name, node->source().begin.line));
  }
  return node->as_table();
}

// The [audit] table of the configuration; unknown keys are errors, as in [server].
Result<void, std::string> ReadAuditSettings(const std::string& path, const toml::table& table,
                                            ServerSettings& settings) {
  auto found = TopTable(path, table, "audit");
  if (!found) return Unexpected(std::move(found).error());
  const toml::table* audit = *found;
  if (audit == nullptr) return {};
  static constexpr SettingSpec kSpecs[] = {
      {.key = "signing_key_file", .is_string = true},
      {.key = "digest_file", .is_string = true},
      {.key = "digest_interval_s", .min = 0, .max = 31'622'400},  // Up to a leap year.
      {.key = "wait_ms", .min = 1, .max = 600'000},
  };
  return ReadTable(path, "audit", *audit, kSpecs,
                   [&](std::string_view key, const toml::node& node) {
                     if (key == "signing_key_file")
                       settings.audit.signing_key_file = node.as_string()->get();
                     if (key == "digest_file") settings.audit.digest_file = node.as_string()->get();
                     if (key == "digest_interval_s")
                       settings.audit.digest_interval_s = node.as_integer()->get();
                     if (key == "wait_ms") settings.audit.wait_ms = node.as_integer()->get();
                   });
}

// The [server] table: where to listen and keep data, and the HTTP server's limits (each
// positive and below a bound no sane deployment reaches).
Result<void, std::string> ReadServerSettings(const std::string& path, const toml::table& table,
                                             ServerSettings& settings) {
  auto found = TopTable(path, table, "server");
  if (!found) return Unexpected(std::move(found).error());
  const toml::table* server = *found;
  if (server == nullptr) return {};
  constexpr int64_t kLimitMax = int64_t{1} << 40;
  static constexpr SettingSpec kSpecs[] = {
      {.key = "listen", .is_string = true},
      {.key = "data_dir", .is_string = true},
      {.key = "body_bytes_max", .min = 1, .max = kLimitMax},
      {.key = "header_bytes_max", .min = 1, .max = 1 << 20},
      {.key = "connections_max", .min = 1, .max = kLimitMax},
      {.key = "idle_timeout_ms", .min = 1, .max = kLimitMax},
      {.key = "io_threads", .min = 1, .max = 256},
      {.key = "handler_threads", .min = 1, .max = 1024},
  };
  server::HttpServerOptions& http = settings.http;
  return ReadTable(path, "server", *server, kSpecs,
                   [&](std::string_view key, const toml::node& node) {
                     if (key == "listen") settings.listen = node.as_string()->get();
                     if (key == "data_dir") settings.data_dir = node.as_string()->get();
                     if (node.is_integer()) {
                       const int64_t number = node.as_integer()->get();
                       if (key == "body_bytes_max")
                         http.body_bytes_max = static_cast<uint64_t>(number);
                       if (key == "header_bytes_max")
                         http.header_bytes_max = static_cast<uint32_t>(number);
                       if (key == "connections_max")
                         http.connections_max = static_cast<size_t>(number);
                       if (key == "idle_timeout_ms") http.idle_timeout_ms = number;
                       if (key == "io_threads") http.io_threads = static_cast<size_t>(number);
                       if (key == "handler_threads")
                         http.handler_threads = static_cast<size_t>(number);
                     }
                   });
}

// Reads the configuration file: its [server] table here, its [fulfillment] table through
// ParseFulfillmentConfig. An error text for any problem.
Result<ServerSettings, std::string> ReadSettings(const std::string& path) {
  ServerSettings settings;
  if (path.empty()) return settings;
  std::error_code ignored;
  // A directory opens as a stream that reads nothing: it would pass for an empty file.
  if (std::filesystem::is_directory(path, ignored)) {
    return Unexpected("cannot read " + path + ": it is a directory");
  }
  std::ifstream file(path);
  if (!file) return Unexpected(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::stringstream text;
  text << file.rdbuf();
  if (file.bad()) return Unexpected(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  const std::string document = text.str();
  auto parsed = fulfillment::ParseFulfillmentConfig(document);
  if (!parsed) return Unexpected(path + ": " + parsed.error().message);
  settings.fulfillment = std::move(*parsed);
  auto jetstream = server::ParseJetStreamConfig(document);
  if (!jetstream) return Unexpected(path + ": " + jetstream.error());
  settings.jetstream = std::move(*jetstream);
  auto tokens = server::ParseAuthConfig(document);
  if (!tokens) return Unexpected(path + ": " + tokens.error());
  settings.tokens = std::move(*tokens);
  try {
    const toml::table table = toml::parse(document);
    for (const auto& [key, node] : table) {
      constexpr std::string_view kTables[] = {"server", "fulfillment", "auth", "jetstream",
                                              "audit"};
      if (std::find(std::begin(kTables), std::end(kTables), key.str()) == std::end(kTables)) {
        return Unexpected(fmt::format("{}: {} (line {}): unknown table (known: {})", path,
                                      key.str(), node.source().begin.line,
                                      fmt::join(kTables, ", ")));
      }
    }
    if (auto read = ReadServerSettings(path, table, settings); !read) {
      return Unexpected(std::move(read).error());
    }
    if (auto audit = ReadAuditSettings(path, table, settings); !audit) {
      return Unexpected(std::move(audit).error());
    }
  } catch (const toml::parse_error& error) {
    return Unexpected(path + ": " + std::string(error.description()));
  }
  return settings;
}

// "host:port" -> (host, port); nullopt when malformed.
// "IPv4:port" or "[IPv6]:port" -> (address, port); nullopt when malformed or when the host is
// not an IP address (the server binds an address; it resolves no names).
std::optional<std::pair<std::string, uint16_t>> SplitListen(std::string_view listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == listen.size()) {
    return std::nullopt;
  }
  unsigned port = 0;
  for (char c : listen.substr(colon + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<unsigned>(c - '0');
    if (port > 65535) return std::nullopt;
  }
  std::string_view host = listen.substr(0, colon);
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  unsigned char address[sizeof(in6_addr)];
  const std::string text(host);
  const bool valid = bracketed ? ::inet_pton(AF_INET6, text.c_str(), address) == 1
                               : ::inet_pton(AF_INET, text.c_str(), address) == 1;
  if (!valid) return std::nullopt;
  return std::make_pair(text, static_cast<uint16_t>(port));
}

// An address as a URL's host: an IPv6 address in brackets.
std::string UrlHost(const std::string& address) {
  return address.find(':') == std::string::npos ? address : "[" + address + "]";
}

// The key id of the last digest in the digest file at `path`, or nullopt when there is no file,
// no digest in it, or its last line names no key.
std::optional<std::string> LastDigestKeyId(const std::string& path) {
  std::ifstream file(path);
  std::string line, last;
  while (std::getline(file, line)) {
    if (!line.empty()) last = line;
  }
  if (last.empty()) return std::nullopt;
  boost::system::error_code ec;
  const boost::json::value digest = boost::json::parse(last, ec);
  if (ec || !digest.is_object()) return std::nullopt;
  const boost::json::value* key_id = digest.as_object().if_contains("key_id");
  if (key_id == nullptr || !key_id->is_string() || key_id->as_string().empty()) {
    return std::nullopt;
  }
  return std::string(key_id->as_string());
}

int Fail(const std::string& message, int code = 1) {
  std::fprintf(stderr, "ledgerd: %s\n", message.c_str());
  return code;
}

// What KeptSecret does with a file that holds no secret (empty, cut short, unreadable).
enum class DamagedSecret {
  kReplace,  // The development token: a new one is as good.
  kRefuse,   // The enrollment codes' key: a new one would change the codes of lines not yet
             // fulfilled, so only ops may decide that (by removing the file).
};

// A random secret kept in `path` (mode 0600): read when the file holds one, created when there
// is no file. For the development token and the key of the enrollment codes.
Result<std::string, std::string> KeptSecret(const std::filesystem::path& path,
                                            DamagedSecret damaged) {
  std::error_code status_error;
  const bool exists = std::filesystem::symlink_status(path, status_error).type() !=
                      std::filesystem::file_type::not_found;
  if (exists) {
    std::string token;
    if (std::ifstream existing(path); existing) std::getline(existing, token);
    if (token.size() >= server::kTokenBytesMin) return token;
    if (damaged == DamagedSecret::kRefuse) {
      return Unexpected(fmt::format(
          "{} holds no key ({} bytes on its first line, at least {} needed, or it cannot be "
          "read); it is left as it is. Restore it from a backup of this data directory, or remove "
          "it to make a new key (lines fulfilled from then on get codes of the new key)",
          path.string(), token.size(), server::kTokenBytesMin));
    }
  }
  const std::string token = server::NewToken();
  const std::string temporary = path.string() + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return Unexpected("cannot write " + temporary + ": " + std::strerror(errno));
  const std::string line = token + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!written || ::rename(temporary.c_str(), path.c_str()) != 0) {
    return Unexpected("cannot write " + path.string() + ": " + std::strerror(errno));
  }
  return token;
}

// With no [auth] tokens configured, a development token with every role, kept in
// <data-dir>/dev-token (mode 0600) so that it survives restarts.
Result<std::string, std::string> DevelopmentToken(const std::string& data_dir) {
  return KeptSecret(std::filesystem::path(data_dir) / "dev-token", DamagedSecret::kReplace);
}

int Run(const Flags& flags) {
  auto read = ReadSettings(flags.config_path);
  if (!read) return Fail(read.error(), 2);
  ServerSettings settings = std::move(*read);
  if (flags.data_dir) settings.data_dir = *flags.data_dir;
  if (flags.listen) settings.listen = *flags.listen;
  auto listen = SplitListen(settings.listen);
  if (!listen) {
    return Fail(fmt::format("{} wants IPv4:PORT or [IPv6]:PORT (an address, not a name), not '{}'",
                            flags.listen ? "--listen" : "server.listen", settings.listen),
                2);
  }

  // A digest file of the configuration's own that cannot be appended to would only show as a
  // line on stderr at each interval: found out now.
  if (settings.audit.digest_interval_s > 0 && !settings.audit.digest_file.empty()) {
    const std::string& path = settings.audit.digest_file;
    std::error_code ignored;
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      return Fail(
          fmt::format("audit.digest_file: cannot append to {}: {}", path, std::strerror(errno)), 2);
    }
    ::close(fd);
  }

  // Signals are taken by sigwait below; every thread started from here inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<server::LmsStandin> standin;
  if (flags.lms_standin) {
    auto started = server::LmsStandin::Start({.address = "127.0.0.1", .port = 0, .api_key = {}});
    if (!started) return Fail("LMS stand-in: " + started.error());
    standin = std::move(*started);
    for (fulfillment::ModuleConfig& module : settings.fulfillment.modules) {
      if (module.lms.lms_url.empty()) module.lms.lms_url = standin->url();
      if (module.lms.api_key.empty()) module.lms.api_key = "development-key";
    }
    fmt::print("LMS stand-in on {}\n", standin->url());
  }

  // The address first: a port another process holds is found out before the data directory is
  // made or opened. Connections wait in the backlog until Serve below.
  server::HttpMetrics http_metrics;
  server::HttpServerOptions http_options = settings.http;
  http_options.address = listen->first;
  http_options.port = listen->second;
  http_options.on_handled = [&http_metrics](const server::HttpServerRequest& request, int status,
                                            int64_t handler_us) {
    http_metrics.Record(request, status, handler_us);
  };
  auto http = server::HttpServer::Listen(std::move(http_options));
  if (!http) return Fail(http.error());

  std::error_code ignored;
  std::filesystem::create_directories(settings.data_dir, ignored);
  auto store = eventstore::OpenRocksDbEventStore(server::LogPath(settings.data_dir));
  if (!store) {
    // RocksDB's words for a log another process has open: "While lock file: .../LOCK".
    const std::string error = store.error().ToString();
    return Fail(
        "event store: " + error +
        (error.find("lock file") != std::string::npos
             ? " (another ledgerd, or an offline ledgerctl, is using " + settings.data_dir + ")"
             : ""));
  }
  auto state = eventstore::OpenRocksDbStateStore(server::StatePath(settings.data_dir));
  if (!state) return Fail("state store: " + state.error().ToString());

  std::vector<std::unique_ptr<projections::ProjectionRunner>> runners;
  std::vector<projections::ProjectionRunner*> runner_pointers;
  for (projections::ProjectionFactory& factory : projections::DefaultProjections()) {
    auto runner = projections::ProjectionRunner::Open(**store, **state, std::move(factory));
    if (!runner) return Fail("projection: " + runner.error().ToString());
    (*runner)->Start();
    runner_pointers.push_back(runner->get());
    runners.push_back(std::move(*runner));
  }
  // The Merkle tree of the audit endpoints: a projection of its own, not in the registry's
  // list (projections/merkle_projection.h).
  auto merkle =
      projections::ProjectionRunner::Open(**store, **state, projections::MerkleProjectionFactory());
  if (!merkle) return Fail("merkle projection: " + merkle.error().ToString());
  (*merkle)->Start();
  // Listed with the others for the API: GET /v1/projections, its rebuild, /healthz, /metrics.
  runner_pointers.push_back(merkle->get());
  const std::string signing_key_file =
      settings.audit.signing_key_file.empty()
          ? settings.data_dir + "/" + std::string(eventstore::kDefaultSigningKeyFile)
          : settings.audit.signing_key_file;
  const std::string digest_file =
      settings.audit.digest_file.empty()
          ? settings.data_dir + "/" + std::string(eventstore::kDefaultDigestFile)
          : settings.audit.digest_file;
  // A missing key with digests already signed: a new key would sign on under another key id,
  // and every auditor who pinned the old one would see the ledger's digests stop verifying.
  std::error_code ignored_error;
  const bool new_key = !std::filesystem::exists(signing_key_file, ignored_error);
  if (new_key) {
    if (auto signer = LastDigestKeyId(digest_file)) {
      return Fail(fmt::format(
          "audit: the signing key {} is missing, but {} holds digests signed with key {}. "
          "Restore that key file; to start signing with a new key instead, move {} aside first "
          "(auditors who pinned key {} must then be told the new one)",
          signing_key_file, digest_file, *signer, digest_file, *signer));
    }
  }
  auto signing_key = eventstore::SigningKey::LoadOrCreate(signing_key_file);
  if (!signing_key) return Fail("audit: " + signing_key.error());
  if (new_key && (*store)->HeadPosition() > 0) {
    // Not an error (a ledger from before audit digests has no key yet), but worth a line.
    std::fprintf(stderr,
                 "ledgerd: audit: created a new signing key %s (key id %s) for a log that already "
                 "holds %llu events; digests handed out under an earlier key will not verify "
                 "against it\n",
                 signing_key_file.c_str(),
                 ToHex(std::span<const uint8_t>(signing_key->key_id())).c_str(),
                 static_cast<unsigned long long>((*store)->HeadPosition()));
  }

  // The enrollment codes' key: without it, codes would follow from the order number alone.
  auto code_secret = KeptSecret(std::filesystem::path(settings.data_dir) / "enrollment-codes.key",
                                DamagedSecret::kRefuse);
  if (!code_secret) return Fail("enrollment codes: " + code_secret.error());
  settings.fulfillment.enrollment_code_secret = *code_secret;
  const fulfillment::FulfillmentConfig& config = settings.fulfillment;
  const auto partner_client = std::make_shared<fulfillment::HttpClient>();
  const fulfillment::Router router = fulfillment::BuildRouter(config, partner_client);
  fulfillment::ProcessManagerOptions manager_options;
  // At SIGTERM the LMS calls in flight are cut short, not waited for (timeout_ms may be long):
  // their lines are attempted again at the next start, with the same Idempotency-Key.
  manager_options.interrupt_calls = [partner_client] { partner_client->Shutdown(); };
  manager_options.workers = static_cast<size_t>(config.workers);
  manager_options.orders_per_run_max = static_cast<size_t>(config.orders_per_run_max);
  manager_options.retry = {.first_delay_us = config.retry.first_delay_ms * 1000,
                           .multiplier = config.retry.multiplier,
                           .retries_max = config.retry.retries_max,
                           .delay_max_us = config.retry.delay_ms_max * 1000};
  auto manager = fulfillment::ProcessManager::Open(**store, **state, router, manager_options);
  if (!manager) return Fail("process manager: " + manager.error().ToString());
  (*manager)->Start();

  // Publishes the log into NATS JetStream; waits and retries on its own thread while NATS is
  // unreachable, so the ledger serves either way.
  std::unique_ptr<server::JetStreamPublisher> publisher;
  if (settings.jetstream.enabled) {
    auto opened = server::JetStreamPublisher::Open(**store, **state, settings.jetstream);
    if (!opened) return Fail("JetStream publisher: " + opened.error().ToString());
    publisher = std::move(*opened);
    publisher->Start();
    fmt::print("publishing the log to JetStream stream {} at {}\n", settings.jetstream.stream,
               fmt::join(settings.jetstream.urls, ","));
  }

  std::string development_token;
  if (settings.tokens.empty()) {
    auto token = DevelopmentToken(settings.data_dir);
    if (!token) return Fail(token.error());
    development_token = *token;
    settings.tokens.push_back(server::GrantToken("development", *token, server::kAllRoles));
  }
  const server::Authenticator authenticator(settings.tokens);

  // GET /metrics: the API's own families, the HTTP server's and the publisher's.
  std::atomic<server::HttpServer*> http_server{nullptr};
  auto process_metrics = [&](server::PrometheusText& out) {
    if (server::HttpServer* running = http_server.load()) {
      out.Gauge("ledger_http_connections", "Open HTTP connections",
                static_cast<double>(running->connections_open()));
      out.Gauge("ledger_http_requests_in_flight", "Requests being handled or answered",
                static_cast<double>(running->requests_in_flight()));
    }
    if (publisher) {
      const server::JetStreamStats stats = publisher->Stats();
      out.Counter("ledger_jetstream_published_total", "Events JetStream acknowledged as stored",
                  static_cast<double>(stats.published));
      out.Gauge("ledger_jetstream_acknowledged_position",
                "Position up to which JetStream holds the log",
                static_cast<double>(stats.acknowledged_position));
      out.Gauge("ledger_jetstream_lag_events", "Committed events not yet acknowledged by JetStream",
                static_cast<double>(stats.lag));
      out.Gauge("ledger_jetstream_connected", "1 while connected to NATS",
                stats.connected ? 1.0 : 0.0);
      out.Counter("ledger_jetstream_retries_total", "Times the publisher had to start over",
                  static_cast<double>(stats.retries));
    }
  };
  server::LedgerApi api(
      **store, runner_pointers, manager->get(),
      {.fulfillment_sync_default = config.mode == fulfillment::FulfillmentMode::kSync,
       .sync_timeout_ms = config.sync_timeout_ms,
       .auth = &authenticator,
       .http_metrics = &http_metrics,
       .extra_metrics = process_metrics,
       .extra_health = [&publisher](boost::json::object& health) {
         if (!publisher) return;
         const server::JetStreamStats stats = publisher->Stats();
         health["jetstream"] =
             boost::json::object{{"connected", stats.connected},
                                 {"acknowledged_position", stats.acknowledged_position},
                                 {"lag", stats.lag},
                                 {"in_flight", stats.in_flight},
                                 {"retries", stats.retries},
                                 {"last_error", stats.last_error}};
       }});
  server::Router routes;
  api.Register(routes);
  server::AuditApi audit_api(**store, **merkle, *signing_key,
                             {.wait_ms = settings.audit.wait_ms, .auth = &authenticator});
  audit_api.Register(routes);
  std::unique_ptr<server::DigestWriter> digest_writer;
  if (settings.audit.digest_interval_s > 0) {
    digest_writer = std::make_unique<server::DigestWriter>(
        audit_api, digest_file, std::chrono::seconds(settings.audit.digest_interval_s));
    digest_writer->Start();
  }
  server::RegisterDashboard(routes);
  (*http)->Serve(std::move(routes));
  http_server.store(http->get());
  fmt::print("ledgerd: data in {} (head position {})\n", settings.data_dir,
             (*store)->HeadPosition());
  const std::string host = UrlHost(listen->first);
  fmt::print("listening on http://{}:{}\n", host, (*http)->port());
  fmt::print("dashboard: open http://{}:{}/ in a browser and sign in with a token\n", host,
             (*http)->port());
  if (!development_token.empty()) {
    fmt::print(
        "no [auth] tokens configured: development token (every role, kept in {}/dev-token):\n"
        "  {}\n",
        settings.data_dir, development_token);
    fmt::print("try: curl -H 'Authorization: Bearer {}' http://{}:{}/v1/orders\n",
               development_token, host, (*http)->port());
  } else {
    fmt::print("try: curl http://{}:{}/healthz\n", host, (*http)->port());
  }
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  fmt::print("ledgerd: {} received, finishing requests in flight\n",
             signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  // The manager first: requests waiting for an outcome (synchronous placement, revoke) then
  // answer with what the log says instead of waiting for calls that will not be recorded.
  (*manager)->Stop();
  (*http)->Stop();
  if (digest_writer) digest_writer->Stop();
  if (publisher) publisher->Stop();
  // Nothing appends any more: each projection applies what its live thread had not reached yet,
  // so that the next start (or an offline ledgerctl check) finds them at the head.
  auto finish = [](projections::ProjectionRunner& runner) {
    runner.Stop();
    if (auto caught_up = runner.CatchUp(); !caught_up) {
      std::fprintf(stderr, "ledgerd: projection %s stopped behind the log: %s\n",
                   runner.name().c_str(), caught_up.error().ToString().c_str());
    }
  };
  for (auto& runner : runners) finish(*runner);
  finish(**merkle);
  if (standin) standin->Stop();
  fmt::print("ledgerd: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ledger::TuneAllocator();
  Flags flags;
  std::vector<std::string_view> seen;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage.data(), stdout);
      return 0;
    }
    // A flag given twice: which one was meant?
    if (std::find(seen.begin(), seen.end(), arg) != seen.end()) {
      std::fprintf(stderr, "ledgerd: %s is given more than once\n", argv[i]);
      return 2;
    }
    if (arg.starts_with("--")) seen.push_back(arg);
    if (arg == "--data-dir" && has_value) {
      flags.data_dir = argv[++i];
      if (flags.data_dir->empty()) {
        std::fputs("ledgerd: --data-dir must not be empty\n", stderr);
        return 2;
      }
    } else if (arg == "--listen" && has_value) {
      flags.listen = argv[++i];
    } else if (arg == "--config" && has_value) {
      flags.config_path = argv[++i];
      if (flags.config_path.empty()) {
        std::fputs("ledgerd: --config must not be empty\n", stderr);
        return 2;
      }
    } else if (arg == "--lms-standin") {
      flags.lms_standin = true;
    } else {
      std::fprintf(stderr, "ledgerd: unknown or incomplete argument '%s'\n\n%s", argv[i],
                   kUsage.data());
      return 2;
    }
  }
  return Run(flags);
}
