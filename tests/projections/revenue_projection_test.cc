// The revenue projection under its runner, fed by the command service with a clock that crosses
// midnight: per UTC commit day and currency (USD, EUR, JPY), captured and refunded amounts and
// counts; it equals a sum computed straight from the log; the live runner answers
// read-your-writes waits; a rebuild answers the same; overflow and damaged rows or events are
// kCorruption, never a crash.
#include "projections/revenue_projection.h"

#include <fmt/format.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <span>
#include <utility>

#include "domain/limits.h"
#include "eventstore/event_codec.h"
#include "ledger_fixture.h"
#include "order_workload.h"
#include "projections/projection_runner.h"
#include "tests/support/sample_orders.h"

namespace ledger::projections {
namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;
using eventstore::ErrorCode;
using testing::LedgerFixture;
using testing::MustCatchUp;

// 2026-09-20T23:59:58Z and the midnight after it.
constexpr int64_t kBeforeMidnightUs = 1'789'948'798'000'000;
constexpr int64_t kMidnightUs = 1'789'948'800'000'000;
constexpr std::string_view kDay1 = "2026-09-20";
constexpr std::string_view kDay2 = "2026-09-21";
constexpr int64_t kHourUs = 3'600'000'000;
const eventstore::EventMetadata kMetadata{
    .correlation_id = {}, .causation_id = {}, .actor = "test"};

// A store clock the test moves; the store reads it at each commit.
struct TestClock {
  std::shared_ptr<std::atomic<int64_t>> now_us = std::make_shared<std::atomic<int64_t>>(0);
  void Set(int64_t time_us) { now_us->store(time_us); }
  eventstore::RocksDbOptions Options() const {
    eventstore::RocksDbOptions options;
    options.clock_us = [now_us = now_us] { return now_us->load(); };
    return options;
  }
};

domain::CapturePayment Capture(std::string order_number, int64_t amount_minor, std::string currency,
                               std::string reference = "tx-1") {
  return domain::CapturePayment{.order_number = std::move(order_number),
                                .processor = "cybersource",
                                .reference = std::move(reference),
                                .amount = {.minor_units = amount_minor, .currency = currency},
                                .card_type = "visa",
                                .card_last_digits = "1111",
                                .captured_at_us = kBeforeMidnightUs};
}

domain::Line SeatLine(std::string line_id, int64_t quantity, int64_t unit_price_minor) {
  return domain::Line{.line_id = std::move(line_id),
                      .product_type = "Seat",
                      .sku = "SEAT",
                      .title = "Seat in Demo Course",
                      .quantity = quantity,
                      .unit_price_minor = unit_price_minor,
                      .attributes = {}};
}

domain::PlaceOrder Place(std::string order_number, std::vector<domain::Line> lines,
                         std::string currency) {
  return ledger::testing::SamplePlaceOrder(std::move(order_number), std::move(lines),
                                           std::move(currency), kBeforeMidnightUs);
}

domain::RecordLineFulfilled Fulfill(std::string order_number, std::string line_id) {
  return domain::RecordLineFulfilled{.order_number = std::move(order_number),
                                     .line_id = std::move(line_id),
                                     .module = "enrollment",
                                     .external_reference = "",
                                     .codes = {},
                                     .fulfilled_at_us = kMidnightUs};
}

domain::RecordLineRevoked Revoke(std::string order_number, std::string line_id) {
  return domain::RecordLineRevoked{.order_number = std::move(order_number),
                                   .line_id = std::move(line_id),
                                   .module = "enrollment",
                                   .refund_reference = "refund-1",
                                   .revoked_at_us = kMidnightUs};
}

std::vector<RevenueRow> MustRange(const ProjectionView& view, std::string_view from_day,
                                  std::string_view to_day) {
  auto rows = RevenueProjection::Range(view, from_day, to_day);
  if (!rows) FAIL(rows.error().ToString());
  return std::move(*rows);
}

RevenueRow Row(std::string_view day, std::string_view currency, int64_t captured_minor,
               int64_t refunded_minor, uint64_t captures, uint64_t revocations) {
  return RevenueRow{.day = std::string(day),
                    .currency = std::string(currency),
                    .captured_minor = captured_minor,
                    .refunded_minor = refunded_minor,
                    .captures = captures,
                    .revocations = revocations};
}

// Appends an event past the domain's rules (under a fresh id); returns its position.
uint64_t AppendRaw(LedgerFixture& ledger, const domain::Event& event, std::string_view id_name) {
  eventstore::NewEvent raw = eventstore::ToNewEvent(event, kMetadata);
  raw.event_id = eventstore::testing::IdFor(id_name);
  auto appended = ledger.store().Append(domain::OrderStreamName(domain::EventOrderNumber(event)),
                                        eventstore::ExpectedVersion::Any(), std::span(&raw, 1));
  REQUIRE(appended.has_value());
  return appended->first_position;
}

TEST_CASE("UTC days of commit times, and which texts are days", "[projections][revenue]") {
  CHECK(RevenueProjection::UtcDay(0) == "1970-01-01");
  CHECK(RevenueProjection::UtcDay(kMidnightUs - 1) == std::string(kDay1));
  CHECK(RevenueProjection::UtcDay(kMidnightUs) == std::string(kDay2));
  CHECK(RevenueProjection::UtcDay(domain::kTimeUsMax) == "9999-12-31");
  CHECK_FALSE(RevenueProjection::UtcDay(-1).has_value());
  CHECK_FALSE(RevenueProjection::UtcDay(domain::kTimeUsMax + 1).has_value());

  CHECK(RevenueProjection::IsValidDay("2024-02-29"));
  CHECK(RevenueProjection::IsValidDay("1970-01-01"));
  for (std::string_view bad : {"2023-02-29", "2024-13-01", "2024-00-10", "2024-1-01", "2024-01-1",
                               "2024/01/01", "20240101", "", "2024-01-01 ", "+024-01-01"}) {
    INFO(bad);
    CHECK_FALSE(RevenueProjection::IsValidDay(bad));
  }
}

TEST_CASE("revenue per UTC commit day and currency, across midnight, with refunds",
          "[projections][revenue]") {
  TestClock clock;
  clock.Set(kBeforeMidnightUs);
  LedgerFixture ledger(clock.Options());
  // Day 1: a USD order of two lines and a EUR order.
  ledger.MustHandle(Capture("EDX-A", 4900, "USD"));
  ledger.MustHandle(Place("EDX-A", {SeatLine("1", 2, 1500), SeatLine("2", 1, 1900)}, "USD"));
  ledger.MustHandle(Capture("EDX-B", 3000, "EUR"));
  ledger.MustHandle(Place("EDX-B", {SeatLine("1", 1, 3000)}, "EUR"));
  // Day 2: a JPY order, an orphan and an excess capture in USD, two revocations.
  clock.Set(kMidnightUs);
  ledger.MustHandle(Capture("EDX-C", 5000, "JPY"));
  ledger.MustHandle(Place("EDX-C", {SeatLine("1", 1, 5000)}, "JPY"));
  ledger.MustHandle(Capture("EDX-D", 100, "USD"));
  ledger.MustHandle(Capture("EDX-A", 500, "USD", "tx-2"));
  ledger.MustHandle(Fulfill("EDX-A", "1"));
  ledger.MustHandle(Revoke("EDX-A", "1"));
  ledger.MustHandle(Fulfill("EDX-B", "1"));
  ledger.MustHandle(Revoke("EDX-B", "1"));
  ledger.MustHandle(Fulfill("EDX-C", "1"));

  auto runner = ledger.Runner<RevenueProjection>({.batch_events_max = 4, .idle_wait = 5ms});
  MustCatchUp(*runner);
  const ProjectionView view = runner->View();

  const std::vector<RevenueRow> both_days = {
      Row(kDay1, "EUR", 3000, 0, 1, 0),       Row(kDay1, "USD", 4900, 0, 1, 0),
      Row(kDay2, "EUR", 0, 3000, 0, 1),       Row(kDay2, "JPY", 5000, 0, 1, 0),
      Row(kDay2, "USD", 600, 2 * 1500, 2, 1),
  };
  CHECK(MustRange(view, kDay1, kDay2) == both_days);
  CHECK(MustRange(view, "2026-01-01", "2026-12-31") == both_days);
  CHECK(MustRange(view, kDay1, kDay1) ==
        std::vector<RevenueRow>(both_days.begin(), both_days.begin() + 2));
  CHECK(MustRange(view, kDay2, kDay2) ==
        std::vector<RevenueRow>(both_days.begin() + 2, both_days.end()));
  CHECK(MustRange(view, "2026-09-19", "2026-09-19").empty());
  CHECK(MustRange(view, kDay2, kDay1).empty());

  for (auto [from, to] : {std::pair{"2026-9-20"sv, kDay2}, std::pair{kDay1, "2026-02-30"sv},
                          std::pair{"d/"sv, kDay2}}) {
    auto refused = RevenueProjection::Range(view, from, to);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == ErrorCode::kInvalidArgument);
  }
}

// The revenue rows computed straight from the log, independently of the projection.
std::vector<RevenueRow> SumTheLog(eventstore::EventStore& store) {
  std::map<std::pair<std::string, std::string>, RevenueRow> rows;
  std::map<std::string, std::pair<std::string, std::map<std::string, int64_t>>> orders;
  for (const eventstore::RecordedEvent& record : eventstore::testing::ReadWholeLog(store)) {
    auto event = eventstore::DecodeEvent(record);
    REQUIRE(event.has_value());
    const std::string day = RevenueProjection::UtcDay(record.recorded_at_us).value();
    auto row = [&](const std::string& currency) -> RevenueRow& {
      RevenueRow& found = rows[{day, currency}];
      found.day = day;
      found.currency = currency;
      return found;
    };
    if (const auto* captured = std::get_if<domain::PaymentCaptured>(&*event)) {
      row(captured->amount.currency).captured_minor += captured->amount.minor_units;
      ++row(captured->amount.currency).captures;
    } else if (const auto* created = std::get_if<domain::OrderCreated>(&*event)) {
      auto& order = orders[created->order_number];
      order.first = created->currency;
      for (const auto& line : created->lines) {
        order.second[line.line_id] = line.quantity * line.unit_price_minor;
      }
    } else if (const auto* revoked = std::get_if<domain::LineRevoked>(&*event)) {
      const auto& order = orders.at(revoked->order_number);
      row(order.first).refunded_minor += order.second.at(revoked->line_id);
      ++row(order.first).revocations;
    }
  }
  std::vector<RevenueRow> sorted;
  for (auto& [key, row] : rows) sorted.push_back(std::move(row));
  return sorted;
}

TEST_CASE("revenue equals the log's sums, live and after a rebuild", "[projections][revenue]") {
  TestClock clock;
  clock.Set(kBeforeMidnightUs);
  LedgerFixture ledger(clock.Options());
  auto runner = ledger.Runner<RevenueProjection>({.batch_events_max = 16, .idle_wait = 5ms});
  runner->Start();

  testing::OrderWorkload workload(ledger.service(), 2026);
  for (int i = 0; i < 60; ++i) {
    clock.Set(kBeforeMidnightUs + i * 2 * kHourUs);  // Five days.
    const std::string order_number = workload.AddOrder();
    for (int step = 0; step < 4; ++step) workload.Step(order_number);
    if (i % 7 == 0) workload.AddOrphanPayment();
  }
  const uint64_t head = ledger.store().HeadPosition();
  REQUIRE(runner->WaitFor(head, 10s));
  runner->Stop();
  CHECK_FALSE(runner->failure().has_value());

  const std::vector<RevenueRow> expected = SumTheLog(ledger.store());
  REQUIRE(expected.size() >= 5);
  int revocations = 0;
  for (const RevenueRow& row : expected) revocations += static_cast<int>(row.revocations);
  CHECK(revocations > 0);  // The workload revokes lines: refunds are covered.
  CHECK(MustRange(runner->View(), "1970-01-01", "9999-12-31") == expected);

  // A fresh runner for the rebuild, as a tool would open one once the live runner is gone.
  runner.reset();
  runner = ledger.Runner<RevenueProjection>();
  const uint64_t generation = runner->generation();
  auto rebuilt = runner->RebuildNow();
  if (!rebuilt) FAIL(rebuilt.error().ToString());
  CHECK(runner->generation() != generation);
  CHECK(MustRange(runner->View(), "1970-01-01", "9999-12-31") == expected);
}

TEST_CASE("a day's sum that would overflow stops the runner with corruption",
          "[projections][revenue][damage]") {
  TestClock clock;
  clock.Set(kBeforeMidnightUs);
  LedgerFixture ledger(clock.Options());
  // Amounts far beyond the domain's limits, appended past its rules.
  domain::PaymentCaptured big{.order_number = "EDX-1",
                              .processor = "cybersource",
                              .reference = "tx-1",
                              .amount = {.minor_units = INT64_MAX - 10, .currency = "USD"},
                              .card_type = "",
                              .card_last_digits = "",
                              .captured_at_us = kBeforeMidnightUs,
                              .excess = false};
  const uint64_t first = AppendRaw(ledger, big, "big-1");
  big.order_number = "EDX-2";
  big.amount.minor_units = 11;
  const uint64_t second = AppendRaw(ledger, big, "big-2");

  auto runner = ledger.Runner<RevenueProjection>({.batch_events_max = 1, .idle_wait = 5ms});
  auto caught_up = runner->CatchUp();
  REQUIRE_FALSE(caught_up.has_value());
  CHECK(caught_up.error().code == ErrorCode::kCorruption);
  CHECK(caught_up.error().position == second);
  CHECK(runner->checkpoint() == first);
  CHECK(MustRange(runner->View(), kDay1, kDay1) ==
        std::vector<RevenueRow>{Row(kDay1, "USD", INT64_MAX - 10, 0, 1, 0)});
}

TEST_CASE("a revocation the projection cannot price stops the runner with corruption",
          "[projections][revenue][damage]") {
  const domain::LineRevoked cases[] = {
      // Before any OrderCreated, of a line the order lacks, of a line revoked before.
      {.order_number = "EDX-NONE",
       .line_id = "1",
       .module = "m",
       .refund_reference = "r",
       .revoked_at_us = 1},
      {.order_number = "EDX-A",
       .line_id = "9",
       .module = "m",
       .refund_reference = "r",
       .revoked_at_us = 1},
      {.order_number = "EDX-A",
       .line_id = "1",
       .module = "m",
       .refund_reference = "r2",
       .revoked_at_us = 2},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    INFO("case " << i);
    LedgerFixture damaged;
    damaged.MustHandle(Capture("EDX-A", 3000, "USD"));
    damaged.MustHandle(Place("EDX-A", {SeatLine("1", 1, 3000)}, "USD"));
    damaged.MustHandle(Fulfill("EDX-A", "1"));
    damaged.MustHandle(Revoke("EDX-A", "1"));
    const uint64_t good_head = damaged.store().HeadPosition();
    const uint64_t bad = AppendRaw(damaged, cases[i], fmt::format("bad-{}", i));
    REQUIRE(bad == good_head + 1);
    auto runner = damaged.Runner<RevenueProjection>();
    auto caught_up = runner->CatchUp();
    REQUIRE_FALSE(caught_up.has_value());
    CHECK(caught_up.error().code == ErrorCode::kCorruption);
    CHECK(caught_up.error().position == bad);
  }
}

TEST_CASE("damaged revenue rows decode to corruption, never a crash",
          "[projections][revenue][damage]") {
  const RevenueRow day = Row(kDay1, "USD", 4900, 3000, 2, 1);
  const std::string day_bytes = RevenueProjection::EncodeDayRow(day);
  auto decoded_day = RevenueProjection::DecodeDayRow(kDay1, "USD", day_bytes);
  REQUIRE(decoded_day.has_value());
  CHECK(*decoded_day == day);
  for (size_t size = 0; size < day_bytes.size(); ++size) {
    auto truncated =
        RevenueProjection::DecodeDayRow(kDay1, "USD", std::string_view(day_bytes).substr(0, size));
    REQUIRE_FALSE(truncated.has_value());
    CHECK(truncated.error().code == ErrorCode::kCorruption);
  }
  CHECK_FALSE(RevenueProjection::DecodeDayRow(kDay1, "USD", day_bytes + "x").has_value());
  // A negative amount is damage.
  CHECK_FALSE(RevenueProjection::DecodeDayRow(
                  kDay1, "USD", RevenueProjection::EncodeDayRow(Row(kDay1, "USD", -1, 0, 1, 0)))
                  .has_value());

  const RevenueOrder order{.currency = "JPY",
                           .lines = {{.line_id = "1", .amount_minor = 5000, .revoked = false},
                                     {.line_id = "2", .amount_minor = 0, .revoked = true}}};
  const std::string order_bytes = RevenueProjection::EncodeOrderRow(order);
  auto decoded_order = RevenueProjection::DecodeOrderRow(order_bytes);
  REQUIRE(decoded_order.has_value());
  CHECK(*decoded_order == order);
  for (size_t size = 0; size < order_bytes.size(); ++size) {
    auto truncated =
        RevenueProjection::DecodeOrderRow(std::string_view(order_bytes).substr(0, size));
    REQUIRE_FALSE(truncated.has_value());
    CHECK(truncated.error().code == ErrorCode::kCorruption);
  }
  for (size_t offset = 0; offset < order_bytes.size(); ++offset) {
    std::string flipped = order_bytes;
    flipped[offset] = static_cast<char>(0xff);
    auto result = RevenueProjection::DecodeOrderRow(flipped);  // May decode: must not crash.
    if (!result) CHECK(result.error().code == ErrorCode::kCorruption);
  }
  for (std::string_view garbage :
       {""sv, "\x01"sv, "garbage"sv, "\x01\x00\x00\x00\x03JPY\xff\xff\xff\xff"sv}) {
    auto result = RevenueProjection::DecodeOrderRow(garbage);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == ErrorCode::kCorruption);
  }
}

TEST_CASE("a damaged revenue row in the store is corruption for readers and the runner",
          "[projections][revenue][damage]") {
  TestClock clock;
  clock.Set(kBeforeMidnightUs);
  LedgerFixture ledger(clock.Options());
  ledger.MustHandle(Capture("EDX-A", 3000, "USD"));
  ledger.MustHandle(Place("EDX-A", {SeatLine("1", 1, 3000)}, "USD"));
  ledger.MustHandle(Fulfill("EDX-A", "1"));
  auto runner = ledger.Runner<RevenueProjection>();
  MustCatchUp(*runner);

  const std::string rows = fmt::format("proj/revenue/g/{:016x}/r/", runner->generation());
  eventstore::StateBatch batch = ledger.state().NewBatch();
  batch.Put(rows + "d/" + std::string(kDay1) + "/EUR", "\x01\x02\x03"sv);
  batch.Put(rows + "l/EDX-A", "\x01garbage"sv);
  REQUIRE(ledger.state().Write(batch).has_value());

  auto range = RevenueProjection::Range(runner->View(), kDay1, kDay1);
  REQUIRE_FALSE(range.has_value());
  CHECK(range.error().code == ErrorCode::kCorruption);

  // Pricing the revocation reads the damaged order row: the runner stops, it does not crash.
  ledger.MustHandle(Revoke("EDX-A", "1"));
  auto caught_up = runner->CatchUp();
  REQUIRE_FALSE(caught_up.has_value());
  CHECK(caught_up.error().code == ErrorCode::kCorruption);
}

}  // namespace
}  // namespace ledger::projections
