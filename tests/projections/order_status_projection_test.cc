// The order status projection under its runner: it equals a fresh fold of the log, lists page
// correctly, follows the live log with read-your-writes waits, resumes from its checkpoint,
// rebuilds (offline and online, under writes) without mixed views, and reports damage instead of
// crashing.
#include <fmt/format.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "base/bytes.h"
#include "domain/order_state.h"
#include "eventstore/event_codec.h"
#include "ledger_fixture.h"
#include "order_workload.h"
#include "projections/history.h"

namespace ledger::projections {
namespace {

using namespace std::chrono_literals;
using testing::LedgerFixture;
using testing::OrderWorkload;

void RequireCheckOk(eventstore::EventStore& store, const ProjectionView& view,
                    uint64_t orders_expected) {
  auto report = CheckOrderStatus(store, view);
  REQUIRE(report.has_value());
  for (const std::string& difference : report->differences) UNSCOPED_INFO(difference);
  CHECK(report->ok());
  CHECK(report->orders_checked == orders_expected);
}

// Appends `event` to `stream` straight through the store, past the domain's rules.
void AppendPastTheRules(LedgerFixture& ledger, const std::string& stream,
                        const domain::Event& event) {
  const eventstore::NewEvent raw = eventstore::ToNewEvent(event, {});
  REQUIRE(ledger.store()
              .Append(stream, eventstore::ExpectedVersion::Any(), std::span(&raw, 1))
              .has_value());
}

// A fulfillment of a line the order does not have: no fold can apply it.
domain::Event RogueFulfillment(const std::string& order_number) {
  return domain::LineFulfilled{.order_number = order_number,
                               .line_id = "99",
                               .module = "rogue",
                               .attempt = 1,
                               .external_reference = "",
                               .codes = {},
                               .fulfilled_at_us = 1};
}

std::vector<OrderRow> AllPages(const std::function<StoreResult<OrderPage>(std::string)>& list) {
  std::vector<OrderRow> rows;
  std::string cursor;
  for (int pages = 0; pages < 10'000; ++pages) {
    auto page = list(cursor);
    REQUIRE(page.has_value());
    for (auto& row : page->rows) rows.push_back(std::move(row));
    if (page->next_cursor.empty()) return rows;
    cursor = page->next_cursor;
  }
  FAIL("paging never ended");
  return rows;
}

TEST_CASE("the order status projection equals a fresh fold of the log", "[projections]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 1);
  for (int i = 0; i < 150; ++i) workload.AddOrder();
  for (int i = 0; i < 5; ++i) workload.AddOrphanPayment();
  auto runner = ledger.OrderStatusRunner({.batch_events_max = 97, .idle_wait = 10ms});

  auto applied = runner->CatchUp();
  REQUIRE(applied.has_value());
  CHECK(*applied == ledger.store().HeadPosition());
  CHECK(runner->checkpoint() == ledger.store().HeadPosition());
  CHECK(runner->lag() == 0);

  const ProjectionView view = runner->View();
  CHECK(view.position() == ledger.store().HeadPosition());
  RequireCheckOk(ledger.store(), view, 155);
  for (const std::string& order_number : workload.orders()) {
    auto row = OrderStatusProjection::Get(view, order_number);
    REQUIRE(row.has_value());
    REQUIRE(row->has_value());
    auto loaded = ledger.service().Load(order_number);
    REQUIRE(loaded.has_value());
    CHECK((*row)->state == loaded->state);
    CHECK((*row)->position == loaded->position);
    CHECK((*row)->stream_version == loaded->stream_version);
  }
}

TEST_CASE("the revocation error queue holds exactly the orders with a line in Revocation Error",
          "[projections]") {
  // Ops' queue: an order enters when a line's revocation fails and leaves when no line is in
  // Revocation Error any more (revoked, or still failing on another line).
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 5);
  for (int i = 0; i < 200; ++i) workload.AddOrder();
  for (int i = 0; i < 600; ++i) {
    workload.Step(workload.orders()[static_cast<size_t>(i * 7) % workload.orders().size()]);
  }
  auto runner = ledger.OrderStatusRunner({.batch_events_max = 61, .idle_wait = 10ms});
  REQUIRE(runner->CatchUp().has_value());
  const ProjectionView view = runner->View();

  std::set<std::string> expected;
  for (const std::string& order_number : workload.orders()) {
    auto loaded = ledger.service().Load(order_number);
    REQUIRE(loaded.has_value());
    for (const domain::LineState& line : loaded->state.lines) {
      if (line.status == domain::LineStatus::kRevocationError) expected.insert(order_number);
    }
  }
  REQUIRE_FALSE(expected.empty());  // The workload must reach the case.
  const auto rows = AllPages([&](std::string cursor) {
    return OrderStatusProjection::ListWithRevocationErrors(view, 4, cursor);
  });
  std::set<std::string> listed;
  for (const OrderRow& row : rows) listed.insert(row.state.order_number);
  CHECK(listed == expected);
  CHECK(rows.size() == listed.size());
  // The metrics' count of the same queue, and where it stops.
  auto counted = OrderStatusProjection::CountWithRevocationErrors(view, 100'000);
  REQUIRE(counted.has_value());
  CHECK(*counted == expected.size());
  if (expected.size() > 1) {
    auto capped = OrderStatusProjection::CountWithRevocationErrors(view, expected.size() - 1);
    REQUIRE(capped.has_value());
    CHECK(*capped == expected.size() - 1);
  }
}

TEST_CASE("order lists page through every order in the documented order", "[projections]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 2);
  for (int i = 0; i < 120; ++i) workload.AddOrder();
  auto runner = ledger.OrderStatusRunner();
  REQUIRE(runner->CatchUp().has_value());
  const ProjectionView view = runner->View();

  const auto all =
      AllPages([&](std::string cursor) { return OrderStatusProjection::ListAll(view, 7, cursor); });
  REQUIRE(all.size() == 120);
  // A page that holds exactly what is left has no next page (no cursor to an empty one).
  auto whole = OrderStatusProjection::ListAll(view, 120);
  REQUIRE(whole.has_value());
  CHECK(whole->rows.size() == 120);
  CHECK(whole->next_cursor.empty());
  auto one_less = OrderStatusProjection::ListAll(view, 119);
  REQUIRE(one_less.has_value());
  CHECK_FALSE(one_less->next_cursor.empty());
  for (size_t i = 1; i < all.size(); ++i) {
    CHECK(all[i - 1].state.order_number != all[i].state.order_number);
  }
  // Newest first: placements in decreasing log order.
  std::vector<std::string> expected(workload.orders().rbegin(), workload.orders().rend());
  std::vector<std::string> listed;
  for (const auto& row : all) listed.push_back(row.state.order_number);
  CHECK(listed == expected);

  size_t in_some_status = 0;
  for (domain::OrderStatus status : domain::AllOrderStatuses()) {
    const auto rows = AllPages([&](std::string cursor) {
      return OrderStatusProjection::ListByStatus(view, status, 5, cursor);
    });
    for (size_t i = 0; i < rows.size(); ++i) {
      CHECK(rows[i].state.status == status);
      if (i > 0) CHECK(rows[i - 1].status_since_position < rows[i].status_since_position);
    }
    in_some_status += rows.size();
    auto counted = OrderStatusProjection::CountByStatus(view, status, 100'000);
    REQUIRE(counted.has_value());
    CHECK(*counted == rows.size());
  }
  CHECK(in_some_status == 120);

  std::map<int64_t, size_t> per_user;
  for (const auto& row : all) ++per_user[row.state.placement->user.id];
  for (const auto& [user_id, count] : per_user) {
    const auto rows = AllPages([&](std::string cursor) {
      return OrderStatusProjection::ListByUser(view, user_id, 3, cursor);
    });
    CHECK(rows.size() == count);
    for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i - 1].position > rows[i].position);
  }

  // A cursor from another list, or none of a list's, is refused rather than taken as a bound
  // (which ended the list early or paged through the wrong one).
  auto first_page = OrderStatusProjection::ListAll(view, 7);
  REQUIRE(first_page.has_value());
  const std::string all_cursor = first_page->next_cursor;
  REQUIRE_FALSE(all_cursor.empty());
  const int64_t some_user = per_user.begin()->first;
  auto user_page = OrderStatusProjection::ListByUser(view, some_user, 1);
  REQUIRE(user_page.has_value());
  const std::string user_cursor = user_page->next_cursor;
  REQUIRE_FALSE(user_cursor.empty());
  for (const std::string& cursor : {std::string("garbage"), user_cursor, std::string("t/")}) {
    INFO(cursor);
    auto page = OrderStatusProjection::ListAll(view, 7, cursor);
    REQUIRE_FALSE(page.has_value());
    CHECK(page.error().code == eventstore::ErrorCode::kInvalidArgument);
  }
  for (const std::string& cursor : {all_cursor, std::string("zzz")}) {
    INFO(cursor);
    auto page = OrderStatusProjection::ListByUser(view, some_user, 3, cursor);
    REQUIRE_FALSE(page.has_value());
    CHECK(page.error().code == eventstore::ErrorCode::kInvalidArgument);
  }
  auto by_status =
      OrderStatusProjection::ListByStatus(view, domain::OrderStatus::kComplete, 3, user_cursor);
  REQUIRE_FALSE(by_status.has_value());
  CHECK(by_status.error().code == eventstore::ErrorCode::kInvalidArgument);
  auto placed = OrderStatusProjection::ListPlacedBetween(view, 1, 2, 3, all_cursor);
  REQUIRE_FALSE(placed.has_value());
  CHECK(placed.error().code == eventstore::ErrorCode::kInvalidArgument);
}

TEST_CASE("the live runner follows the log and answers read-your-writes waits",
          "[projections][live]") {
  LedgerFixture ledger;
  auto runner = ledger.OrderStatusRunner({.batch_events_max = 50, .idle_wait = 10ms});
  runner->Start();
  OrderWorkload workload(ledger.service(), 3);
  for (int i = 0; i < 40; ++i) {
    const std::string order_number = workload.AddOrder();
    auto loaded = ledger.service().Load(order_number);
    REQUIRE(loaded.has_value());
    REQUIRE(runner->WaitFor(loaded->position, 10s));
    const ProjectionView view = runner->View();
    CHECK(view.position() >= loaded->position);
    auto row = OrderStatusProjection::Get(view, order_number);
    REQUIRE(row.has_value());
    REQUIRE(row->has_value());
    CHECK((*row)->state == loaded->state);
  }
  CHECK_FALSE(runner->WaitFor(ledger.store().HeadPosition() + 1, 20ms));
  runner->Stop();
  CHECK_FALSE(runner->failure().has_value());

  // A stopped runner can catch up and rebuild on the caller's thread, and start again.
  workload.AddOrder();
  REQUIRE(runner->CatchUp().has_value());
  CHECK(runner->checkpoint() == ledger.store().HeadPosition());
  REQUIRE(runner->RebuildNow().has_value());
  runner->Start();
  workload.AddOrder();
  CHECK(runner->WaitFor(ledger.store().HeadPosition(), 10s));
  runner->Stop();
}

TEST_CASE("a restarted runner resumes from its checkpoint, skipping and repeating nothing",
          "[projections]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 4);
  for (int i = 0; i < 60; ++i) workload.AddOrder();
  {
    auto runner = ledger.OrderStatusRunner({.batch_events_max = 64, .idle_wait = 10ms});
    REQUIRE(runner->CatchUp().has_value());
  }
  for (int i = 0; i < 60; ++i) workload.AddOrder();
  for (const std::string& order_number : workload.orders()) workload.Step(order_number);
  ledger.Close();
  ledger.Open();
  auto runner = ledger.OrderStatusRunner({.batch_events_max = 64, .idle_wait = 10ms});
  runner->Start();
  REQUIRE(runner->WaitFor(ledger.store().HeadPosition(), 10s));
  runner->Stop();
  RequireCheckOk(ledger.store(), runner->View(), 120);
}

TEST_CASE("a state directory ahead of its log is refused, naming both positions", "[projections]") {
  LedgerFixture ledger;
  {
    OrderWorkload workload(ledger.service(), 8, "OLD");
    for (int i = 0; i < 10; ++i) workload.AddOrder();
    ledger::testing::MustCatchUp(*ledger.OrderStatusRunner());
  }
  const uint64_t applied = ledger.store().HeadPosition();
  // The log put back from an older backup (here: a new, shorter one), the state kept.
  ledger.Close();
  std::filesystem::remove_all(ledger.log_path());
  ledger.Open();
  OrderWorkload workload(ledger.service(), 9, "NEW");
  workload.AddOrder();
  const uint64_t head = ledger.store().HeadPosition();
  REQUIRE(head < applied);

  // Resuming after `applied` would skip the new order and keep serving the old ones.
  auto refused = projections::ProjectionRunner::Open(ledger.store(), ledger.state(), [] {
    return std::make_unique<projections::OrderStatusProjection>();
  });
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == eventstore::ErrorCode::kCorruption);
  CHECK_THAT(
      refused.error().message,
      Catch::Contains(fmt::format("up to position {}", applied)) &&
          Catch::Contains(fmt::format("ends at position {}", head)) &&
          Catch::Contains(fmt::format("accepts that events {}..{} are gone", head + 1, applied)));

  // The remedy it names: a fresh state directory, rebuilt from this log.
  ledger.Close();
  std::filesystem::remove_all(ledger.state_path());
  ledger.Open();
  auto runner = ledger.OrderStatusRunner();
  ledger::testing::MustCatchUp(*runner);
  RequireCheckOk(ledger.store(), runner->View(), 1);
}

TEST_CASE("a lost or damaged active generation marker is corruption, and the rows stay",
          "[projections][damage]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 10);
  for (int i = 0; i < 10; ++i) workload.AddOrder();
  std::map<std::string, std::string> rows;
  {
    auto runner = ledger.OrderStatusRunner();
    ledger::testing::MustCatchUp(*runner);
    rows = ledger::testing::AllRows(*runner);
  }
  const std::string marker =
      "proj/" + std::string(projections::OrderStatusProjection::kName) + "/active";
  auto set_marker = [&](std::optional<uint64_t> number) {
    eventstore::StateBatch batch = ledger.state().NewBatch();
    if (number) {
      std::string bytes;
      AppendBigEndian64(bytes, *number);
      batch.Put(marker, bytes);
    } else {
      batch.Delete(marker);
    }
    REQUIRE(ledger.state().Write(batch, true).has_value());
  };
  auto open = [&] {
    return projections::ProjectionRunner::Open(ledger.store(), ledger.state(), [] {
      return std::make_unique<projections::OrderStatusProjection>();
    });
  };
  const std::vector<std::pair<std::optional<uint64_t>, std::string>> damage = {
      {0x0100000000000001, "marker says 72057594037927937"},
      {2, "names generation 2, which holds nothing"},
      {std::nullopt, "marker is missing"},
      {UINT64_MAX, "marker says 18446744073709551615"},
  };
  for (const auto& [number, problem] : damage) {
    INFO(problem);
    set_marker(number);
    auto refused = open();
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == eventstore::ErrorCode::kCorruption);
    CHECK_THAT(refused.error().message, Catch::Contains(problem));
    // Nothing was deleted: with the marker put right, every row is there.
    set_marker(1);
    auto runner = open();
    REQUIRE(runner.has_value());
    CHECK(ledger::testing::AllRows(**runner) == rows);
    CHECK((*runner)->checkpoint() == ledger.store().HeadPosition());
  }
}

// Batches this small put every order's events in several batches, so that Apply finds most
// orders in the batch being written on the writing thread (Projection::SealBatch) rather than in
// the store.
TEST_CASE("catch-ups and rebuilds in tiny batches equal a fresh fold", "[projections]") {
  for (const size_t batch_events_max : {size_t{1}, size_t{2}, size_t{7}}) {
    CAPTURE(batch_events_max);
    LedgerFixture ledger;
    OrderWorkload workload(ledger.service(), 13);
    for (int i = 0; i < 40; ++i) workload.AddOrder();
    auto runner = ledger.OrderStatusRunner({.batch_events_max = batch_events_max});
    REQUIRE(runner->CatchUp().has_value());
    CHECK(runner->checkpoint() == ledger.store().HeadPosition());
    RequireCheckOk(ledger.store(), runner->View(), 40);
    for (int i = 0; i < 10; ++i) workload.AddOrder();
    REQUIRE(runner->RebuildNow().has_value());
    CHECK(runner->checkpoint() == ledger.store().HeadPosition());
    RequireCheckOk(ledger.store(), runner->View(), 50);
  }
}

TEST_CASE("an offline rebuild gives the same rows in a new generation", "[projections]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 5);
  for (int i = 0; i < 80; ++i) workload.AddOrder();
  auto runner = ledger.OrderStatusRunner({.batch_events_max = 33, .idle_wait = 10ms});
  REQUIRE(runner->CatchUp().has_value());
  CHECK(runner->generation() == 1);
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  REQUIRE(
      runner->RebuildNow([&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); })
          .has_value());
  CHECK(runner->generation() == 2);
  REQUIRE_FALSE(progress.empty());
  CHECK(progress.back().first == ledger.store().HeadPosition());
  CHECK(progress.back().second == ledger.store().HeadPosition());
  RequireCheckOk(ledger.store(), runner->View(), 80);

  // The old generation is gone from the state store; a reopen finds the new one.
  runner.reset();
  auto reopened = ledger.OrderStatusRunner();
  CHECK(reopened->generation() == 2);
  CHECK(reopened->checkpoint() == ledger.store().HeadPosition());
  size_t old_keys = 0;
  REQUIRE(ledger.state()
              .Scan("proj/order_status/g/0000000000000001/",
                    "proj/order_status/g/00000000000000010", false,
                    [&](std::string_view, std::string_view) {
                      ++old_keys;
                      return true;
                    })
              .has_value());
  CHECK(old_keys == 0);
}

// A rebuild split between parallel walks of the log, each applying the streams that hash to it
// (RunnerOptions::rebuild_partitions), gives the rows a single walk gives. The orders' events
// are interleaved across the log, so every walk meets orders it has seen in earlier batches.
TEST_CASE("rebuilds split between parallel walks equal a fresh fold", "[projections][rebuild]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 21);
  for (int i = 0; i < 60; ++i) workload.AddOrder();
  std::mt19937_64 random(22);
  for (int step = 0; step < 300; ++step) {
    workload.Step(workload.orders()[random() % workload.orders().size()]);
  }
  for (int i = 0; i < 4; ++i) workload.AddOrphanPayment();
  const uint64_t head = ledger.store().HeadPosition();
  std::map<std::string, std::string> single_walk;
  for (const size_t partitions : {size_t{1}, size_t{2}, size_t{3}, size_t{7}}) {
    for (const size_t batch_events_max : {size_t{10'000}, size_t{1}, size_t{5}}) {
      CAPTURE(partitions, batch_events_max);
      auto runner = ledger.OrderStatusRunner(
          {.batch_events_max = batch_events_max, .rebuild_partitions = partitions});
      const uint64_t generation = runner->generation();
      std::vector<std::pair<uint64_t, uint64_t>> progress;
      REQUIRE(runner
                  ->RebuildNow(
                      [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); })
                  .has_value());
      CHECK(runner->generation() == generation + 1);
      CHECK(runner->checkpoint() == head);
      RequireCheckOk(ledger.store(), runner->View(), 64);
      // The same rows and index entries, byte for byte, as one walk in one batch wrote.
      if (single_walk.empty()) {
        single_walk = testing::AllRows(*runner);
        CHECK(single_walk.size() > 4 * 60);
      } else {
        CHECK(testing::AllRows(*runner) == single_walk);
      }
      // Progress never goes back and ends with everything done.
      REQUIRE_FALSE(progress.empty());
      for (size_t i = 1; i < progress.size(); ++i) {
        CHECK(progress[i].first >= progress[i - 1].first);
      }
      CHECK(progress.back() == std::pair(head, head));
    }
  }
  // The runner goes on from a rebuilt generation.
  for (size_t step = 0; step < 30; ++step) workload.Step(workload.orders()[step]);
  auto runner = ledger.OrderStatusRunner();
  REQUIRE(runner->CatchUp().has_value());
  RequireCheckOk(ledger.store(), runner->View(), 64);
}

// One walk failing stops the others; the rebuild reports the event, and the active generation
// stays as it was.
TEST_CASE("a parallel rebuild that meets an event it cannot apply fails naming it",
          "[projections][rebuild][damage]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 23);
  for (int i = 0; i < 30; ++i) workload.AddOrder();
  auto runner = ledger.OrderStatusRunner({.batch_events_max = 4, .rebuild_partitions = 3});
  REQUIRE(runner->CatchUp().has_value());
  const uint64_t good_head = ledger.store().HeadPosition();
  AppendPastTheRules(ledger, domain::OrderStreamName(workload.orders()[7]),
                     RogueFulfillment(workload.orders()[7]));
  for (int i = 0; i < 20; ++i) workload.AddOrder();

  auto rebuilt = runner->RebuildNow();
  REQUIRE_FALSE(rebuilt.has_value());
  CHECK(rebuilt.error().code == eventstore::ErrorCode::kCorruption);
  CHECK(rebuilt.error().position == good_head + 1);
  CHECK(runner->generation() == 1);
  CHECK(runner->checkpoint() == good_head);
  auto row = OrderStatusProjection::Get(runner->View(), workload.orders()[7]);
  REQUIRE(row.has_value());
  CHECK(row->has_value());
}

// Rows are per order and rebuilds split the log by stream: an event of one order in another
// order's stream is refused rather than folded into the wrong partition.
TEST_CASE("an event outside its order's stream is corruption naming it", "[projections][damage]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 24);
  const std::string first = workload.AddOrder();
  const std::string second = workload.AddOrder();
  const uint64_t good_head = ledger.store().HeadPosition();
  const domain::Event stray = domain::FulfillmentRetryRequested{
      .order_number = second, .requested_by = "ops", .line_ids = {"1"}, .requested_at_us = 1};
  AppendPastTheRules(ledger, domain::OrderStreamName(first), stray);
  auto runner = ledger.OrderStatusRunner({.batch_events_max = 1});
  auto caught_up = runner->CatchUp();
  REQUIRE_FALSE(caught_up.has_value());
  CHECK(caught_up.error().code == eventstore::ErrorCode::kCorruption);
  CHECK(caught_up.error().position == good_head + 1);
  CHECK_THAT(caught_up.error().message, Catch::Contains(domain::OrderStreamName(first)));
  CHECK(runner->checkpoint() == good_head);
}

TEST_CASE("an online rebuild under writes never shows a mixed or stale view",
          "[projections][live][rebuild]") {
  LedgerFixture ledger;
  OrderWorkload setup(ledger.service(), 6, "PRE");
  for (int i = 0; i < static_cast<int>(eventstore::testing::Scaled(300, 100)); ++i)
    setup.AddOrder();
  auto runner = ledger.OrderStatusRunner({.batch_events_max = 40, .idle_wait = 5ms});
  runner->Start();
  REQUIRE(runner->WaitFor(ledger.store().HeadPosition(), 10s));

  std::atomic<bool> done{false};
  std::thread writer([&] {
    OrderWorkload workload(ledger.service(), 7, "LIVE");
    while (!done.load()) workload.AddOrder();
  });
  REQUIRE(runner->StartRebuild().has_value());
  CHECK_FALSE(runner->StartRebuild().has_value());  // One at a time.

  size_t views_checked = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while ((runner->rebuild_status().running || runner->generation() == 1 || views_checked < 20) &&
         std::chrono::steady_clock::now() < deadline) {
    const ProjectionView view = runner->View();
    auto page = OrderStatusProjection::ListAll(view, 3);
    REQUIRE(page.has_value());
    for (const OrderRow& row : page->rows) {
      // Every row of the view is exactly the fold of the log at the view's position.
      auto folded = OrderAsOf(ledger.store(), row.state.order_number, view.position());
      REQUIRE(folded.has_value());
      CHECK(row.state == folded->state);
      CHECK(row.position == folded->position);
    }
    auto sample = OrderStatusProjection::Get(view, "PRE-100001");
    REQUIRE(sample.has_value());
    REQUIRE(sample->has_value());  // Never an empty, half-built generation.
    ++views_checked;
  }
  done = true;
  writer.join();
  const auto status = runner->rebuild_status();
  CHECK_FALSE(status.running);
  CHECK_FALSE(status.failure.has_value());
  CHECK(runner->generation() == 2);
  REQUIRE(runner->WaitFor(ledger.store().HeadPosition(), 10s));
  runner->Stop();
  auto report = CheckOrderStatus(ledger.store(), runner->View());
  REQUIRE(report.has_value());
  CHECK(report->ok());
}

TEST_CASE("an order as of a position or a time is the fold of the log up to it",
          "[projections][history]") {
  int64_t now_us = 1'790'000'000'000'000;
  LedgerFixture ledger(
      eventstore::RocksDbOptions{.clock_us = [&now_us] { return now_us += 1000; }});
  OrderWorkload workload(ledger.service(), 8);
  for (int i = 0; i < 40; ++i) workload.AddOrder();
  const uint64_t head = ledger.store().HeadPosition();
  auto log = ledger.store().ReadAll(1, head);
  REQUIRE(log.has_value());
  REQUIRE(log->events.size() == head);

  std::mt19937_64 random(9);
  for (int trial = 0; trial < 60; ++trial) {
    const uint64_t position = 1 + random() % head;
    const std::string& order_number = workload.orders()[random() % workload.orders().size()];
    std::vector<domain::Event> events;
    for (const auto& record : log->events) {
      if (record.position > position) break;
      if (record.stream != domain::OrderStreamName(order_number)) continue;
      auto event = eventstore::DecodeEvent(record);
      REQUIRE(event.has_value());
      events.push_back(*event);
    }
    auto expected = domain::TryFold(events);
    REQUIRE(expected.has_value());
    auto as_of = OrderAsOf(ledger.store(), order_number, position);
    REQUIRE(as_of.has_value());
    CHECK(as_of->state == *expected);

    // The time of that position leads to the last position committed at that time (the events
    // of one append share their commit time).
    const int64_t time = log->events[position - 1].recorded_at_us;
    uint64_t last_at_time = position;
    while (last_at_time < head && log->events[last_at_time].recorded_at_us == time) {
      ++last_at_time;
    }
    auto found = PositionAtTime(ledger.store(), time);
    REQUIRE(found.has_value());
    CHECK(*found == last_at_time);
    auto before = PositionAtTime(ledger.store(), time - 1);
    REQUIRE(before.has_value());
    CHECK(*before < position);
  }
  CHECK(*PositionAtTime(ledger.store(), 0) == 0);
  CHECK(*PositionAtTime(ledger.store(), INT64_MAX) == head);
}

TEST_CASE("the check names every row that disagrees with the log", "[projections][history]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 10);
  for (int i = 0; i < 10; ++i) workload.AddOrder();
  auto runner = ledger.OrderStatusRunner();
  REQUIRE(runner->CatchUp().has_value());
  const std::string victim = workload.orders()[3];
  auto row = OrderStatusProjection::Get(runner->View(), victim);
  REQUIRE(row.has_value());
  REQUIRE(row->has_value());
  OrderRow damaged = **row;
  damaged.state.status = damaged.state.status == domain::OrderStatus::kComplete
                             ? domain::OrderStatus::kOpen
                             : domain::OrderStatus::kComplete;
  eventstore::StateBatch batch = ledger.state().NewBatch();
  batch.Put("proj/order_status/g/0000000000000001/r/o/" + victim,
            OrderStatusProjection::EncodeRow(damaged));
  batch.Put("proj/order_status/g/0000000000000001/r/o/NOT-AN-ORDER",
            OrderStatusProjection::EncodeRow(damaged));
  REQUIRE(ledger.state().Write(batch).has_value());

  auto report = CheckOrderStatus(ledger.store(), runner->View());
  REQUIRE(report.has_value());
  REQUIRE(report->differences.size() == 2);
  CHECK_THAT(report->differences[0], Catch::Contains("NOT-AN-ORDER"));
  CHECK_THAT(report->differences[1], Catch::Contains(victim));
}

TEST_CASE("an event that cannot apply stops the runner with corruption naming it",
          "[projections][damage]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 11);
  const std::string order_number = workload.AddOrder();
  const uint64_t good_head = ledger.store().HeadPosition();
  AppendPastTheRules(ledger, domain::OrderStreamName(order_number), RogueFulfillment(order_number));

  auto runner = ledger.OrderStatusRunner({.batch_events_max = 1, .idle_wait = 5ms});
  auto caught_up = runner->CatchUp();
  REQUIRE_FALSE(caught_up.has_value());
  CHECK(caught_up.error().code == eventstore::ErrorCode::kCorruption);
  CHECK(caught_up.error().position == good_head + 1);
  CHECK(runner->checkpoint() == good_head);

  runner->Start();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!runner->failure() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(runner->failure().has_value());
  CHECK(runner->failure()->position == good_head + 1);
  CHECK(runner->checkpoint() == good_head);
  runner->Stop();
}

TEST_CASE("a row holding another order is corruption, read or folded further",
          "[projections][damage]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 14);
  const std::string first = workload.AddOrder();
  const std::string second = workload.AddOrder();
  auto runner = ledger.OrderStatusRunner();
  ledger::testing::MustCatchUp(*runner);
  REQUIRE(runner->generation() == 1);
  // The first order's row written under the second's key, as a misdirected write would.
  const std::map<std::string, std::string> rows = ledger::testing::AllRows(*runner);
  eventstore::StateBatch batch = ledger.state().NewBatch();
  batch.Put("proj/order_status/g/0000000000000001/r/o/" + second, rows.at("o/" + first));
  REQUIRE(ledger.state().Write(batch, true).has_value());

  auto read = OrderStatusProjection::Get(runner->View(), second);
  REQUIRE_FALSE(read.has_value());
  CHECK(read.error().code == eventstore::ErrorCode::kCorruption);
  CHECK_THAT(read.error().message,
             Catch::Contains("the row of order " + second + " holds order " + first));
  CHECK(OrderStatusProjection::Get(runner->View(), first).has_value());

  // The next event of the second order does not fold into the first one's state.
  workload.Step(second);
  workload.Step(second);
  REQUIRE(ledger.store().HeadPosition() > runner->checkpoint());
  auto caught_up = runner->CatchUp();
  REQUIRE_FALSE(caught_up.has_value());
  CHECK_THAT(caught_up.error().message, Catch::Contains("holds order " + first));
}

TEST_CASE("order rows round-trip packed, older flat rows still read, damage is an error",
          "[projections][damage]") {
  LedgerFixture ledger;
  OrderWorkload workload(ledger.service(), 12);
  for (int i = 0; i < 5; ++i) workload.AddOrder();
  auto runner = ledger.OrderStatusRunner();
  REQUIRE(runner->CatchUp().has_value());
  // Every truncation and every flipped byte of each row.
  for (size_t index = 0; index < workload.orders().size(); ++index) {
    const std::string& order_number = workload.orders()[index];
    auto stored = OrderStatusProjection::Get(runner->View(), order_number);
    REQUIRE(stored.has_value());
    REQUIRE(stored->has_value());
    const OrderRow& row = **stored;
    const std::string packed = OrderStatusProjection::EncodeRow(row);
    CHECK(packed[0] == '\x01');

    // A row as written before the format byte: the header, then a flat snapshot.
    std::string flat;
    AppendBigEndian64(flat, row.position);
    AppendBigEndian64(flat, row.stream_version);
    AppendBigEndian64(flat, row.status_since_position);
    AppendBigEndian64(flat, static_cast<uint64_t>(row.status_since_us));
    flat += eventstore::EncodeOrderState(row.state);
    CHECK(packed.size() < flat.size());

    for (const std::string& bytes : {packed, flat}) {
      auto decoded = OrderStatusProjection::DecodeRow(bytes);
      REQUIRE(decoded.has_value());
      CHECK(decoded->state == row.state);
      CHECK(decoded->position == row.position);
      CHECK(decoded->stream_version == row.stream_version);
      CHECK(decoded->status_since_position == row.status_since_position);
      CHECK(decoded->status_since_us == row.status_since_us);
      for (size_t size = 0; size < bytes.size(); ++size) {
        auto truncated = OrderStatusProjection::DecodeRow(std::string_view(bytes).substr(0, size));
        CHECK_FALSE(truncated.has_value());
      }
      for (size_t i = 0; i < bytes.size(); ++i) {
        std::string flipped = bytes;
        flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
        (void)OrderStatusProjection::DecodeRow(flipped);  // May decode: must not crash.
      }
    }
    CHECK_FALSE(OrderStatusProjection::DecodeRow(packed + "x").has_value());
    CHECK_FALSE(OrderStatusProjection::DecodeRow("\x02" + packed.substr(1)).has_value());
  }
}

}  // namespace
}  // namespace ledger::projections
