// ledgerctl's offline subcommands: straight on a data directory that no ledgerd holds open
// (RocksDB allows one process at a time).
#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "domain/money.h"
#include "domain/status.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "eventstore/state_store.h"
#include "projections/history.h"
#include "projections/merkle_projection.h"
#include "projections/projection_runner.h"
#include "projections/registry.h"
#include "server/api_json.h"
#include "server/ledgerctl.h"

namespace ledger::ctl {
namespace {

using eventstore::EventStore;
using eventstore::StateStore;

// The projections ledgerd runs: the registry's, and the Merkle tree of the audit endpoints, which
// ledgerd opens on its own (server/ledgerd_main.cc) and lists with the others.
std::vector<projections::ProjectionFactory> AllProjections() {
  std::vector<projections::ProjectionFactory> factories = projections::DefaultProjections();
  factories.push_back(projections::MerkleProjectionFactory());
  return factories;
}

projections::ProjectionFactory FindAnyProjection(std::string_view name) {
  for (projections::ProjectionFactory& factory : AllProjections()) {
    if (factory()->name() == name) return factory;
  }
  return {};
}

std::string ProjectionNames() {
  std::vector<std::string> names;
  for (projections::ProjectionFactory& factory : AllProjections()) {
    names.emplace_back(factory()->name());
  }
  return fmt::format("{}", fmt::join(names, ", "));
}

int Verify(const Options& options, const std::vector<std::string>& args) {
  if (IsAuditVerify(args)) return AuditVerify(options, args);
  uint64_t from = 1, to = UINT64_MAX;
  for (size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "--from" || args[i] == "--to") && i + 1 < args.size()) {
      // Positions start at 1, as export takes them.
      const std::optional<uint64_t> parsed = ParseDecimal(args[i + 1]);
      if (!parsed || *parsed == 0) {
        return Fail(kExitUsage, fmt::format("verify: {} needs a position (from 1)", args[i]));
      }
      (args[i] == "--from" ? from : to) = *parsed;
      ++i;
    } else {
      return Fail(kExitUsage, fmt::format("verify: unknown argument '{}'", args[i]));
    }
  }
  if (to < from) return Fail(kExitUsage, "verify: --to before --from");
  int exit_code = 0;
  auto ledger = OpenLedger(options, false, exit_code);
  if (!ledger) return exit_code;
  // As export: one past the head is nothing new since the last run (0 events); further is a
  // mistake, not "ok" over nothing.
  const uint64_t head = ledger->store->HeadPosition();
  if (from > head + 1) {
    return Fail(kExitNo, fmt::format("verify: --from {} is past the log's head ({})", from, head));
  }
  ProgressLine progress("verify");
  auto report = ledger->store->Verify(
      from, to, [&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!report) return DataError(report.error());
  if (options.json) {
    std::printf(
        "{\"ok\":%s,\"from\":%llu,\"to\":%llu,\"events_checked\":%llu,"
        "\"first_bad_position\":%llu,\"problem\":%s,\"last_hash\":\"%s\"}\n",
        report->ok ? "true" : "false", static_cast<unsigned long long>(report->from_position),
        static_cast<unsigned long long>(report->to_position),
        static_cast<unsigned long long>(report->events_checked),
        static_cast<unsigned long long>(report->first_bad_position),
        JsonString(report->problem).c_str(),
        ToHex(std::span<const uint8_t>(report->last_hash)).c_str());
  } else if (report->ok && report->events_checked == 0) {
    fmt::print("ok: no events from position {} on (the log's head is {})\n", from, head);
  } else if (report->ok) {
    fmt::print("ok: positions {}..{} ({} events) verify; chain head hash {}\n",
               report->from_position, report->to_position, report->events_checked,
               ToHex(std::span<const uint8_t>(report->last_hash)));
  } else {
    fmt::print("BROKEN at position {}: {}\n", report->first_bad_position, report->problem);
  }
  return report->ok ? 0 : kExitNo;
}

int ListProjections(const Options& options, const std::vector<std::string>& args) {
  if (!args.empty()) return Fail(kExitUsage, "projections takes no arguments");
  int exit_code = 0;
  auto ledger = OpenLedger(options, true, exit_code);
  if (!ledger) return exit_code;
  std::vector<std::string> json_rows;
  if (!options.json)
    fmt::print("{:<14} {:>10} {:>12} {:>10}\n", "NAME", "GENERATION", "CHECKPOINT", "LAG");
  for (auto& factory : AllProjections()) {
    auto runner = projections::ProjectionRunner::Open(*ledger->store, *ledger->state, factory);
    if (!runner) return DataError(runner.error());
    const auto& r = **runner;
    if (options.json) {
      json_rows.push_back(
          fmt::format("{{\"name\":{},\"generation\":{},\"checkpoint\":{},\"lag\":{}}}",
                      JsonString(r.name()), r.generation(), r.checkpoint(), r.lag()));
    } else {
      fmt::print("{:<14} {:>10} {:>12} {:>10}\n", r.name(), r.generation(), r.checkpoint(),
                 r.lag());
    }
  }
  if (options.json) fmt::print("[{}]\n", fmt::join(json_rows, ","));
  return 0;
}

int Rebuild(const Options& options, const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail(kExitUsage, "rebuild takes one projection name");
  auto factory = FindAnyProjection(args[0]);
  if (!factory) {
    return Fail(kExitUsage, fmt::format("no projection is named '{}' (there are {})", args[0],
                                        ProjectionNames()));
  }
  int exit_code = 0;
  auto ledger = OpenLedger(options, true, exit_code);
  if (!ledger) return exit_code;
  auto runner = projections::ProjectionRunner::Open(*ledger->store, *ledger->state, factory);
  if (!runner) return DataError(runner.error());
  ProgressLine progress("rebuild " + args[0]);
  const auto started = std::chrono::steady_clock::now();
  auto rebuilt =
      (*runner)->RebuildNow([&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!rebuilt) return DataError(rebuilt.error());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const uint64_t events = (*runner)->checkpoint();
  if (options.json) {
    fmt::print("{{\"projection\":{},\"generation\":{},\"events\":{},\"seconds\":{:.3f}}}\n",
               JsonString(args[0]), (*runner)->generation(), events, seconds);
  } else {
    fmt::print("rebuilt {} (generation {}) over {} events in {:.2f} s ({:.0f} events/s)\n", args[0],
               (*runner)->generation(), events, seconds,
               seconds > 0 ? static_cast<double>(events) / seconds : 0);
  }
  return 0;
}

// Compares the order status projection, as ledgerd left it, with a fresh fold of the log up to
// the projection's checkpoint. A checkpoint behind the log's head is a "no" (exit 1) of its own:
// the events after it were not checked. By default nothing is written, so that what is reported
// is what ledgerd left (a projection that stopped, or a state directory that was lost, shows as
// lag); --catch-up first applies the missing events, as ledgerd's next start would.
int Check(const Options& options, const std::vector<std::string>& args) {
  bool catch_up = false;
  for (const std::string& arg : args) {
    if (arg != "--catch-up") return Fail(kExitUsage, "usage: check [--catch-up]");
    catch_up = true;
  }
  int exit_code = 0;
  auto ledger = OpenLedger(options, true, exit_code);
  if (!ledger) return exit_code;
  auto runner = projections::ProjectionRunner::Open(*ledger->store, *ledger->state,
                                                    projections::FindProjection("order_status"));
  if (!runner) return DataError(runner.error());
  if (catch_up) {
    const uint64_t before = (*runner)->checkpoint();
    ProgressLine progress("catch up order_status");
    auto caught_up =
        (*runner)->CatchUp([&](uint64_t done, uint64_t total) { progress.Update(done, total); });
    progress.Finish();
    if (!caught_up) return DataError(caught_up.error());
    std::fprintf(stderr, "ledgerctl: caught order_status up from position %llu to %llu\n",
                 static_cast<unsigned long long>(before),
                 static_cast<unsigned long long>((*runner)->checkpoint()));
  }
  auto report = projections::CheckOrderStatus(*ledger->store, (*runner)->View());
  if (!report) return DataError(report.error());
  // The head after the check: an offline log does not move, so this is the head it ran against.
  const uint64_t head = ledger->store->HeadPosition();
  const uint64_t lag = head > report->position ? head - report->position : 0;
  const bool ok = report->ok() && lag == 0;
  if (options.json) {
    std::vector<std::string> differences;
    for (const auto& difference : report->differences)
      differences.push_back(JsonString(difference));
    fmt::print(
        "{{\"ok\":{},\"position\":{},\"head\":{},\"lag\":{},\"orders_checked\":{},"
        "\"differences\":[{}]}}\n",
        ok, report->position, head, lag, report->orders_checked, fmt::join(differences, ","));
    return ok ? 0 : kExitNo;
  }
  const std::string verdict = !report->ok()
                                  ? fmt::format("{} differences", report->differences.size())
                              : lag == 0 ? std::string("the projection equals the log")
                                         : std::string("the projection equals the log up to there");
  fmt::print("checked {} orders at position {}: {}\n", report->orders_checked, report->position,
             verdict);
  for (const auto& difference : report->differences) fmt::print("  {}\n", difference);
  if (lag != 0) {
    fmt::print(
        "BEHIND: the projection is at position {}, the log's head is {}: {} events not checked{}. "
        "ledgerd catches it up when it starts; or run check --catch-up\n",
        report->position, head, lag,
        report->position == 0 ? " (the projection was never built, or its state was lost)" : "");
  }
  return ok ? 0 : kExitNo;
}

int Status(const Options& options, const std::vector<std::string>& args) {
  if (args.empty()) return Fail(kExitUsage, "status needs an order number");
  std::optional<std::string> as_of;
  if (args.size() == 3 && args[1] == "--as-of") {
    as_of = args[2];
  } else if (args.size() != 1) {
    return Fail(kExitUsage, "usage: status ORDER [--as-of POSITION|TIME]");
  }
  if (int invalid = CheckOrderArgument(args[0]); invalid != 0) return invalid;
  int exit_code = 0;
  auto ledger = OpenLedger(options, false, exit_code);
  if (!ledger) return exit_code;
  uint64_t position = UINT64_MAX;
  if (as_of) {
    if (auto parsed = ParseDecimal(*as_of)) {
      // As the API does: a position the log has not reached has no fixed answer yet.
      if (const uint64_t head = ledger->store->HeadPosition(); *parsed > head) {
        return Fail(kExitUsage,
                    fmt::format("--as-of {} is past the log's head ({})", *parsed, head));
      }
      position = *parsed;
    } else if (auto time = ParseRfc3339(*as_of)) {
      if (*time > NowUs())
        return Fail(kExitUsage, fmt::format("--as-of {} is in the future", *as_of));
      auto found = projections::PositionAtTime(*ledger->store, *time);
      if (!found) return DataError(found.error());
      position = *found;
    } else {
      return Fail(kExitUsage, "--as-of takes a position or an RFC 3339 time");
    }
  }
  auto loaded = projections::OrderAsOf(*ledger->store, args[0], position);
  if (!loaded) return DataError(loaded.error());
  if (!loaded->stream_version) return Fail(kExitNo, fmt::format("no order {}", args[0]));
  const domain::OrderState& state = loaded->state;
  if (options.json) {
    // The server's answer to GET /v1/orders/{number}?as_of=: one schema for scripts, online or
    // offline.
    boost::json::object answer = server::OrderJson(state, loaded->position);
    answer["stream_version"] = *loaded->stream_version;
    answer["as_of_position"] = position;
    fmt::print("{}\n", boost::json::serialize(answer));
    return 0;
  }
  fmt::print("order {}: {} (as of position {}, stream version {})\n", args[0],
             state.placed() ? domain::OrderStatusName(state.status) : "captured, not placed",
             loaded->position, *loaded->stream_version);
  if (state.placement) {
    fmt::print("  user {} ({}), total {}, captured {}, refunded {}\n",
               state.placement->user.username, state.placement->user.id,
               FormatAmount(state.amounts.total_minor, state.placement->currency),
               FormatAmount(state.amounts.captured_minor, state.placement->currency),
               FormatAmount(state.amounts.refunded_minor, state.placement->currency));
  }
  // As the remote status: ATTEMPTS counts fulfillment attempts, a revocation's failures have a
  // column of their own, and NEXT RETRY is the next automatic fulfillment or revocation.
  fmt::print("  {:<8} {:<20} {:<34} {:>8}  {:>18}  {:<27}  {}\n", "LINE", "PRODUCT", "STATUS",
             "ATTEMPTS", "FAILED REVOCATIONS", "NEXT RETRY", "LAST ERROR");
  for (const auto& line : state.lines) {
    std::string status(domain::LineStatusName(line.status));
    if (line.revocation_requested) status += ", revoking";
    // A Complete or Revoked line's last failure is history, not its state.
    const bool failing = domain::IsFulfillmentError(line.status) ||
                         line.status == domain::LineStatus::kRevocationError;
    // "kind: message", as the remote status prints it.
    std::string error;
    if (line.last_error_kind) {
      error = fmt::format("{}: {}", domain::FailureKindName(*line.last_error_kind),
                          line.last_error_message);
      if (!failing) error = "(earlier) " + error;
    }
    const std::string next_retry =
        line.next_retry_at_us <= 0 ? "" : FormatRfc3339(line.next_retry_at_us);
    fmt::print("  {:<8} {:<20} {:<34} {:>8}  {:>18}  {:<27}  {}\n", line.line.line_id,
               line.line.product_type, status, line.attempts, line.revocation_failures, next_retry,
               error);
  }
  return 0;
}

int Events(const Options& options, const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail(kExitUsage, "events takes one order number");
  if (int invalid = CheckOrderArgument(args[0]); invalid != 0) return invalid;
  int exit_code = 0;
  auto ledger = OpenLedger(options, false, exit_code);
  if (!ledger) return exit_code;
  auto events =
      ledger->store->ReadStream(domain::OrderStreamName(args[0]), eventstore::Direction::kForward,
                                0, EventStore::kReadCountMax);
  if (!events) return DataError(events.error());
  if (events->empty()) return Fail(kExitNo, fmt::format("no order {}", args[0]));
  std::vector<std::string> json_rows;
  for (const auto& record : *events) {
    const std::string hash = ToHex(std::span<const uint8_t>(record.hash));
    if (options.json) {
      json_rows.push_back(fmt::format(
          "{{\"position\":{},\"version\":{},\"type\":{},\"recorded_at\":{},\"actor\":{},"
          "\"hash\":\"{}\"}}",
          record.position, record.version, JsonString(record.event_type),
          JsonString(FormatRfc3339(record.recorded_at_us)), JsonString(record.actor), hash));
    } else {
      fmt::print("{:>10} {:>4}  {}  {:<26} {:<16} {}\n", record.position, record.version,
                 FormatRfc3339(record.recorded_at_us), record.event_type, record.actor,
                 hash.substr(0, 16));
    }
  }
  if (options.json) fmt::print("[{}]\n", fmt::join(json_rows, ","));
  return 0;
}

}  // namespace

std::vector<Command> OfflineCommands() {
  return {
      {"verify", "verify [--from P] [--to P]",
       "walk the hash chain, with progress; names the first bad position. --file EXPORT "
       "[--digest D] [--public-key K]: check an export, no data directory needed (exit 3 when "
       "it does not hold the digest's position: it cannot answer); --digest D alone: the ledger "
       "against a signed digest",
       &Verify, nullptr},
      {"projections", "projections", "each projection's generation, checkpoint and lag",
       &ListProjections, nullptr},
      {"rebuild", "rebuild NAME", "rebuild a projection from position 1, with progress", &Rebuild,
       nullptr},
      {"check", "check [--catch-up]",
       "compare the order status projection with a fresh fold of the log; a projection behind "
       "the log's head is a no (--catch-up: apply the missing events first)",
       &Check, nullptr},
      {"status", "status ORDER [--as-of P|TIME]",
       "an order's status (TIME in RFC 3339, e.g. 2026-11-22T10:00:00Z)", &Status, nullptr},
      {"events", "events ORDER", "an order's history, every event with its position and hash",
       &Events, nullptr},
  };
}

}  // namespace ledger::ctl
