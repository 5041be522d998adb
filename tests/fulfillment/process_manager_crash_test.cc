// Crash test of the process manager (issue 5, "Tests: Crash"): a child process runs the ledger
// (event store, state store, ProcessManager) and places orders of mixed lines until it is
// SIGKILLed, at least 20 times, at random moments. The LMS stand-in lives in this process, so its
// effect counts survive the kills.
//
// A third of the rounds kill the child between an external call and the append that records it:
// the stand-in is told to perform the next call's effect at once but answer only after a few
// hundred milliseconds, and the child is killed while it waits (the test checks that the log then
// lacks the LineFulfilled of a line the LMS already served). Another third make the LMS fail the
// next calls with retryable statuses, so failures and scheduled retries are in flight at the
// kill.
//
// The worker also asks to revoke line 1 of every other order (refunds), so kills land before,
// during and after revocation calls too.
//
// After the last kill a ProcessManager in this process (fast retries) runs until every placed
// order is Complete or Refunded with no revocation pending (a revocation that failed on an
// injected fault is asked for again). Every requested line is Revoked once, with exactly one
// effect per revoke Idempotency-Key. Then: every Seat line was enrolled exactly once and every
// entitlement line created exactly once (the stand-in's effect count per Idempotency-Key is 1, and
// there are no other keys); each line has exactly one LineFulfilled; an entitlement line records
// the uuid the stand-in created for it; enrollment code lines carry exactly `quantity` codes, equal
// to a fresh MintEnrollmentCodes (never a second batch); the hash chain verifies.

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "eventstore/state_store.h"
#include "fulfillment/module.h"
#include "fulfillment/modules.h"
#include "fulfillment/process_manager.h"
#include "process_manager_support.h"
#include "test_support.h"
#include "tests/eventstore/store_test_support.h"
#include "tests/support/child_process.h"
#include "tests/support/sample_orders.h"

namespace ledger::fulfillment {
namespace {

using namespace std::chrono_literals;
using eventstore::testing::Scaled;

struct WorkerArguments {
  std::string log_path;
  std::string state_path;
  std::string lms_url;
  uint64_t seed = 0;
  std::string prefix;
  int64_t lms_timeout_ms = 0;
};

// Starts the worker and waits until it says it is ready (the ledger is open, the manager runs).
pid_t StartWorker(const WorkerArguments& worker) {
  return ledger::testing::SpawnWhenReady(
      {LEDGER_PM_CRASH_WORKER, worker.log_path, worker.state_path, worker.lms_url,
       std::string(testing::kApiKey), std::to_string(worker.seed), worker.prefix,
       std::to_string(worker.lms_timeout_ms)});
}

// The Idempotency-Key of the LMS call that revokes a line, empty for lines revoked without I/O.
std::string LmsRevokeKeyFor(const std::string& order_number, const domain::Line& line) {
  if (line.product_type == "Seat")
    return IdempotencyKey(order_number, line.line_id, kOperationUnenroll);
  if (line.product_type == "Course Entitlement") {
    return IdempotencyKey(order_number, line.line_id, kOperationRevokeEntitlement);
  }
  return {};
}

// The Idempotency-Key of the one LMS call a line needs, empty for lines served without I/O.
std::string LmsKeyFor(const std::string& order_number, const domain::Line& line) {
  if (line.product_type == "Seat")
    return IdempotencyKey(order_number, line.line_id, kOperationEnroll);
  if (line.product_type == "Course Entitlement") {
    return IdempotencyKey(order_number, line.line_id, kOperationCreateEntitlement);
  }
  return {};
}

// What the log says about the orders: every placed order, how many LineFulfilled and
// FulfillmentFailed events each line has, and its revocation requests and LineRevoked events.
struct LogSummary {
  std::vector<domain::OrderCreated> orders;
  std::map<std::pair<std::string, std::string>, int> fulfilled;  // (order, line) -> events
  std::map<std::pair<std::string, std::string>, int> revoked;    // (order, line) -> events
  std::set<std::pair<std::string, std::string>> revocations_requested;
  uint64_t failures = 0;
};

LogSummary Summarize(eventstore::EventStore& store) {
  LogSummary summary;
  auto scanned =
      store.ScanAll(1, store.HeadPosition(), [&](const eventstore::RecordedEvent& record) {
        if (record.event_type == domain::FulfillmentFailed::kTypeName) ++summary.failures;
        if (record.event_type != domain::OrderCreated::kTypeName &&
            record.event_type != domain::LineFulfilled::kTypeName &&
            record.event_type != domain::LineRevoked::kTypeName &&
            record.event_type != domain::RevocationRequested::kTypeName) {
          return true;
        }
        auto event = eventstore::DecodeEvent(record);
        REQUIRE(event.has_value());
        if (auto* created = std::get_if<domain::OrderCreated>(&*event)) {
          summary.orders.push_back(std::move(*created));
        } else if (auto* fulfilled = std::get_if<domain::LineFulfilled>(&*event)) {
          ++summary.fulfilled[{fulfilled->order_number, fulfilled->line_id}];
        } else if (auto* revoked = std::get_if<domain::LineRevoked>(&*event)) {
          ++summary.revoked[{revoked->order_number, revoked->line_id}];
        } else if (auto* requested = std::get_if<domain::RevocationRequested>(&*event)) {
          summary.revocations_requested.insert({requested->order_number, requested->line_id});
        }
        return true;
      });
  REQUIRE(scanned.has_value());
  return summary;
}

// LMS calls whose effect the stand-in performed while the log has no LineFulfilled (or
// LineRevoked) for them: the window between the external call and the append that records it.
uint64_t EffectsNotRecorded(const LogSummary& summary, const server::LmsStandinStats& stats) {
  uint64_t calls = 0;
  for (const domain::OrderCreated& order : summary.orders) {
    for (const domain::Line& line : order.lines) {
      const std::pair<std::string, std::string> id{order.order_number, line.line_id};
      const std::string key = LmsKeyFor(order.order_number, line);
      if (!key.empty() && stats.EffectsForKey(key) > 0 && !summary.fulfilled.contains(id)) ++calls;
      const std::string revoke_key = LmsRevokeKeyFor(order.order_number, line);
      if (!revoke_key.empty() && stats.EffectsForKey(revoke_key) > 0 &&
          !summary.revoked.contains(id)) {
        ++calls;
      }
    }
  }
  return calls;
}

// Whether the order is done: every line fulfilled (Complete or Refunded) and no revocation
// still to carry out.
bool Finished(const domain::OrderState& state) {
  if (state.status != domain::OrderStatus::kComplete &&
      state.status != domain::OrderStatus::kRefunded) {
    return false;
  }
  return std::none_of(state.lines.begin(), state.lines.end(),
                      [](const domain::LineState& line) { return line.revocation_requested; });
}

struct LedgerStores {
  std::unique_ptr<eventstore::EventStore> store;
  std::unique_ptr<eventstore::StateStore> state;
};

LedgerStores OpenLedger(const eventstore::testing::TempDir& dir) {
  LedgerStores ledger;
  auto opened_store = eventstore::OpenRocksDbEventStore(dir.Child("log"));
  if (!opened_store) FAIL("opening the log: " << opened_store.error().ToString());
  ledger.store = std::move(*opened_store);
  auto opened_state = eventstore::OpenRocksDbStateStore(dir.Child("state"));
  if (!opened_state) FAIL("opening the state: " << opened_state.error().ToString());
  ledger.state = std::move(*opened_state);
  return ledger;
}

enum class RoundKind { kPlain, kDelayedAnswer, kFailures };

// Runs the manager until every placed order is Complete (or the deadline passes).
void FinishInProcess(LedgerStores& ledger, const server::LmsStandin& standin,
                     const LogSummary& summary) {
  ProcessManagerOptions options;
  options.idle_wait = 5ms;
  options.retry = {
      .first_delay_us = 20'000, .multiplier = 2, .retries_max = 11, .delay_max_us = 200'000};
  const Router router = testing::DefaultRouter(standin.url(), std::string(testing::kApiKey),
                                               static_cast<int64_t>(Scaled(2'000, 5'000)));
  auto opened = ProcessManager::Open(*ledger.store, *ledger.state, router, options);
  REQUIRE(opened.has_value());
  std::unique_ptr<ProcessManager> manager = std::move(*opened);
  manager->Start();
  eventstore::OrderCommandService service(*ledger.store);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(Scaled(30, 90));
  for (const domain::OrderCreated& order : summary.orders) {
    for (;;) {
      auto outcome = manager->WaitForOutcome(order.order_number, 1s);
      REQUIRE(outcome.has_value());
      // Settled is not enough: a failed line waiting for its automatic retry is settled.
      if (Finished(outcome->order.state)) break;
      if (std::chrono::steady_clock::now() > deadline) {
        for (const domain::LineState& line : outcome->order.state.lines) {
          UNSCOPED_INFO("line " << line.line.line_id << " attempts " << line.attempts << " error "
                                << line.last_error_message);
        }
        FAIL("order " << order.order_number << " never reached Complete");
      }
      std::this_thread::sleep_for(5ms);
    }
  }
  // A revocation that failed (a round's injected LMS failures may meet the call made again after
  // a kill) is asked for again, as ops would.
  for (const domain::OrderCreated& order : summary.orders) {
    auto loaded = service.Load(order.order_number);
    REQUIRE(loaded.has_value());
    for (const domain::LineState& line : loaded->state.lines) {
      if (line.status != domain::LineStatus::kRevocationError) continue;
      INFO("order " << order.order_number << " line " << line.line.line_id);
      auto again = manager->Revoke(order.order_number, line.line.line_id,
                                   "refund-" + order.order_number, "ops", 10s);
      REQUIRE(again.has_value());
      CHECK(again->order.state.FindLine(line.line.line_id)->status == domain::LineStatus::kRevoked);
    }
  }
  manager->Stop();
  CHECK_FALSE(manager->stats().failure.has_value());
}

void CheckEveryLineOnce(LedgerStores& ledger, const server::LmsStandin& standin) {
  const LogSummary summary = Summarize(*ledger.store);
  const server::LmsStandinStats stats = standin.Stats();
  std::map<std::pair<std::string, std::string>, std::string> entitlement_uuids;
  for (const server::LmsEntitlement& entitlement : standin.Entitlements()) {
    // The worker's course uuids are "uuid-<order>-<line index>": one per line.
    const auto [it, inserted] = entitlement_uuids.try_emplace(
        {entitlement.order_number, entitlement.course_uuid}, entitlement.uuid);
    CHECK(inserted);
  }
  eventstore::OrderCommandService service(*ledger.store);
  std::set<std::string> expected_keys;
  uint64_t seats = 0, entitlements = 0, code_lines = 0;
  uint64_t lines_revoked = 0, seats_revoked = 0, entitlements_revoked = 0;
  for (const domain::OrderCreated& order : summary.orders) {
    auto loaded = service.Load(order.order_number);
    REQUIRE(loaded.has_value());
    INFO("order " << order.order_number);
    CHECK(Finished(loaded->state));
    for (const domain::Line& line : order.lines) {
      INFO("line " << line.line_id << " (" << line.product_type << ")");
      const auto fulfilled = summary.fulfilled.find({order.order_number, line.line_id});
      CHECK((fulfilled == summary.fulfilled.end() ? 0 : fulfilled->second) == 1);
      const domain::LineState* state = loaded->state.FindLine(line.line_id);
      REQUIRE(state != nullptr);
      if (const std::string key = LmsKeyFor(order.order_number, line); !key.empty()) {
        CHECK(stats.EffectsForKey(key) == 1);
        expected_keys.insert(key);
      }
      // A refunded line: revoked once at most, and exactly once when the log says Revoked.
      const std::pair<std::string, std::string> id{order.order_number, line.line_id};
      const auto revoked_events = summary.revoked.find(id);
      const int revocations = revoked_events == summary.revoked.end() ? 0 : revoked_events->second;
      CHECK(revocations == (summary.revocations_requested.contains(id) ? 1 : 0));
      if (revocations == 1) {
        CHECK(summary.revocations_requested.contains(id));
        CHECK(state->status == domain::LineStatus::kRevoked);
        ++lines_revoked;
      }
      if (const std::string key = LmsRevokeKeyFor(order.order_number, line); !key.empty()) {
        CHECK(stats.EffectsForKey(key) == static_cast<uint64_t>(revocations));
        if (revocations == 1) {
          expected_keys.insert(key);
          ++(line.product_type == "Seat" ? seats_revoked : entitlements_revoked);
        }
      }
      if (line.product_type == "Seat") ++seats;
      if (line.product_type == "Course Entitlement") {
        ++entitlements;
        const std::string course_uuid = std::string(FindAttribute(line, "course_uuid"));
        auto created = entitlement_uuids.find({order.order_number, course_uuid});
        REQUIRE(created != entitlement_uuids.end());
        CHECK(state->external_reference == created->second);
      }
      if (line.product_type == "Enrollment Code") {
        ++code_lines;
        CHECK(state->codes.size() == static_cast<size_t>(line.quantity));
        CHECK(state->codes == MintEnrollmentCodes(ledger::testing::kTestCodeSecret,
                                                  order.order_number, line.line_id, line.quantity));
      }
    }
  }
  // No effect for anything but the placed lines, and one per line.
  CHECK(stats.Effects("enrollment") == seats);
  CHECK(stats.Effects("entitlement") == entitlements);
  CHECK(stats.Effects("unenrollment") == seats_revoked);
  CHECK(stats.Effects("entitlement_revocation") == entitlements_revoked);
  CHECK(lines_revoked > 0);
  CHECK(seats_revoked > 0);
  CHECK(stats.effects_by_key.size() == expected_keys.size());
  for (const auto& [key, effects] : stats.effects_by_key) {
    INFO("key " << key);
    CHECK(expected_keys.contains(key));
  }
  CHECK(entitlement_uuids.size() == entitlements);
  CHECK(seats > 0);
  CHECK(entitlements > 0);
  CHECK(code_lines > 0);

  auto verified = ledger.store->Verify(1, ledger.store->HeadPosition());
  REQUIRE(verified.has_value());
  INFO(verified->problem);
  CHECK(verified->ok);
  CHECK(verified->to_position == ledger.store->HeadPosition());
}

TEST_CASE("a ledger killed at random moments fulfills every line exactly once after restart",
          "[process_manager][crash]") {
  eventstore::testing::TempDir dir("pm-crash");
  auto standin = testing::StartStandin();
  std::mt19937_64 random(20261206);
  // Never fewer than 20 kills, sanitized or not; only the waits are scaled.
  constexpr int kRounds = 21;
  const int64_t delay_ms = static_cast<int64_t>(Scaled(400, 1'200));
  uint64_t windows_hit = 0;
  for (int round = 0; round < kRounds; ++round) {
    const auto kind = static_cast<RoundKind>(round % 3);
    INFO("round " << round);
    if (kind == RoundKind::kDelayedAnswer) {
      standin->SetFaults({.delay_next = 1, .delay_ms = delay_ms});
    } else if (kind == RoundKind::kFailures) {
      standin->SetFaults(
          {.fail_next = 3 + random() % 8, .fail_status = random() % 2 == 0 ? 500 : 503});
    }
    const pid_t child = StartWorker({.log_path = dir.Child("log"),
                                     .state_path = dir.Child("state"),
                                     .lms_url = standin->url(),
                                     .seed = random(),
                                     .prefix = "R" + std::to_string(round),
                                     .lms_timeout_ms = delay_ms * 5});
    if (kind == RoundKind::kDelayedAnswer) {
      // The delayed call has performed its effect once the stand-in took the fault; kill while
      // its answer is still on the way.
      const auto taken_by = std::chrono::steady_clock::now() + 20s;
      while (standin->Stats().faults.delay_next > 0) {
        REQUIRE(std::chrono::steady_clock::now() < taken_by);
        std::this_thread::sleep_for(1ms);
      }
      std::this_thread::sleep_for(
          std::chrono::milliseconds(random() % static_cast<uint64_t>(delay_ms / 2)));
    } else {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(Scaled(30, 120) + random() % Scaled(400, 800)));
    }
    REQUIRE(ledger::testing::KillAndReap(child));
    standin->SetFaults({});
    if (kind == RoundKind::kDelayedAnswer) {
      LedgerStores ledger = OpenLedger(dir);
      const uint64_t not_recorded = EffectsNotRecorded(Summarize(*ledger.store), standin->Stats());
      CHECK(not_recorded > 0);
      if (not_recorded > 0) ++windows_hit;
    }
  }

  LedgerStores ledger = OpenLedger(dir);
  const LogSummary summary = Summarize(*ledger.store);
  INFO(summary.orders.size() << " orders placed, " << summary.failures << " failures recorded");
  REQUIRE(summary.orders.size() > kRounds);
  CHECK(summary.failures > 0);
  CHECK(windows_hit == kRounds / 3);
  FinishInProcess(ledger, *standin, summary);
  CheckEveryLineOnce(ledger, *standin);
  // Each call whose record a kill prevented was made again after the restart, and answered
  // from the stand-in's memory of its Idempotency-Key.
  CHECK(standin->Stats().replays >= windows_hit);
}

}  // namespace
}  // namespace ledger::fulfillment
