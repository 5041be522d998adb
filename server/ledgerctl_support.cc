// ledgerctl's shared helpers (see ledgerctl.h).
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <system_error>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "domain/commands.h"
#include "domain/limits.h"
#include "domain/money.h"
#include "fulfillment/http_client.h"
#include "server/data_dir.h"
#include "server/ledgerctl.h"

namespace ledger::ctl {

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "ledgerctl: %s\n", message.c_str());
  return code;
}

int DataError(const eventstore::Error& error) { return Fail(kExitData, error.ToString()); }

std::optional<std::string> UrlProblem(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return fmt::format("'{}' is not a URL ({})", url, parsed.error().message());
  if (parsed->scheme() != "http") {
    return fmt::format("'{}': ledgerd speaks http:// (put a TLS proxy's plain side here)", url);
  }
  if (parsed->host_address().empty()) return fmt::format("'{}' names no host", url);
  if (parsed->has_query() || parsed->has_fragment() || parsed->has_userinfo()) {
    return fmt::format("'{}': give http://HOST[:PORT] and nothing after", url);
  }
  return std::nullopt;
}

int CheckOrderArgument(std::string_view order_number) {
  if (domain::IsValidOrderNumber(order_number)) return 0;
  return Fail(kExitUsage,
              fmt::format("'{}' is not an order number: 1 to {} characters of [A-Za-z0-9._-]",
                          order_number, domain::kOrderNumberBytesMax));
}

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

ProgressLine::ProgressLine(std::string label)
    : label_(std::move(label)),
      started_(std::chrono::steady_clock::now()),
      terminal_(::isatty(STDERR_FILENO) != 0) {}

void ProgressLine::Update(uint64_t done, uint64_t total) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  const double left = rate > 0 ? static_cast<double>(total - done) / rate : 0;
  const int percent = total > 0 ? static_cast<int>(100 * done / total) : 100;
  const std::string line = fmt::format("{}: {:>3}% {}/{} events, {:.0f} events/s, {:.1f} s left",
                                       label_, percent, done, total, rate, left);
  if (terminal_) {
    std::fprintf(stderr, "\r%s\033[K", line.c_str());
  } else if (done == total || seconds - last_printed_ >= 1.0) {
    std::fprintf(stderr, "%s\n", line.c_str());
    last_printed_ = seconds;
  }
}

void ProgressLine::Finish() {
  if (terminal_) std::fputc('\n', stderr);
}

namespace {

// The process that holds the RocksDB database at `db_path` open, or nullopt when none does (or
// it was never opened). RocksDB locks DB_PATH/LOCK with fcntl(F_SETLK) for as long as it is
// open; fcntl locks belong to processes, so F_GETLK here answers for every other process. This
// process holds no lock on the file to lose by closing it: the probe runs before ledgerctl opens
// anything.
std::optional<pid_t> LockHolder(const std::string& db_path) {
  const std::string lock_path = db_path + "/LOCK";
  const int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;  // No LOCK file: nobody has it open.
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  probe.l_start = 0;
  probe.l_len = 0;  // The whole file.
  const int result = ::fcntl(fd, F_GETLK, &probe);
  ::close(fd);
  // A probe that fails answers nothing; RocksDB's own open then reports whatever is wrong.
  if (result != 0 || probe.l_type == F_UNLCK) return std::nullopt;
  return probe.l_pid;
}

std::string InUse(const std::string& data_dir, const std::string& detail) {
  return fmt::format(
      "{} is in use by a running ledgerd (or another ledgerctl); stop it, or use --url ({})",
      data_dir, detail);
}

// Whether the RocksDB directory `path` has lost its CURRENT file: it holds a MANIFEST but no
// CURRENT. RocksDB would open it as a new, empty database (create_if_missing), which a later
// command would read as projections that were never built; ledgerctl leaves it as it is.
bool LostCurrentFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path + "/CURRENT", ec)) return false;
  for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
    if (entry.path().filename().string().starts_with("MANIFEST-")) return true;
  }
  return false;
}

}  // namespace

std::optional<Ledger> OpenLedger(const Options& options, bool with_state, int& exit_code) {
  // ledgerd creates a ledger, ledgerctl never does: a mistyped --data-dir must not become an
  // empty ledger that verifies, nor get a signing key of its own.
  const std::string log_path = server::LogPath(options.data_dir);
  const std::string state_path = server::StatePath(options.data_dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(log_path, ec)) {
    exit_code = Fail(kExitData, fmt::format("no ledger at {} ({} does not exist): check --data-dir",
                                            options.data_dir, log_path));
    return std::nullopt;
  }
  // Before RocksDB is called at all: its open rotates the info log (LOG to LOG.old.*) before it
  // takes the lock, which would take the running ledgerd's LOG away from it, and its refusal
  // ("While lock file: ...") does not say what to do.
  for (const std::string& path : {log_path, state_path}) {
    if (path == state_path && !with_state) continue;
    if (auto holder = LockHolder(path)) {
      exit_code =
          Fail(kExitData, InUse(options.data_dir, fmt::format("process {} holds {}/LOCK",
                                                              static_cast<long>(*holder), path)));
      return std::nullopt;
    }
  }
  if (with_state && LostCurrentFile(state_path)) {
    exit_code = Fail(
        kExitData,
        fmt::format("{} has lost its CURRENT file, so its projections cannot be read; nothing was "
                    "changed. Everything in it is derived from the log: move it aside, and "
                    "ledgerd's next start (or ledgerctl rebuild NAME) builds it again",
                    state_path));
    return std::nullopt;
  }
  eventstore::RocksDbOptions store_options;
  store_options.create_if_missing = false;
  Ledger ledger;
  auto store = eventstore::OpenRocksDbEventStore(log_path, store_options);
  if (!store) {
    // A ledgerd that started after the probe above: RocksDB's words, and ours.
    const std::string error = store.error().ToString();
    exit_code =
        Fail(kExitData,
             error.find("lock file") != std::string::npos ? InUse(options.data_dir, error) : error);
    return std::nullopt;
  }
  ledger.store = std::move(*store);
  if (with_state) {
    auto state = eventstore::OpenRocksDbStateStore(state_path);
    if (!state) {
      exit_code = DataError(state.error());
      return std::nullopt;
    }
    ledger.state = std::move(*state);
  }
  return ledger;
}

std::string FormatAmount(int64_t minor_units, std::string_view currency) {
  auto known = domain::FindCurrency(currency);
  if (!known) return fmt::format("{} (minor units) {}", minor_units, currency);
  return domain::FormatMinorUnits(minor_units, *known) + " " + std::string(currency);
}

Result<RemoteAnswer, int> Remote(const Options& options, std::string_view method,
                                 std::string_view target, std::string_view body) {
  static fulfillment::HttpClient client(
      fulfillment::HttpClientOptions{.response_bytes_max = 256ull << 20});
  std::vector<std::pair<std::string, std::string>> headers;
  if (!options.token.empty()) headers.emplace_back("Authorization", "Bearer " + options.token);
  if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
  auto response = client.Send({.method = std::string(method),
                               .url = options.url + std::string(target),
                               .headers = std::move(headers),
                               .body = std::string(body),
                               .connect_timeout_ms = 5'000,
                               .timeout_ms = 120'000});
  if (!response) {
    return Unexpected(Fail(kExitData, fmt::format("{} {}{}: {}", method, options.url, target,
                                                  response.error().message)));
  }
  RemoteAnswer answer{.status = response->status, .body = nullptr, .text = response->body};
  boost::system::error_code ec;
  boost::json::value parsed = boost::json::parse(answer.text, ec);
  if (!ec) answer.body = std::move(parsed);
  return answer;
}

int RemoteFail(const RemoteAnswer& answer) {
  std::string code = "error";
  // A body that is not our JSON error (a proxy's page, a refusal cut at a limit) is cut short.
  constexpr size_t kMessageBytesMax = 1024;
  std::string message = answer.text.substr(0, kMessageBytesMax);
  if (answer.text.size() > kMessageBytesMax) message += "...";
  if (const boost::json::object* object = answer.body.if_object()) {
    if (const boost::json::value* error = object->if_contains("error")) {
      if (const boost::json::object* fields = error->if_object()) {
        if (auto* c = fields->if_contains("code"); c != nullptr && c->is_string()) {
          code = std::string(c->as_string());
        }
        if (auto* m = fields->if_contains("message"); m != nullptr && m->is_string()) {
          message = std::string(m->as_string());
        }
      }
    }
  }
  const int exit_code =
      answer.status == 404 || answer.status == 409 || answer.status == 422   ? kExitNo
      : answer.status == 400 || answer.status == 401 || answer.status == 403 ? kExitUsage
                                                                             : kExitData;
  return Fail(exit_code, fmt::format("{} {}: {}", answer.status, code, message));
}

int UnexpectedAnswer(const std::string& what) {
  return Fail(kExitData, "unexpected answer from the server: " + what);
}

std::string Excerpt(std::string_view text) {
  constexpr size_t kExcerptBytesMax = 120;
  std::string out;
  for (const char c : text.substr(0, kExcerptBytesMax)) {
    out += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  }
  if (text.size() > kExcerptBytesMax) out += "...";
  return "'" + out + "'";
}

std::string UrlEncode(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned>(byte));
    }
  }
  return out;
}

}  // namespace ledger::ctl
