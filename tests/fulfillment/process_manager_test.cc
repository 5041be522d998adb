// The process manager against the real store and the LMS stand-in: orders reach Complete with
// one effect per line; failures are recorded with their reasons and retried with backoff on a
// controllable clock; timeouts and dropped connections never cause a second effect; manual retry
// touches only failed lines; revocation happens once; pending retries survive a restart.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "base/bytes.h"
#include "process_manager_support.h"
#include "test_support.h"

namespace ledger::fulfillment {
namespace {

using namespace std::chrono_literals;
using testing::Entitlement;
using testing::EventCounts;
using testing::Local;
using testing::Seat;

constexpr int64_t kT0 = 1'790'000'000'000'000;

struct Ledger {
  explicit Ledger(ProcessManagerOptions pm_options = {}, int64_t lms_timeout_ms = 2'000)
      : standin(testing::StartStandin()),
        router(
            testing::DefaultRouter(standin->url(), std::string(testing::kApiKey), lms_timeout_ms)),
        options(std::move(pm_options)) {
    auto opened_store = eventstore::OpenRocksDbEventStore(dir.Child("log"));
    REQUIRE(opened_store.has_value());
    store = std::move(*opened_store);
    auto opened_state = eventstore::OpenRocksDbStateStore(dir.Child("state"));
    REQUIRE(opened_state.has_value());
    state = std::move(*opened_state);
    service = std::make_unique<eventstore::OrderCommandService>(*store);
    OpenManager();
  }
  ~Ledger() { manager.reset(); }

  void OpenManager() {
    auto opened = ProcessManager::Open(*store, *state, router, options);
    REQUIRE(opened.has_value());
    manager = std::move(*opened);
  }

  ProcessManager::Outcome Settle(const std::string& order_number) {
    auto outcome = manager->WaitForOutcome(order_number, 20s);
    REQUIRE(outcome.has_value());
    REQUIRE(outcome->settled);
    return std::move(*outcome);
  }

  eventstore::testing::TempDir dir{"process-manager"};
  std::unique_ptr<server::LmsStandin> standin;
  Router router;
  ProcessManagerOptions options;
  std::unique_ptr<eventstore::EventStore> store;
  std::unique_ptr<eventstore::StateStore> state;
  std::unique_ptr<eventstore::OrderCommandService> service;
  std::unique_ptr<ProcessManager> manager;
};

// Options whose clock is `now` (moved by the test), with a short idle wait so that the
// dispatcher notices a due retry soon after the clock moves.
ProcessManagerOptions OnClock(std::atomic<int64_t>& now) {
  ProcessManagerOptions options;
  options.clock_us = [&now] { return now.load(); };
  options.idle_wait = 5ms;
  return options;
}

// Polls `condition` until it holds or 20 s pass.
template <typename Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return condition();
}

TEST_CASE("placed orders reach Complete with exactly one effect per line", "[process_manager]") {
  Ledger ledger;
  ledger.manager->Start();
  constexpr int kOrders = 12;
  for (int i = 0; i < kOrders; ++i) {
    testing::PlaceOrder(
        *ledger.service, "EDX-1000" + std::to_string(i),
        {Seat("1", "course-v1:edX+A+" + std::to_string(i)),
         Entitlement("2", "uuid-" + std::to_string(i)), Local("3", "Enrollment Code", 3),
         Local("4", "Coupon"), Local("5", "Donation")},
        kT0);
  }
  for (int i = 0; i < kOrders; ++i) {
    const auto outcome = ledger.Settle("EDX-1000" + std::to_string(i));
    CHECK(outcome.order.state.status == domain::OrderStatus::kComplete);
    const auto* codes = outcome.order.state.FindLine("3");
    REQUIRE(codes != nullptr);
    CHECK(codes->codes.size() == 3);
    CHECK_FALSE(outcome.order.state.FindLine("2")->external_reference.empty());
  }
  const auto stats = ledger.standin->Stats();
  CHECK(stats.Effects("enrollment") == kOrders);
  CHECK(stats.Effects("entitlement") == kOrders);
  for (const auto& [key, effects] : stats.effects_by_key) CHECK(effects == 1);
  // Once it has seen its own outcomes, the checkpoint reaches the head, and Stop keeps it.
  const uint64_t head = ledger.store->HeadPosition();
  CHECK(Eventually([&] { return ledger.manager->stats().checkpoint == head; }));
  ledger.manager->Stop();
  CHECK(ledger.manager->stats().checkpoint == head);
}

TEST_CASE("a backlog is fulfilled several orders per run and store call, each line once",
          "[process_manager]") {
  Ledger ledger(ProcessManagerOptions{.workers = 2, .orders_per_run_max = 16});
  // Placed before the manager starts, so that it finds them all queued at once.
  constexpr int kOrders = 60;
  auto number = [](int i) { return "EDX-1100" + std::to_string(i); };
  for (int i = 0; i < kOrders; ++i) {
    std::vector<domain::Line> lines = {Seat("1", "course-v1:edX+B+" + std::to_string(i)),
                                       Local("2", "Enrollment Code", 2)};
    // Every tenth order has a line no module supports: it fails alone, in the middle of a run.
    if (i % 10 == 3) lines.push_back(Local("3", "Executive Education"));
    testing::PlaceOrder(*ledger.service, number(i), std::move(lines), kT0);
  }
  ledger.manager->Start();
  for (int i = 0; i < kOrders; ++i) {
    INFO(number(i));
    const auto outcome = ledger.Settle(number(i));
    CHECK(outcome.order.state.FindLine("1")->status == domain::LineStatus::kComplete);
    CHECK(outcome.order.state.FindLine("2")->codes.size() == 2);
    if (i % 10 == 3) {
      CHECK(outcome.order.state.status == domain::OrderStatus::kFulfillmentError);
      CHECK(outcome.order.state.FindLine("3")->status ==
            domain::LineStatus::kFulfillmentConfigurationError);
    } else {
      CHECK(outcome.order.state.status == domain::OrderStatus::kComplete);
    }
    CHECK(EventCounts(*ledger.store, number(i))["LineFulfilled"] == 2);
  }
  const auto stats = ledger.standin->Stats();
  CHECK(stats.Effects("enrollment") == kOrders);
  for (const auto& [key, effects] : stats.effects_by_key) CHECK(effects == 1);
  // Two workers and sixty orders queued at once: runs of several orders, at most 16 each.
  const auto manager_stats = ledger.manager->stats();
  CHECK(manager_stats.recording_appends >= (kOrders + 15) / 16);
  CHECK(manager_stats.recording_appends < kOrders / 2);
  CHECK(manager_stats.attempts == 2 * kOrders + kOrders / 10);
}

TEST_CASE("a failed line is recorded with its reason and retried with backoff on the clock",
          "[process_manager][retry]") {
  std::atomic<int64_t> now{kT0};
  Ledger ledger(OnClock(now));
  ledger.standin->SetFaults({.fail_next = 2, .fail_status = 503});
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-2001", {Seat("1", "course-v1:edX+B+1")}, kT0);

  auto line = [&] {
    auto loaded = ledger.service->Load("EDX-2001");
    REQUIRE(loaded.has_value());
    return *loaded->state.FindLine("1");
  };
  REQUIRE(Eventually([&] { return line().attempts == 1; }));
  CHECK(line().status == domain::LineStatus::kFulfillmentServerError);
  CHECK_THAT(line().last_error_message, Catch::Contains("503"));
  CHECK(line().next_retry_at_us == kT0 + 1'000'000);
  // The dispatcher schedules the retry when it reads the failure from the log, a moment after
  // the worker appended it.
  CHECK(Eventually([&] { return ledger.manager->stats().retries_pending == 1; }));

  // Nothing happens before the retry is due.
  std::this_thread::sleep_for(50ms);
  CHECK(line().attempts == 1);

  now += 1'000'000;  // Due: the second attempt fails too, and the next wait doubles.
  REQUIRE(Eventually([&] { return line().attempts == 2; }));
  CHECK(line().next_retry_at_us == kT0 + 1'000'000 + 2'000'000);
  now += 2'000'000;
  REQUIRE(Eventually([&] { return line().status == domain::LineStatus::kComplete; }));
  CHECK(line().attempts == 3);

  const auto counts = EventCounts(*ledger.store, "EDX-2001");
  CHECK(counts.at("FulfillmentFailed") == 2);
  CHECK(counts.at("FulfillmentRetryRequested") == 2);
  CHECK(counts.at("LineFulfilled") == 1);
  CHECK(ledger.standin->Stats().Effects("enrollment") == 1);
  CHECK(Eventually([&] { return ledger.manager->stats().retries_pending == 0; }));
}

TEST_CASE("timeouts and dropped connections are retried to Complete without a second effect",
          "[process_manager][faults]") {
  ProcessManagerOptions options;
  options.idle_wait = 5ms;
  options.retry = {
      .first_delay_us = 20'000, .multiplier = 2, .retries_max = 11, .delay_max_us = 200'000};
  Ledger ledger(options, /*lms_timeout_ms=*/testing::Sanitized() ? 600 : 200);
  // The first call is dropped; the second performs its effect but answers after the timeout;
  // the third, with the same Idempotency-Key, gets the first answer back.
  ledger.standin->SetFaults(
      {.drop_next = 1, .delay_next = 1, .delay_ms = testing::Sanitized() ? 1500 : 500});
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-3001", {Seat("1", "course-v1:edX+C+1")}, kT0);
  const auto outcome = ledger.Settle("EDX-3001");
  REQUIRE(Eventually([&] {
    auto loaded = ledger.service->Load("EDX-3001");
    return loaded && loaded->state.status == domain::OrderStatus::kComplete;
  }));
  const auto counts = EventCounts(*ledger.store, "EDX-3001");
  CHECK(counts.at("FulfillmentFailed") >= 2);
  CHECK(counts.at("LineFulfilled") == 1);
  CHECK(ledger.standin->Stats().Effects("enrollment") == 1);
  auto events = ledger.store->ReadStream("order-EDX-3001", eventstore::Direction::kForward, 0, 100);
  REQUIRE(events.has_value());
  std::set<domain::FailureKind> kinds;
  for (const auto& record : *events) {
    auto event = eventstore::DecodeEvent(record);
    REQUIRE(event.has_value());
    if (auto* failed = std::get_if<domain::FulfillmentFailed>(&*event)) kinds.insert(failed->kind);
  }
  CHECK(kinds.contains(domain::FailureKind::kNetwork));
  CHECK(kinds.contains(domain::FailureKind::kTimeout));
}

TEST_CASE("a manual retry fulfills only the failed lines; with none it is a clear no-op",
          "[process_manager][retry]") {
  Ledger ledger;
  // 403 from the LMS: not retryable, the order waits for a human.
  ledger.standin->SetFaults({.fail_next = 1, .fail_status = 403});
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-4001",
                      {Seat("1", "course-v1:edX+D+1"), Local("2", "Enrollment Code", 2)}, kT0);
  auto first = ledger.Settle("EDX-4001");
  CHECK(first.order.state.status == domain::OrderStatus::kFulfillmentError);
  const auto codes_before = first.order.state.FindLine("2")->codes;
  CHECK(ledger.manager->stats().retries_pending == 0);

  auto retried = ledger.manager->RequestRetry("EDX-4001", "ops:grace", "LMS fixed");
  REQUIRE(retried.has_value());
  REQUIRE(Eventually([&] {
    auto loaded = ledger.service->Load("EDX-4001");
    return loaded && loaded->state.status == domain::OrderStatus::kComplete;
  }));
  auto loaded = ledger.service->Load("EDX-4001");
  REQUIRE(loaded.has_value());
  CHECK(loaded->state.FindLine("1")->attempts == 2);
  CHECK(loaded->state.FindLine("2")->attempts == 1);  // The complete line was not touched.
  CHECK(loaded->state.FindLine("2")->codes == codes_before);
  CHECK(EventCounts(*ledger.store, "EDX-4001").at("LineFulfilled") == 2);

  auto nothing = ledger.manager->RequestRetry("EDX-4001", "ops:grace", "again");
  REQUIRE_FALSE(nothing.has_value());
  REQUIRE(nothing.error().rejection.has_value());
  CHECK(nothing.error().rejection->code == domain::RejectionCode::kNothingToFulfill);
  auto unknown = ledger.manager->RequestRetry("EDX-404", "ops:grace", "?");
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().rejection->code == domain::RejectionCode::kOrderNotFound);
}

TEST_CASE("a revoked line is revoked once; a line never fulfilled is refused before any call",
          "[process_manager][revoke]") {
  Ledger ledger;
  ledger.standin->SetFaults({.fail_next = 1, .fail_status = 400});
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-5001",
                      {Seat("1", "course-v1:edX+E+1"), Seat("2", "course-v1:edX+E+2")}, kT0);
  ledger.Settle("EDX-5001");
  auto loaded = ledger.service->Load("EDX-5001");
  REQUIRE(loaded.has_value());
  // One line failed with the 400 (the first call), the other is Complete.
  std::string failed_line = "1", complete_line = "2";
  if (loaded->state.FindLine("1")->status == domain::LineStatus::kComplete) {
    std::swap(failed_line, complete_line);
  }
  const uint64_t requests_before = ledger.standin->Stats().requests;
  auto refused = ledger.manager->Revoke("EDX-5001", failed_line, "refund-1");
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().rejection->code == domain::RejectionCode::kLineNotFulfilled);
  CHECK(ledger.standin->Stats().requests == requests_before);

  auto revoked = ledger.manager->Revoke("EDX-5001", complete_line, "refund-1");
  REQUIRE(revoked.has_value());
  CHECK(revoked->order.state.FindLine(complete_line)->status == domain::LineStatus::kRevoked);
  const uint64_t requests_after = ledger.standin->Stats().requests;
  CHECK(requests_after == requests_before + 1);
  auto again = ledger.manager->Revoke("EDX-5001", complete_line, "refund-1");
  REQUIRE(again.has_value());
  CHECK(again->idempotent_repeat);
  CHECK(ledger.standin->Stats().requests == requests_after);
  CHECK(EventCounts(*ledger.store, "EDX-5001").at("LineRevoked") == 1);
}

TEST_CASE(
    "a revocation the ledger stopped in the middle of is finished after the restart, "
    "with one effect",
    "[process_manager][revoke]") {
  // Revoke records RevocationRequested before any call; a worker makes the call and records
  // the outcome. Two windows of a crash: after the request, before the call (line 1); after
  // the call, before its record (line 2: the LMS has revoked, the log still says Complete). The
  // manager of the next start finishes both; the second call carries the same Idempotency-Key,
  // so the LMS answers with its first answer and does nothing twice.
  Ledger ledger;
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-5101",
                      {Seat("1", "course-v1:edX+R+1"), Entitlement("2", "uuid-r-2")}, kT0);
  ledger.Settle("EDX-5101");
  ledger.manager.reset();  // The ledger stops.

  for (const char* line_id : {"1", "2"}) {
    auto requested = ledger.service->Handle(domain::RequestRevocation{.order_number = "EDX-5101",
                                                                      .line_id = line_id,
                                                                      .refund_reference = "r-1",
                                                                      .requested_by = "ops",
                                                                      .requested_at_us = kT0},
                                            {});
    REQUIRE(requested.has_value());
  }
  auto loaded = ledger.service->Load("EDX-5101");
  REQUIRE(loaded.has_value());
  const domain::LineState* entitlement = loaded->state.FindLine("2");
  REQUIRE(entitlement != nullptr);
  CHECK(entitlement->revocation_requested);
  CHECK(ledger.router.Revoke(*domain::PlacedOrder(loaded->state), *entitlement).succeeded());
  CHECK(ledger.standin->Stats().Effects("entitlement_revocation") == 1);
  CHECK(ledger.standin->Stats().Effects("unenrollment") == 0);

  ledger.OpenManager();  // The next start.
  ledger.manager->Start();
  REQUIRE(Eventually([&] {
    auto now = ledger.service->Load("EDX-5101");
    return now && now->state.FindLine("1")->status == domain::LineStatus::kRevoked &&
           now->state.FindLine("2")->status == domain::LineStatus::kRevoked;
  }));
  CHECK(ledger.standin->Stats().Effects("unenrollment") == 1);
  CHECK(ledger.standin->Stats().Effects("entitlement_revocation") == 1);
  CHECK(EventCounts(*ledger.store, "EDX-5101").at("LineRevoked") == 2);
  auto revoked = ledger.service->Load("EDX-5101");
  REQUIRE(revoked.has_value());
  CHECK(revoked->state.status == domain::OrderStatus::kRefunded);
  CHECK(revoked->state.FindLine("1")->refund_reference == "r-1");
  CHECK_FALSE(revoked->state.FindLine("1")->revocation_requested);

  // Asking again, as ops would after their first request died with the ledger: a repeat.
  auto again = ledger.manager->Revoke("EDX-5101", "1", "r-1");
  REQUIRE(again.has_value());
  CHECK(again->idempotent_repeat);
  CHECK(ledger.standin->Stats().Effects("unenrollment") == 1);
}

TEST_CASE(
    "a revocation answered before its outcome stays pending, and is finished when the "
    "manager runs",
    "[process_manager][revoke]") {
  Ledger ledger;
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-5201", {Seat("1", "course-v1:edX+P+1")}, kT0);
  ledger.Settle("EDX-5201");
  ledger.manager.reset();
  ledger.OpenManager();  // Not started: nobody carries the request out yet.

  auto pending = ledger.manager->Revoke("EDX-5201", "1", "r-2", "ops:grace", 50ms);
  REQUIRE(pending.has_value());
  CHECK_FALSE(pending->idempotent_repeat);
  const domain::LineState* line = pending->order.state.FindLine("1");
  REQUIRE(line != nullptr);
  CHECK(line->status == domain::LineStatus::kComplete);
  CHECK(line->revocation_requested);
  CHECK(ledger.standin->Stats().Effects("unenrollment") == 0);
  // Asked again while pending: one request.
  auto again = ledger.manager->Revoke("EDX-5201", "1", "r-2", "ops:grace", 0ms);
  REQUIRE(again.has_value());
  CHECK(again->idempotent_repeat);
  CHECK(EventCounts(*ledger.store, "EDX-5201").at("RevocationRequested") == 1);

  ledger.manager->Start();
  auto done = ledger.manager->Revoke("EDX-5201", "1", "r-2", "ops:grace", 10s);
  REQUIRE(done.has_value());
  CHECK(done->order.state.FindLine("1")->status == domain::LineStatus::kRevoked);
  CHECK(ledger.standin->Stats().Effects("unenrollment") == 1);
}

TEST_CASE(
    "a pending revocation whose request the manager has passed is run again when asked "
    "again",
    "[process_manager][revoke]") {
  // A run whose record was refused leaves the request behind the checkpoint with the line
  // still pending: no later event brings the order back. Asking again (a repeat: nothing new
  // is recorded) runs the order again.
  Ledger ledger;
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-5301", {Seat("1", "course-v1:edX+Q+1")}, kT0);
  ledger.Settle("EDX-5301");
  ledger.manager.reset();
  auto requested = ledger.service->Handle(domain::RequestRevocation{.order_number = "EDX-5301",
                                                                    .line_id = "1",
                                                                    .refund_reference = "r-3",
                                                                    .requested_by = "ops",
                                                                    .requested_at_us = kT0},
                                          {});
  REQUIRE(requested.has_value());
  // The manager's checkpoint past the request, as a dropped run leaves it.
  eventstore::StateBatch batch = ledger.state->NewBatch();
  std::string checkpoint;
  AppendBigEndian64(checkpoint, ledger.store->HeadPosition());
  batch.Put("pm/checkpoint", checkpoint);
  REQUIRE(ledger.state->Write(batch, true).has_value());
  ledger.OpenManager();
  ledger.manager->Start();
  std::this_thread::sleep_for(100ms);
  auto still = ledger.service->Load("EDX-5301");
  REQUIRE(still.has_value());
  REQUIRE(still->state.FindLine("1")->revocation_requested);  // Nothing brought it back.

  auto again = ledger.manager->Revoke("EDX-5301", "1", "r-3", "ops", 10s);
  REQUIRE(again.has_value());
  CHECK(again->idempotent_repeat);
  CHECK(again->order.state.FindLine("1")->status == domain::LineStatus::kRevoked);
  CHECK(ledger.standin->Stats().Effects("unenrollment") == 1);
  CHECK(EventCounts(*ledger.store, "EDX-5301").at("RevocationRequested") == 1);
}

TEST_CASE("a state directory ahead of its log is refused, naming both positions",
          "[process_manager][restart]") {
  Ledger ledger;
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-7001", {Local("1", "Donation")}, kT0);
  testing::PlaceOrder(*ledger.service, "EDX-7002", {Local("1", "Coupon")}, kT0);
  ledger.Settle("EDX-7001");
  ledger.Settle("EDX-7002");
  ledger.manager.reset();  // Saves its checkpoint.
  auto saved = ledger.state->Get("pm/checkpoint");
  REQUIRE(saved.has_value());
  REQUIRE(saved->has_value());
  REQUIRE((*saved)->size() == 8);
  const uint64_t handled = ReadBigEndian64((*saved)->data());

  // The log put back from an older backup (here: a new, shorter one), the state kept.
  ledger.service.reset();
  ledger.store.reset();
  std::filesystem::remove_all(ledger.dir.Child("log"));
  auto reopened = eventstore::OpenRocksDbEventStore(ledger.dir.Child("log"));
  REQUIRE(reopened.has_value());
  ledger.store = std::move(*reopened);
  ledger.service = std::make_unique<eventstore::OrderCommandService>(*ledger.store);
  testing::PlaceOrder(*ledger.service, "EDX-7003", {Local("1", "Donation")}, kT0);
  REQUIRE(ledger.store->HeadPosition() < handled);

  // Resuming after `handled` would never look at EDX-7003.
  auto refused = ProcessManager::Open(*ledger.store, *ledger.state, ledger.router, ledger.options);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == eventstore::ErrorCode::kCorruption);
  CHECK_THAT(
      refused.error().message,
      Catch::Contains(fmt::format("up to position {}", handled)) &&
          Catch::Contains(fmt::format("ends at position {}", ledger.store->HeadPosition())) &&
          Catch::Contains(fmt::format("accepts that events {}..{} are gone",
                                      ledger.store->HeadPosition() + 1, handled)));

  // The remedy it names: a fresh state directory; the manager reads the log from the start.
  ledger.state.reset();
  std::filesystem::remove_all(ledger.dir.Child("state"));
  auto fresh = eventstore::OpenRocksDbStateStore(ledger.dir.Child("state"));
  REQUIRE(fresh.has_value());
  ledger.state = std::move(*fresh);
  ledger.OpenManager();
  ledger.manager->Start();
  CHECK(ledger.Settle("EDX-7003").order.state.status == domain::OrderStatus::kComplete);
}

// The order's RevocationRequested events, in log order.
std::vector<domain::RevocationRequested> RevocationRequests(eventstore::EventStore& store,
                                                            const std::string& order_number) {
  auto records =
      store.ReadStream("order-" + order_number, eventstore::Direction::kForward, 0, 1000);
  REQUIRE(records.has_value());
  std::vector<domain::RevocationRequested> requests;
  for (const eventstore::RecordedEvent& record : *records) {
    auto event = eventstore::DecodeEvent(record);
    REQUIRE(event.has_value());
    if (const auto* request = std::get_if<domain::RevocationRequested>(&*event)) {
      requests.push_back(*request);
    }
  }
  return requests;
}

TEST_CASE(
    "a failed revocation is asked for again with backoff, across a restart, until revoked "
    "once",
    "[process_manager][revoke][retry]") {
  std::atomic<int64_t> now{kT0};
  Ledger ledger(OnClock(now));
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-5401", {Seat("1", "course-v1:edX+S+1")}, kT0);
  ledger.Settle("EDX-5401");
  auto line = [&] {
    auto loaded = ledger.service->Load("EDX-5401");
    REQUIRE(loaded.has_value());
    return *loaded->state.FindLine("1");
  };

  ledger.standin->SetFaults({.fail_next = 2, .fail_status = 503});
  auto failed = ledger.manager->Revoke("EDX-5401", "1", "refund-54", "ops:grace", 10s);
  REQUIRE(failed.has_value());
  const domain::LineState* answered = failed->order.state.FindLine("1");
  CHECK(answered->status == domain::LineStatus::kRevocationError);
  CHECK_THAT(answered->last_error_message, Catch::Contains("503"));
  CHECK(answered->revocation_failures == 1);
  CHECK(answered->next_retry_at_us == kT0 + 1'000'000);
  REQUIRE(Eventually([&] { return ledger.manager->stats().retries_pending == 1; }));
  std::this_thread::sleep_for(50ms);  // Not due: nothing happens.
  CHECK(line().revocation_failures == 1);
  CHECK(RevocationRequests(*ledger.store, "EDX-5401").size() == 1);

  // The schedule is in the state store: a restart keeps it.
  ledger.manager.reset();
  ledger.OpenManager();
  CHECK(ledger.manager->stats().retries_pending == 1);
  ledger.manager->Start();

  now += 1'000'000;  // Due: asked again, fails again, and the next wait doubles.
  REQUIRE(Eventually([&] { return line().revocation_failures == 2; }));
  CHECK(line().status == domain::LineStatus::kRevocationError);
  CHECK(line().next_retry_at_us == kT0 + 1'000'000 + 2'000'000);
  now += 2'000'000;
  REQUIRE(Eventually([&] { return line().status == domain::LineStatus::kRevoked; }));
  CHECK(line().refund_reference == "refund-54");

  const auto requests = RevocationRequests(*ledger.store, "EDX-5401");
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].requested_by == "ops:grace");
  CHECK_FALSE(requests[0].automatic);
  for (size_t i = 1; i < requests.size(); ++i) {
    CHECK(requests[i].requested_by == "process-manager");
    CHECK(requests[i].refund_reference == "refund-54");
    CHECK(requests[i].automatic);  // What the budget and the delay count.
  }
  CHECK(line().automatic_revocation_retries == 2);
  CHECK(requests[1].requested_at_us == kT0 + 1'000'000);  // The due time: a repeat is the same.
  const auto counts = EventCounts(*ledger.store, "EDX-5401");
  CHECK(counts.at("RevocationFailed") == 2);
  CHECK(counts.at("LineRevoked") == 1);
  CHECK(ledger.standin->Stats().Effects("unenrollment") == 1);
  CHECK(Eventually([&] { return ledger.manager->stats().retries_pending == 0; }));
  CHECK(ledger.manager->stats().automatic_retries == 2);
}

TEST_CASE(
    "a failed revocation ops ask for again before its retry is due is not asked twice; one "
    "the partner refused waits for ops",
    "[process_manager][revoke][retry]") {
  std::atomic<int64_t> now{kT0};
  Ledger ledger(OnClock(now));
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-5501",
                      {Seat("1", "course-v1:edX+T+1"), Seat("2", "course-v1:edX+T+2")}, kT0);
  ledger.Settle("EDX-5501");

  // Line 1: a retryable failure, then ops ask again before the retry is due.
  ledger.standin->SetFaults({.fail_next = 1, .fail_status = 502});
  auto failed = ledger.manager->Revoke("EDX-5501", "1", "refund-55", "ops", 10s);
  REQUIRE(failed.has_value());
  REQUIRE(failed->order.state.FindLine("1")->next_retry_at_us > 0);
  REQUIRE(Eventually([&] { return ledger.manager->stats().retries_pending == 1; }));
  now += 1'000;  // A request at another time (one at the same time would be the same request).
  auto asked_again = ledger.manager->Revoke("EDX-5501", "1", "refund-55", "ops", 10s);
  REQUIRE(asked_again.has_value());
  CHECK(asked_again->order.state.FindLine("1")->status == domain::LineStatus::kRevoked);
  CHECK(Eventually([&] { return ledger.manager->stats().retries_pending == 0; }));

  // Line 2: the LMS refuses (a 4xx other than the mode mismatch): not retryable.
  ledger.standin->SetFaults({.fail_next = 1, .fail_status = 403});
  auto refused = ledger.manager->Revoke("EDX-5501", "2", "refund-55", "ops", 10s);
  REQUIRE(refused.has_value());
  const domain::LineState* line = refused->order.state.FindLine("2");
  CHECK(line->status == domain::LineStatus::kRevocationError);
  CHECK(line->next_retry_at_us == 0);
  CHECK(line->revocation_failures == 1);

  now += 3'600'000'000;  // Long after any retry would have been due.
  std::this_thread::sleep_for(100ms);
  CHECK(ledger.manager->stats().retries_pending == 0);
  CHECK(ledger.manager->stats().automatic_retries == 0);
  CHECK(RevocationRequests(*ledger.store, "EDX-5501").size() == 3);  // Ops' three.
  CHECK(ledger.standin->Stats().Effects("unenrollment") == 1);
}

TEST_CASE("an order of the most enrollment codes allowed is minted and recorded whole",
          "[process_manager]") {
  // The per-order cap keeps the line's LineFulfilled inside the log's limit per event; an
  // order beyond it is refused at placement (domain rejection table).
  Ledger ledger;
  ledger.manager->Start();
  testing::PlaceOrder(
      *ledger.service, "EDX-6101",
      {Local("1", "Enrollment Code", static_cast<int64_t>(domain::kCodesPerOrderMax))}, kT0);
  const auto outcome = ledger.Settle("EDX-6101");
  const domain::LineState* line = outcome.order.state.FindLine("1");
  REQUIRE(line != nullptr);
  CHECK(line->status == domain::LineStatus::kComplete);
  CHECK(line->codes.size() == domain::kCodesPerOrderMax);
  CHECK(std::set<std::string>(line->codes.begin(), line->codes.end()).size() ==
        domain::kCodesPerOrderMax);
}

TEST_CASE("a failure the manager keeps meeting stays fresh in its stats; its age says so",
          "[process_manager]") {
  // An event the manager cannot decode stops it at that position; each try meets it again.
  // /healthz reads a fresh failure as degraded.
  Ledger ledger;
  ledger.manager->Start();
  eventstore::NewEvent bad = eventstore::testing::MakeEvent("undecodable");
  bad.event_type = "PostCheckout";
  REQUIRE(ledger.store->Append("order-EDX-9901", eventstore::ExpectedVersion::Any(), {&bad, 1}));
  REQUIRE(Eventually([&] { return ledger.manager->stats().failure.has_value(); }));
  CHECK(ledger.manager->stats().failure->code == eventstore::ErrorCode::kCorruption);
  std::this_thread::sleep_for(1500ms);
  // Met again since: younger than the wait.
  CHECK(ledger.manager->stats().failure_age < 1000ms);
  CHECK(ledger.manager->stats().checkpoint < ledger.store->HeadPosition());
}

TEST_CASE("pending retries survive a restart: the schedule comes back from the log",
          "[process_manager][retry]") {
  std::atomic<int64_t> now{kT0};
  Ledger ledger(OnClock(now));
  ledger.standin->SetFaults({.fail_next = 1, .fail_status = 500});
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-6001", {Seat("1", "course-v1:edX+F+1")}, kT0);
  REQUIRE(Eventually([&] { return ledger.manager->stats().retries_pending == 1; }));
  ledger.manager.reset();  // Stops it.

  ledger.OpenManager();
  CHECK(ledger.manager->stats().retries_pending == 1);
  ledger.manager->Start();
  now += 1'000'000;
  REQUIRE(Eventually([&] {
    auto loaded = ledger.service->Load("EDX-6001");
    return loaded && loaded->state.status == domain::OrderStatus::kComplete;
  }));
  CHECK(ledger.standin->Stats().Effects("enrollment") == 1);
}

TEST_CASE("a line no module supports is a configuration error, not retried", "[process_manager]") {
  Ledger ledger;
  ledger.manager->Start();
  testing::PlaceOrder(*ledger.service, "EDX-7001", {Local("1", "Executive Education")}, kT0);
  const auto outcome = ledger.Settle("EDX-7001");
  const auto* line = outcome.order.state.FindLine("1");
  CHECK(line->status == domain::LineStatus::kFulfillmentConfigurationError);
  CHECK_THAT(line->last_error_message, Catch::Contains("Executive Education"));
  CHECK(line->next_retry_at_us == 0);
  CHECK(ledger.manager->stats().retries_pending == 0);
}

// A coupon module that, on its first call, lets another writer (as a second manager would)
// record an outcome of the lines it is asked for before it answers: LineFulfilled, or with
// `records_failure` FulfillmentFailed. The fold the worker decided from is then stale by the
// time it appends.
class RacedCouponModule : public Module {
 public:
  RacedCouponModule(eventstore::EventStore& store, bool records_failure)
      : inner_(MakeCouponModule()), other_writer_(store), records_failure_(records_failure) {}
  std::string_view name() const override { return inner_->name(); }
  bool Supports(const domain::Line& line) const override { return inner_->Supports(line); }
  std::vector<LineOutcome> Fulfill(const domain::OrderCreated& order,
                                   std::span<const domain::Line> lines) override {
    if (calls_++ == 0) {
      const eventstore::EventMetadata metadata{
          .correlation_id = {}, .causation_id = {}, .actor = "other-manager"};
      for (const domain::Line& line : lines) {
        auto recorded =
            records_failure_
                ? other_writer_.Handle(
                      domain::RecordFulfillmentFailed{.order_number = order.order_number,
                                                      .line_id = line.line_id,
                                                      .module = "coupon",
                                                      .kind = domain::FailureKind::kNetwork,
                                                      .message = "by the other writer",
                                                      .retryable = false,
                                                      .failed_at_us = kT0,
                                                      .retry = {}},
                      metadata)
                : other_writer_.Handle(
                      domain::RecordLineFulfilled{.order_number = order.order_number,
                                                  .line_id = line.line_id,
                                                  .module = "coupon",
                                                  .external_reference = "by-the-other-writer",
                                                  .codes = {},
                                                  .fulfilled_at_us = kT0},
                      metadata);
        REQUIRE(recorded.has_value());
      }
    }
    return inner_->Fulfill(order, lines);
  }
  RevokeOutcome Revoke(const domain::OrderCreated& order, const domain::LineState& line) override {
    return inner_->Revoke(order, line);
  }
  int calls() const { return calls_.load(); }

 private:
  std::unique_ptr<Module> inner_;
  eventstore::OrderCommandService other_writer_;
  const bool records_failure_;
  std::atomic<int> calls_{0};
};

// A store, a state store per manager, and orders placed through a command service.
struct SharedLog {
  SharedLog() {
    auto opened = eventstore::OpenRocksDbEventStore(dir.Child("log"));
    REQUIRE(opened.has_value());
    store = std::move(*opened);
    service = std::make_unique<eventstore::OrderCommandService>(*store);
  }
  std::unique_ptr<eventstore::StateStore> OpenState(const std::string& name) {
    auto opened = eventstore::OpenRocksDbStateStore(dir.Child(name));
    REQUIRE(opened.has_value());
    return std::move(*opened);
  }
  std::unique_ptr<ProcessManager> OpenManager(eventstore::StateStore& state, const Router& router,
                                              ProcessManagerOptions options = {}) {
    auto opened = ProcessManager::Open(*store, state, router, std::move(options));
    REQUIRE(opened.has_value());
    return std::move(*opened);
  }

  eventstore::testing::TempDir dir{"process-manager-shared"};
  std::unique_ptr<eventstore::EventStore> store;
  std::unique_ptr<eventstore::OrderCommandService> service;
};

// A manager on `log` whose coupons go to `coupon_module` and donations to the usual module,
// after it has settled order `order_number` of one Coupon line (1) and one Donation line (2).
struct CouponRun {
  CouponRun(SharedLog& log, std::unique_ptr<Module> coupon_module,
            const std::string& order_number) {
    std::vector<std::unique_ptr<Module>> modules;
    modules.push_back(std::move(coupon_module));
    modules.push_back(MakeDonationModule());
    router = std::make_unique<Router>(std::move(modules));
    state = log.OpenState("state");
    manager = log.OpenManager(*state, *router);
    manager->Start();
    testing::PlaceOrder(*log.service, order_number, {Local("1", "Coupon"), Local("2", "Donation")},
                        kT0);
    auto waited = manager->WaitForOutcome(order_number, 20s);
    REQUIRE(waited.has_value());
    REQUIRE(waited->settled);
    outcome = std::move(*waited);
  }

  std::unique_ptr<Router> router;
  std::unique_ptr<eventstore::StateStore> state;
  std::unique_ptr<ProcessManager> manager;
  ProcessManager::Outcome outcome;
};

TEST_CASE(
    "a fold made stale by another writer costs a conflict and a fresh decision, never a second "
    "LineFulfilled",
    "[process_manager]") {
  // Without the expected-version check, the second case would append a LineFulfilled "attempt 1"
  // after the other writer's FulfillmentFailed attempt 1: a stream that no longer folds.
  const bool records_failure = GENERATE(false, true);
  SharedLog log;
  auto raced = std::make_unique<RacedCouponModule>(*log.store, records_failure);
  RacedCouponModule* module = raced.get();
  CouponRun run(log, std::move(raced), "EDX-8001");
  ProcessManager& manager = *run.manager;
  const ProcessManager::Outcome* outcome = &run.outcome;
  CHECK(outcome->order.state.status == domain::OrderStatus::kComplete);
  // The worker decided from the dispatcher's fold (version 2), the other writer then appended
  // line 1's outcome, and the worker's append expecting version 2 lost: it read the stream and
  // decided again.
  CHECK(module->calls() == 1);
  CHECK(manager.stats().orders_from_cache == 1);
  CHECK(manager.stats().orders_loaded == 0);
  const auto counts = EventCounts(*log.store, "EDX-8001");
  CHECK(counts.at("LineFulfilled") == 2);
  const auto* line = outcome->order.state.FindLine("1");
  REQUIRE(line != nullptr);
  CHECK(line->status == domain::LineStatus::kComplete);
  if (records_failure) {
    // The worker's outcome, recorded as the attempt after the other writer's failure.
    CHECK(counts.at("FulfillmentFailed") == 1);
    CHECK(line->attempts == 2);
    CHECK(line->external_reference.empty());
  } else {
    // The other writer's outcome, and no second one.
    CHECK_FALSE(counts.contains("FulfillmentFailed"));
    CHECK(line->attempts == 1);
    CHECK(line->external_reference == "by-the-other-writer");
  }
  // The whole stream still folds.
  auto loaded = log.service->Load("EDX-8001");
  REQUIRE(loaded.has_value());
  CHECK(loaded->state == outcome->order.state);
  manager.Stop();
}

TEST_CASE("two managers on one log, each deciding from its own folds, fulfill every line once",
          "[process_manager]") {
  SharedLog log;
  const Router router = testing::DefaultRouter("http://127.0.0.1:9", "unused", 1'000);
  auto state_a = log.OpenState("state-a");
  auto state_b = log.OpenState("state-b");
  auto manager_a = log.OpenManager(*state_a, router, {.workers = 3});
  // A small cache: some orders fall out of it before a worker takes them and are read instead.
  auto manager_b = log.OpenManager(*state_b, router, {.workers = 3, .cached_orders_max = 4});
  manager_a->Start();
  manager_b->Start();
  constexpr int kOrders = 60;
  std::vector<std::thread> placers;
  for (int t = 0; t < 3; ++t) {
    placers.emplace_back([&, t] {
      for (int i = t; i < kOrders; i += 3) {
        testing::PlaceOrder(
            *log.service, "EDX-9" + std::to_string(100 + i),
            {Local("1", "Coupon"), Local("2", "Enrollment Code", 2), Local("3", "Donation")}, kT0);
      }
    });
  }
  for (auto& placer : placers) placer.join();
  for (int i = 0; i < kOrders; ++i) {
    const std::string order_number = "EDX-9" + std::to_string(100 + i);
    auto outcome = manager_a->WaitForOutcome(order_number, 20s);
    REQUIRE(outcome.has_value());
    REQUIRE(outcome->settled);
    CHECK(outcome->order.state.status == domain::OrderStatus::kComplete);
    const auto counts = EventCounts(*log.store, order_number);
    INFO(order_number);
    CHECK(counts.at("LineFulfilled") == 3);
    CHECK_FALSE(counts.contains("FulfillmentFailed"));
  }
  // Every order settled, perhaps by the other manager: each must also have run its own queue
  // to the end before the counts below (a loaded machine left a manager behind when stopped).
  for (ProcessManager* manager : {manager_a.get(), manager_b.get()}) {
    CHECK(Eventually([&] { return manager->stats().checkpoint == log.store->HeadPosition(); }));
  }
  manager_a->Stop();
  manager_b->Stop();
  const auto a = manager_a->stats();
  const auto b = manager_b->stats();
  CHECK(a.orders_from_cache + a.orders_loaded == kOrders);
  CHECK(b.orders_from_cache + b.orders_loaded == kOrders);
  CHECK(a.orders_from_cache > 0);
  CHECK(a.failure == std::nullopt);
  CHECK(b.failure == std::nullopt);
}

// A coupon module whose first call waits until the test opens the gate.
class GatedCouponModule : public Module {
 public:
  GatedCouponModule() : inner_(MakeCouponModule()) {}
  std::string_view name() const override { return inner_->name(); }
  bool Supports(const domain::Line& line) const override { return inner_->Supports(line); }
  std::vector<LineOutcome> Fulfill(const domain::OrderCreated& order,
                                   std::span<const domain::Line> lines) override {
    if (calls_.fetch_add(1) == 0) {
      std::unique_lock lock(mutex_);
      opened_.wait(lock, [this] { return open_; });
    }
    return inner_->Fulfill(order, lines);
  }
  RevokeOutcome Revoke(const domain::OrderCreated& order, const domain::LineState& line) override {
    return inner_->Revoke(order, line);
  }
  void Open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    opened_.notify_all();
  }
  int calls() const { return calls_.load(); }

 private:
  std::unique_ptr<Module> inner_;
  std::atomic<int> calls_{0};
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

// A coupon module whose partner answers with a reference longer than any text the ledger
// records (as a misbehaving partner might).
class OversizedAnswerModule final : public Module {
 public:
  std::string_view name() const override { return "oversized"; }
  bool Supports(const domain::Line& line) const override { return line.product_type == "Coupon"; }
  std::vector<LineOutcome> Fulfill(const domain::OrderCreated&,
                                   std::span<const domain::Line> lines) override {
    std::vector<LineOutcome> outcomes;
    for (const domain::Line& line : lines) {
      outcomes.push_back(LineOutcome{
          .line_id = line.line_id,
          .module = std::string(name()),
          .result = Fulfillment{.external_reference = std::string(domain::kTextBytesMax + 1, 'x'),
                                .codes = {}}});
    }
    return outcomes;
  }
  RevokeOutcome Revoke(const domain::OrderCreated&, const domain::LineState& line) override {
    return RevokeOutcome{.line_id = line.line.line_id,
                         .module = std::string(name()),
                         .result = Revocation{.note = ""}};
  }
};

TEST_CASE(
    "an outcome the ledger cannot record leaves its line failed with why, and the order's "
    "other lines recorded",
    "[process_manager]") {
  // The order's outcomes are one append; the refused one would keep the Donation out too, and
  // leave its own line Open with nothing said.
  SharedLog log;
  CouponRun run(log, std::make_unique<OversizedAnswerModule>(), "EDX-8101");
  const ProcessManager::Outcome* outcome = &run.outcome;
  ProcessManager* manager = run.manager.get();
  CHECK(outcome->order.state.status == domain::OrderStatus::kFulfillmentError);
  const domain::LineState* refused = outcome->order.state.FindLine("1");
  CHECK(refused->status == domain::LineStatus::kFulfillmentServerError);
  CHECK(refused->next_retry_at_us == 0);
  CHECK_THAT(refused->last_error_message,
             Catch::StartsWith("oversized fulfilled the line, but its answer cannot be recorded: "
                               "limit_exceeded"));
  CHECK(outcome->order.state.FindLine("2")->status == domain::LineStatus::kComplete);
  CHECK(manager->stats().retries_pending == 0);
}

TEST_CASE("Stop during a run of several orders finishes the order in hand and leaves the rest",
          "[process_manager]") {
  SharedLog log;
  auto gated = std::make_unique<GatedCouponModule>();
  GatedCouponModule* module = gated.get();
  std::vector<std::unique_ptr<Module>> modules;
  modules.push_back(std::move(gated));
  const Router router(std::move(modules));
  auto state = log.OpenState("state");
  constexpr int kOrders = 8;
  auto number = [](int i) { return "EDX-1200" + std::to_string(i); };
  for (int i = 0; i < kOrders; ++i) {
    testing::PlaceOrder(*log.service, number(i), {Local("1", "Coupon")}, kT0);
  }
  const uint64_t placed_head = log.store->HeadPosition();
  {
    // One worker: its first run takes every order, and its first module call waits.
    auto manager = log.OpenManager(*state, router, {.workers = 1, .orders_per_run_max = 64});
    manager->Start();
    REQUIRE(Eventually([&] { return module->calls() == 1; }));
    std::thread stopper([&] { manager->Stop(); });
    std::this_thread::sleep_for(50ms);  // Stop is now waiting for the run.
    module->Open();
    stopper.join();
    // The order in hand was recorded; the others were left before any call, and the checkpoint
    // stays right before the first of them (the second order's PostCheckout).
    CHECK(module->calls() == 1);
    CHECK(manager->stats().lines_fulfilled == 1);
    auto second =
        log.store->ReadStream(domain::OrderStreamName(number(1)), eventstore::Direction::kBackward,
                              eventstore::kEndOfStream, 1);
    REQUIRE(second.has_value());
    REQUIRE(second->size() == 1);
    CHECK(second->front().event_type == "PostCheckout");
    CHECK(manager->stats().checkpoint == second->front().position - 1);
  }
  // The next start redoes what was left, and the first order's line is not fulfilled again.
  // (Before, the destructor's second Stop saved the checkpoint past the orders left: they were
  // never fulfilled.)
  auto manager = log.OpenManager(*state, router);
  // The destructor's Stop, after the explicit one, kept the checkpoint before the work left.
  CHECK(manager->stats().checkpoint < placed_head);
  manager->Start();
  for (int i = 0; i < kOrders; ++i) {
    INFO(number(i));
    auto outcome = manager->WaitForOutcome(number(i), 20s);
    REQUIRE(outcome.has_value());
    CHECK(outcome->order.state.status == domain::OrderStatus::kComplete);
    CHECK(EventCounts(*log.store, number(i))["LineFulfilled"] == 1);
  }
  CHECK(module->calls() == kOrders);
}

TEST_CASE(
    "Stop cuts short a slow LMS call and records no failure for it, and the next start enrolls the "
    "line, with one effect at the LMS",
    "[process_manager]") {
  SharedLog log;
  auto standin = testing::StartStandin();
  auto state = log.OpenState("state");
  const std::string order_number = "EDX-1300";
  // The seat's enrollment is made, but its answer would come 30 s later (the call waits 60 s).
  standin->SetFaults({.delay_next = 1, .delay_ms = 30'000});
  testing::PlaceOrder(*log.service, order_number,
                      {Seat("1", "course-v1:edX+Stop+1"), Local("2", "Coupon")}, kT0);
  {
    auto client = std::make_shared<HttpClient>();
    const Router router =
        testing::DefaultRouter(standin->url(), std::string(testing::kApiKey), 60'000, client);
    auto manager =
        log.OpenManager(*state, router, {.interrupt_calls = [client] { client->Shutdown(); }});
    manager->Start();
    REQUIRE(Eventually([&] { return standin->Stats().requests == 1; }));
    // A synchronous caller waiting for the order gets the log's word when Stop begins.
    std::optional<eventstore::StoreResult<ProcessManager::Outcome>> waited;
    std::thread waiter([&] { waited = manager->WaitForOutcome(order_number, 60s); });
    std::this_thread::sleep_for(50ms);
    const auto started = std::chrono::steady_clock::now();
    manager->Stop();
    waiter.join();
    CHECK(std::chrono::steady_clock::now() - started < 3s);
    REQUIRE(waited.has_value());
    REQUIRE(waited->has_value());
    CHECK_FALSE((*waited)->settled);
    // The cut call is not a failure of the line; the coupon, which succeeded, is recorded.
    auto counts = EventCounts(*log.store, order_number);
    CHECK(counts["FulfillmentFailed"] == 0);
    CHECK(counts["LineFulfilled"] == 1);
    CHECK(standin->Stats().Effects("enrollment") == 1);
  }
  // The next start (a new client) attempts the seat again with the same Idempotency-Key.
  const Router router =
      testing::DefaultRouter(standin->url(), std::string(testing::kApiKey), 5'000);
  auto manager = log.OpenManager(*state, router);
  manager->Start();
  auto outcome = manager->WaitForOutcome(order_number, 20s);
  REQUIRE(outcome.has_value());
  CHECK(outcome->settled);
  CHECK(outcome->order.state.status == domain::OrderStatus::kComplete);
  auto counts = EventCounts(*log.store, order_number);
  CHECK(counts["FulfillmentFailed"] == 0);
  CHECK(counts["LineFulfilled"] == 2);
  const auto stats = standin->Stats();
  CHECK(stats.Effects("enrollment") == 1);
  CHECK(stats.replays == 1);
}

}  // namespace
}  // namespace ledger::fulfillment
