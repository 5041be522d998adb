// ledgerctl's shared pieces: options, exit codes, output helpers and the command table.
//
// Each group of subcommands lives in its own file and lists itself in a table
// (ledgerctl_offline.cc: on a data directory; further files add theirs). A subcommand may have
// an offline form, run straight on a data directory no ledgerd holds open, and a remote form,
// run against a ledgerd over HTTP; `--url` picks the remote form.
//
// Exit codes: 0 success; 1 the ledger answered "no" (a broken chain, a projection that differs
// from the log, an unknown order, a revocation that ended in Revocation Error); 2 bad usage; 3
// the data could not be read or the server could not be reached, or what was given cannot answer
// the question (an export that does not reach a digest's position); remote commands: see
// RemoteFail for how HTTP statuses map. 4 (revoke only): recorded, but not carried out yet.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "base/result.h"
#include "base/text.h"
#include "eventstore/event_store.h"
#include "eventstore/state_store.h"

namespace ledger::ctl {

inline constexpr int kExitNo = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitData = 3;
// A request the ledger recorded but whose outcome is not known yet (a revocation still pending
// when ledgerd answered 202): neither success nor a "no", and worth asking about again later.
inline constexpr int kExitPending = 4;

struct Options {
  std::string data_dir = "data";
  // Non-empty: run against the ledgerd at this base URL ("http://127.0.0.1:8080").
  std::string url;
  // The bearer token sent to ledgerd (also read from LEDGER_TOKEN).
  std::string token;
  bool json = false;
  // The subcommand's own arguments (after its name).
  std::vector<std::string> arguments;
};

using CommandFn = int (*)(const Options& options, const std::vector<std::string>& args);

struct Command {
  std::string_view name;
  std::string_view synopsis;  // "status ORDER [--as-of P|TIME]"
  std::string_view summary;   // one line for --help
  CommandFn offline = nullptr;
  CommandFn remote = nullptr;
};

// The tables of each file; main merges entries of the same name.
std::vector<Command> OfflineCommands();
std::vector<Command> RemoteCommands();
std::vector<Command> AuditCommands();

// `verify` with --file or --digest is the audit check (ledgerctl_audit.cc): the offline verify
// hands such arguments to AuditVerify.
bool IsAuditVerify(const std::vector<std::string>& args);
int AuditVerify(const Options& options, const std::vector<std::string>& args);

// Prints "ledgerctl: <message>" on stderr and returns `code`.
int Fail(int code, const std::string& message);
int DataError(const eventstore::Error& error);

// `text` as a JSON string literal, quotes included.
std::string JsonString(std::string_view text);

// The system clock, in microseconds since the Unix epoch.
int64_t NowUs();

// Why `url` cannot be --url (only http://HOST[:PORT] with no query is), or nullopt.
std::optional<std::string> UrlProblem(std::string_view url);

// 0 when `order_number` can name an order; else prints why and returns kExitUsage (as the API
// answers 400, and before any data directory or server is touched).
int CheckOrderArgument(std::string_view order_number);

// A progress line on stderr, redrawn in place when stderr is a terminal, else printed about once
// a second.
class ProgressLine {
 public:
  explicit ProgressLine(std::string label);
  void Update(uint64_t done, uint64_t total);
  void Finish();

 private:
  std::string label_;
  std::chrono::steady_clock::time_point started_;
  bool terminal_;
  double last_printed_ = -1;
};

struct Ledger {
  std::unique_ptr<eventstore::EventStore> store;
  std::unique_ptr<eventstore::StateStore> state;
};

// Opens options.data_dir's log (and state store when `with_state`); on failure prints the error,
// sets exit_code and returns nullopt. Never creates a log: a directory without one is an error.
// A directory another process holds (ledgerd, another ledgerctl: the fcntl lock on DIR/log/LOCK
// or DIR/state/LOCK) is refused before RocksDB is called, so that its open does not rotate the
// running process's info log; a state directory that lost its CURRENT file is refused rather
// than opened as a new, empty one. Both are kExitData.
std::optional<Ledger> OpenLedger(const Options& options, bool with_state, int& exit_code);

// "49.00 USD"; minor units with the code for an unknown currency.
std::string FormatAmount(int64_t minor_units, std::string_view currency);

// A ledgerd's answer to a remote command.
struct RemoteAnswer {
  int status = 0;
  boost::json::value body;  // null when the body was not JSON
  std::string text;         // the body as received
};

// Sends a request to the ledgerd at options.url with options.token as the bearer token:
// `target` is the path and query ("/v1/orders/EDX-1"), `body` JSON or empty. On a transport
// failure (connection refused, timeout) prints it and returns kExitData as the error.
Result<RemoteAnswer, int> Remote(const Options& options, std::string_view method,
                                 std::string_view target, std::string_view body = {});

// For an answer that is not 2xx: prints "ledgerctl: <status> <code>: <message>" and returns the
// exit code: 1 for 404, 409 and 422 (the ledger says no); 2 for 400, 401 and 403 (the
// invocation is wrong: arguments or token); 3 for anything else (the server failed).
int RemoteFail(const RemoteAnswer& answer);

// Prints "ledgerctl: unexpected answer from the server: <what>" and returns kExitData: for a 2xx
// answer this ledgerctl cannot read (not JSON, a field missing or of another type), as another
// server, another version or a proxy in between may send.
int UnexpectedAnswer(const std::string& what);

// At most the first 120 bytes of `text` on one line, for messages about what a server sent.
std::string Excerpt(std::string_view text);

// `text` percent-encoded for a path segment or query value.
std::string UrlEncode(std::string_view text);

}  // namespace ledger::ctl
