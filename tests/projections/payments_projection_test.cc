// The payments projection under its runner, fed by the command service: orphan payments appear
// and leave on placement, honour the minimum age and page with cursors; excess payments list
// every capture with what is to hand back; the live runner answers read-your-writes waits; a
// rebuild answers the same; damaged rows and events are kCorruption, never a crash.
#include "projections/payments_projection.h"

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <functional>
#include <span>

#include "eventstore/event_codec.h"
#include "ledger_fixture.h"
#include "projections/projection_runner.h"
#include "tests/support/sample_orders.h"

namespace ledger::projections {
namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;
using eventstore::ErrorCode;
using testing::LedgerFixture;
using testing::MustCatchUp;

constexpr int64_t kT0 = 1'790'000'000'000'000;
constexpr int64_t kMinuteUs = 60'000'000;
constexpr int64_t kHourUs = 60 * kMinuteUs;
const eventstore::EventMetadata kMetadata{
    .correlation_id = {}, .causation_id = {}, .actor = "test"};

domain::CapturePayment Capture(std::string order_number, int64_t amount_minor,
                               int64_t captured_at_us, std::string reference = "tx-1",
                               std::string currency = "USD") {
  domain::CapturePayment capture = ledger::testing::SampleCapture(
      order_number, amount_minor, std::move(currency), captured_at_us);
  capture.reference = std::move(reference);
  return capture;
}

domain::PlaceOrder Place(std::string order_number, int64_t total_minor,
                         std::string currency = "USD") {
  return ledger::testing::SamplePlaceOrder(std::move(order_number),
                                           {domain::Line{.line_id = "1",
                                                         .product_type = "Seat",
                                                         .sku = "SEAT",
                                                         .title = "Seat in Demo Course",
                                                         .quantity = 1,
                                                         .unit_price_minor = total_minor,
                                                         .attributes = {}}},
                                           std::move(currency), kT0 + kHourUs);
}

// Every page of a list, following the cursors.
template <typename Row, typename Page>
std::vector<Row> AllPages(const std::function<StoreResult<Page>(std::string)>& list) {
  std::vector<Row> rows;
  std::string cursor;
  for (int pages = 0; pages < 10'000; ++pages) {
    auto page = list(cursor);
    if (!page) FAIL(page.error().ToString());
    for (auto& row : page->rows) rows.push_back(std::move(row));
    if (page->next_cursor.empty()) return rows;
    cursor = page->next_cursor;
  }
  FAIL("paging never ended");
  return rows;
}

std::vector<OrphanPayment> AllOrphans(const ProjectionView& view, int64_t now_us,
                                      int64_t min_age_us, size_t limit) {
  return AllPages<OrphanPayment, OrphanPage>([&](std::string cursor) {
    return PaymentsProjection::ListOrphans(view, now_us, min_age_us, limit, cursor);
  });
}

std::vector<ExcessPayment> AllExcess(const ProjectionView& view, size_t limit) {
  return AllPages<ExcessPayment, ExcessPage>(
      [&](std::string cursor) { return PaymentsProjection::ListExcess(view, limit, cursor); });
}

std::vector<std::string> OrderNumbers(const std::vector<OrphanPayment>& orphans) {
  std::vector<std::string> numbers;
  for (const auto& orphan : orphans) numbers.push_back(orphan.order_number);
  return numbers;
}

TEST_CASE("orphan payments appear on capture and leave when the order is placed",
          "[projections][payments]") {
  LedgerFixture ledger;
  ledger.MustHandle(Capture("EDX-1", 4900, kT0 + 20 * kMinuteUs, "tx-a"));
  const auto second = ledger.MustHandle(Capture("EDX-2", 1500, kT0, "tx-b", "EUR"));
  ledger.MustHandle(Capture("EDX-3", 300, kT0 + 10 * kMinuteUs, "tx-c"));
  auto runner = ledger.Runner<PaymentsProjection>();
  MustCatchUp(*runner);

  std::vector<OrphanPayment> orphans = AllOrphans(runner->View(), kT0 + kHourUs, 0, 100);
  // Oldest capture first, whatever the order in the log.
  REQUIRE(OrderNumbers(orphans) == std::vector<std::string>{"EDX-2", "EDX-3", "EDX-1"});
  const PaymentCapture& capture = orphans[0].capture;
  CHECK(capture.processor == "cybersource");
  CHECK(capture.reference == "tx-b");
  CHECK(capture.amount == domain::Money{.minor_units = 1500, .currency = "EUR"});
  CHECK(capture.captured_at_us == kT0);
  CHECK(capture.card_last_digits == "1111");
  CHECK_FALSE(capture.excess);
  CHECK(capture.position == second.first_position);

  ledger.MustHandle(Place("EDX-3", 300));
  MustCatchUp(*runner);
  orphans = AllOrphans(runner->View(), kT0 + kHourUs, 0, 100);
  CHECK(OrderNumbers(orphans) == std::vector<std::string>{"EDX-2", "EDX-1"});
  auto placed = PaymentsProjection::Get(runner->View(), "EDX-3");
  REQUIRE(placed.has_value());
  REQUIRE(placed->has_value());
  CHECK((*placed)->placed);
  CHECK((*placed)->total_minor == 300);
  CHECK((*placed)->currency == "USD");
  CHECK((*placed)->captures.size() == 1);

  auto unknown = PaymentsProjection::Get(runner->View(), "EDX-404");
  REQUIRE(unknown.has_value());
  CHECK_FALSE(unknown->has_value());
}

TEST_CASE("a capture and its placement in one batch leave no orphan behind",
          "[projections][payments]") {
  LedgerFixture ledger;
  ledger.MustHandle(Capture("EDX-1", 4900, kT0));
  ledger.MustHandle(Capture("EDX-1", 100, kT0 + 1, "tx-2"));
  ledger.MustHandle(Place("EDX-1", 5000));
  auto runner = ledger.Runner<PaymentsProjection>();
  MustCatchUp(*runner);
  CHECK(AllOrphans(runner->View(), kT0 + kHourUs, 0, 10).empty());
}

TEST_CASE("orphan payments younger than the minimum age are not listed",
          "[projections][payments]") {
  LedgerFixture ledger;
  ledger.MustHandle(Capture("EDX-1", 100, kT0));
  ledger.MustHandle(Capture("EDX-2", 100, kT0 + kMinuteUs));
  ledger.MustHandle(Capture("EDX-3", 100, kT0 + 10 * kMinuteUs));
  auto runner = ledger.Runner<PaymentsProjection>();
  MustCatchUp(*runner);
  const ProjectionView view = runner->View();
  const int64_t now_us = kT0 + 10 * kMinuteUs;

  CHECK(OrderNumbers(AllOrphans(view, now_us, 5 * kMinuteUs, 10)) ==
        std::vector<std::string>{"EDX-1", "EDX-2"});
  // Exactly the minimum age is old enough.
  CHECK(OrderNumbers(AllOrphans(view, now_us, 9 * kMinuteUs, 10)) ==
        std::vector<std::string>{"EDX-1", "EDX-2"});
  CHECK(OrderNumbers(AllOrphans(view, now_us, 10 * kMinuteUs, 10)) ==
        std::vector<std::string>{"EDX-1"});
  CHECK(AllOrphans(view, now_us, 0, 10).size() == 3);
  // A cutoff before the epoch lists nothing; a negative age is the caller's mistake.
  CHECK(AllOrphans(view, now_us, INT64_MAX, 10).empty());
  CHECK(AllOrphans(view, INT64_MIN, 1, 10).empty());
  auto negative = PaymentsProjection::ListOrphans(view, now_us, -1, 10);
  REQUIRE_FALSE(negative.has_value());
  CHECK(negative.error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("orphan and excess lists page with cursors", "[projections][payments]") {
  LedgerFixture ledger;
  constexpr int kOrders = 23;
  std::vector<std::string> expected;
  for (int i = 0; i < kOrders; ++i) {
    const std::string order_number = fmt::format("EDX-{}", 100 + i);
    // Several orders share a capture time: their order number decides.
    ledger.MustHandle(Capture(order_number, 100, kT0 + (i / 3) * kMinuteUs, "tx-1"));
    ledger.MustHandle(Capture(order_number, 100, kT0 + (i / 3) * kMinuteUs, "tx-2"));
    expected.push_back(order_number);
  }
  auto runner = ledger.Runner<PaymentsProjection>();
  MustCatchUp(*runner);
  const ProjectionView view = runner->View();

  for (size_t limit : {size_t{1}, size_t{5}, size_t{23}, size_t{100}}) {
    INFO("limit " << limit);
    const std::vector<OrphanPayment> orphans = AllOrphans(view, kT0 + kHourUs, 0, limit);
    REQUIRE(orphans.size() == 2 * kOrders);
    for (size_t i = 0; i < orphans.size(); ++i) {
      CHECK(orphans[i].order_number == expected[i / 2]);
      CHECK(orphans[i].capture.reference == (i % 2 == 0 ? "tx-1" : "tx-2"));
    }
    const std::vector<ExcessPayment> excess = AllExcess(view, limit);
    REQUIRE(excess.size() == kOrders);
    for (size_t i = 0; i < excess.size(); ++i) CHECK(excess[i].order.order_number == expected[i]);
  }

  // A page that holds exactly what is left has no next page (no cursor to an empty one).
  auto whole_orphans = PaymentsProjection::ListOrphans(view, kT0 + kHourUs, 0, 2 * kOrders);
  REQUIRE(whole_orphans.has_value());
  CHECK(whole_orphans->rows.size() == 2 * kOrders);
  CHECK(whole_orphans->next_cursor.empty());
  auto whole_excess = PaymentsProjection::ListExcess(view, kOrders);
  REQUIRE(whole_excess.has_value());
  CHECK(whole_excess->rows.size() == kOrders);
  CHECK(whole_excess->next_cursor.empty());

  auto first = PaymentsProjection::ListOrphans(view, kT0 + kHourUs, 0, 5);
  REQUIRE(first.has_value());
  CHECK(first->rows.size() == 5);
  CHECK_FALSE(first->next_cursor.empty());
  // A cursor from another list is refused.
  auto foreign = PaymentsProjection::ListExcess(view, 5, first->next_cursor);
  REQUIRE_FALSE(foreign.has_value());
  CHECK(foreign.error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("excess payments list every capture and what is to hand back",
          "[projections][payments]") {
  LedgerFixture ledger;
  // A split payment that adds up to the total: two captures, nothing to hand back.
  ledger.MustHandle(Capture("EDX-SPLIT", 3000, kT0, "tx-1"));
  ledger.MustHandle(Capture("EDX-SPLIT", 2000, kT0 + 1, "tx-2"));
  ledger.MustHandle(Place("EDX-SPLIT", 5000));
  // One capture, placed: not excess.
  ledger.MustHandle(Capture("EDX-ONE", 5000, kT0));
  ledger.MustHandle(Place("EDX-ONE", 5000));
  // Paid twice before placement.
  ledger.MustHandle(Capture("EDX-TWICE", 5000, kT0, "tx-1"));
  ledger.MustHandle(Capture("EDX-TWICE", 5000, kT0 + 2, "tx-2"));
  ledger.MustHandle(Place("EDX-TWICE", 5000));
  // A capture after placement, flagged excess.
  ledger.MustHandle(Capture("EDX-LATE", 5000, kT0, "tx-1"));
  ledger.MustHandle(Place("EDX-LATE", 5000));
  ledger.MustHandle(Capture("EDX-LATE", 2500, kT0 + kHourUs, "tx-2"));
  // Two captures and no order yet: excess and orphan at once.
  ledger.MustHandle(Capture("EDX-NONE", 700, kT0, "tx-1", "JPY"));
  ledger.MustHandle(Capture("EDX-NONE", 800, kT0 + 3, "tx-2", "JPY"));

  auto runner = ledger.Runner<PaymentsProjection>();
  MustCatchUp(*runner);
  const std::vector<ExcessPayment> excess = AllExcess(runner->View(), 2);
  REQUIRE(excess.size() == 4);

  CHECK(excess[0].order.order_number == "EDX-SPLIT");
  CHECK(excess[0].captured_minor == 5000);
  CHECK(excess[0].excess_minor == std::optional<int64_t>(0));

  CHECK(excess[1].order.order_number == "EDX-TWICE");
  CHECK(excess[1].currency == "USD");
  CHECK(excess[1].captured_minor == 10000);
  CHECK(excess[1].excess_minor == std::optional<int64_t>(5000));
  REQUIRE(excess[1].order.captures.size() == 2);
  CHECK(excess[1].order.captures[0].reference == "tx-1");
  CHECK(excess[1].order.captures[1].reference == "tx-2");

  CHECK(excess[2].order.order_number == "EDX-LATE");
  CHECK(excess[2].excess_minor == std::optional<int64_t>(2500));
  REQUIRE(excess[2].order.captures.size() == 2);
  CHECK_FALSE(excess[2].order.captures[0].excess);
  CHECK(excess[2].order.captures[1].excess);
  CHECK(excess[2].order.captures[1].amount.minor_units == 2500);

  CHECK(excess[3].order.order_number == "EDX-NONE");
  CHECK_FALSE(excess[3].order.placed);
  CHECK(excess[3].currency == "JPY");
  CHECK(excess[3].captured_minor == 1500);
  CHECK_FALSE(excess[3].excess_minor.has_value());
  CHECK(OrderNumbers(AllOrphans(runner->View(), kT0 + kHourUs, 0, 10)) ==
        std::vector<std::string>{"EDX-NONE", "EDX-NONE"});
}

TEST_CASE("money beyond the total or in another currency is excess, per currency",
          "[projections][payments]") {
  LedgerFixture ledger;
  // Paid in EUR only, placed as a free USD order: 5.00 EUR the order cannot use.
  ledger.MustHandle(Capture("EDX-EUR", 500, kT0, "tx-1", "EUR"));
  ledger.MustHandle(Place("EDX-EUR", 0));
  // A split USD payment that adds up to the total, and 5.00 EUR beside it.
  ledger.MustHandle(Capture("EDX-MIXED", 500, kT0, "tx-1", "EUR"));
  ledger.MustHandle(Capture("EDX-MIXED", 500, kT0 + 1, "tx-2"));
  ledger.MustHandle(Capture("EDX-MIXED", 500, kT0 + 2, "tx-3"));
  ledger.MustHandle(Place("EDX-MIXED", 1000));
  // One capture of 15.00 for a total of 10.00.
  ledger.MustHandle(Capture("EDX-OVER", 1500, kT0));
  ledger.MustHandle(Place("EDX-OVER", 1000));
  // One capture that covers the total exactly: nothing to look at.
  ledger.MustHandle(Capture("EDX-EXACT", 1000, kT0));
  ledger.MustHandle(Place("EDX-EXACT", 1000));
  // Not placed yet, in two currencies: what is excess is not known.
  ledger.MustHandle(Capture("EDX-NONE", 700, kT0, "tx-1", "JPY"));
  ledger.MustHandle(Capture("EDX-NONE", 800, kT0 + 3, "tx-2", "EUR"));

  auto runner = ledger.Runner<PaymentsProjection>({.batch_events_max = 3, .idle_wait = 5ms});
  MustCatchUp(*runner);
  const std::vector<ExcessPayment> excess = AllExcess(runner->View(), 2);
  REQUIRE(excess.size() == 4);

  CHECK(excess[0].order.order_number == "EDX-EUR");
  CHECK(excess[0].currency == "USD");
  CHECK(excess[0].captured_minor == 0);
  CHECK(excess[0].excess_minor == std::optional<int64_t>(0));
  CHECK(
      excess[0].other_currencies ==
      std::vector<CurrencyExcess>{{.currency = "EUR", .captured_minor = 500, .excess_minor = 500}});

  CHECK(excess[1].order.order_number == "EDX-MIXED");
  CHECK(excess[1].captured_minor == 1000);
  CHECK(excess[1].excess_minor == std::optional<int64_t>(0));
  CHECK(
      excess[1].other_currencies ==
      std::vector<CurrencyExcess>{{.currency = "EUR", .captured_minor = 500, .excess_minor = 500}});

  CHECK(excess[2].order.order_number == "EDX-OVER");
  CHECK(excess[2].captured_minor == 1500);
  CHECK(excess[2].excess_minor == std::optional<int64_t>(500));
  CHECK(excess[2].other_currencies.empty());

  CHECK(excess[3].order.order_number == "EDX-NONE");
  CHECK(excess[3].currency == "JPY");
  CHECK_FALSE(excess[3].excess_minor.has_value());
  CHECK(excess[3].other_currencies ==
        std::vector<CurrencyExcess>{
            {.currency = "EUR", .captured_minor = 800, .excess_minor = std::nullopt}});

  // A rebuild, in one walk or split by stream, lists the same.
  const auto caught_up_rows = testing::AllRows(*runner);
  runner.reset();
  for (const size_t partitions : {size_t{1}, size_t{3}}) {
    CAPTURE(partitions);
    auto rebuilding = ledger.Runner<PaymentsProjection>(
        {.batch_events_max = 3, .idle_wait = 5ms, .rebuild_partitions = partitions});
    auto rebuilt = rebuilding->RebuildNow();
    if (!rebuilt) FAIL(rebuilt.error().ToString());
    CHECK(AllExcess(rebuilding->View(), 2) == excess);
    CHECK(testing::AllRows(*rebuilding) == caught_up_rows);
  }
}

TEST_CASE("the live payments runner answers read-your-writes waits", "[projections][payments]") {
  LedgerFixture ledger;
  auto runner = ledger.Runner<PaymentsProjection>({.batch_events_max = 100, .idle_wait = 5ms});
  runner->Start();

  const auto captured = ledger.MustHandle(Capture("EDX-1", 4900, kT0));
  REQUIRE(runner->WaitFor(captured.last_position, 5s));
  ProjectionView view = runner->View();
  CHECK(view.position() >= captured.last_position);
  CHECK(OrderNumbers(AllOrphans(view, kT0, 0, 10)) == std::vector<std::string>{"EDX-1"});

  const auto placed = ledger.MustHandle(Place("EDX-1", 4900));
  REQUIRE(runner->WaitFor(placed.last_position, 5s));
  CHECK(AllOrphans(runner->View(), kT0, 0, 10).empty());
  // The view taken before the placement still answers as it was.
  CHECK(AllOrphans(view, kT0, 0, 10).size() == 1);
  runner->Stop();
  CHECK_FALSE(runner->failure().has_value());
}

TEST_CASE("a rebuilt payments projection answers the same", "[projections][payments]") {
  LedgerFixture ledger;
  for (int i = 0; i < 40; ++i) {
    const std::string order_number = fmt::format("EDX-{}", 200 + i);
    ledger.MustHandle(Capture(order_number, 1000 + i, kT0 + i * kMinuteUs, "tx-1"));
    if (i % 3 == 0) ledger.MustHandle(Capture(order_number, 10, kT0 + i, "tx-2"));
    if (i % 2 == 0) ledger.MustHandle(Place(order_number, 1000 + i));
    if (i % 4 == 0) ledger.MustHandle(Capture(order_number, 5, kT0 + kHourUs, "tx-3"));
  }
  auto runner = ledger.Runner<PaymentsProjection>({.batch_events_max = 7, .idle_wait = 5ms});
  MustCatchUp(*runner);
  const uint64_t generation = runner->generation();
  const auto orphans = AllOrphans(runner->View(), kT0 + kHourUs, 10 * kMinuteUs, 6);
  const auto excess = AllExcess(runner->View(), 6);
  CHECK(orphans.size() == 20 + 7);  // Odd i (unplaced), twice when i % 3 == 0 too.
  CHECK(excess.size() == 20);       // i % 3 == 0 or i % 4 == 0.

  const auto caught_up_rows = testing::AllRows(*runner);
  runner.reset();
  // One walk, and walks in parallel each applying the streams that hash to it
  // (PartitionedByStream), give the same rows byte for byte.
  for (const size_t partitions : {size_t{1}, size_t{3}, size_t{7}}) {
    CAPTURE(partitions);
    auto rebuilding = ledger.Runner<PaymentsProjection>(
        {.batch_events_max = 7, .idle_wait = 5ms, .rebuild_partitions = partitions});
    const uint64_t before = rebuilding->generation();
    auto rebuilt = rebuilding->RebuildNow();
    if (!rebuilt) FAIL(rebuilt.error().ToString());
    CHECK(rebuilding->generation() != before);
    CHECK(rebuilding->generation() != generation);
    CHECK(AllOrphans(rebuilding->View(), kT0 + kHourUs, 10 * kMinuteUs, 6) == orphans);
    CHECK(AllExcess(rebuilding->View(), 6) == excess);
    CHECK(testing::AllRows(*rebuilding) == caught_up_rows);
  }
}

TEST_CASE("damaged payments rows decode to corruption, never a crash",
          "[projections][payments][damage]") {
  const OrderPayments row{
      .order_number = "EDX-1",
      .placed = true,
      .placed_position = 9,
      .currency = "USD",
      .total_minor = 4900,
      .excess_since_position = 12,
      .captures = {PaymentCapture{.processor = "paypal",
                                  .reference = "PAY-1",
                                  .amount = {.minor_units = 4900, .currency = "USD"},
                                  .card_type = "",
                                  .card_last_digits = "",
                                  .captured_at_us = kT0,
                                  .excess = false,
                                  .position = 3,
                                  .recorded_at_us = kT0 + 5},
                   PaymentCapture{.processor = "cybersource",
                                  .reference = "tx-9",
                                  .amount = {.minor_units = 1, .currency = "USD"},
                                  .card_type = "visa",
                                  .card_last_digits = "4242",
                                  .captured_at_us = kT0 + 1,
                                  .excess = true,
                                  .position = 12,
                                  .recorded_at_us = kT0 + 6}}};
  const std::string bytes = PaymentsProjection::EncodeRow(row);
  auto decoded = PaymentsProjection::DecodeRow(bytes);
  REQUIRE(decoded.has_value());
  CHECK(*decoded == row);

  // Every truncation, and one byte too many.
  for (size_t size = 0; size < bytes.size(); ++size) {
    auto truncated = PaymentsProjection::DecodeRow(std::string_view(bytes).substr(0, size));
    REQUIRE_FALSE(truncated.has_value());
    CHECK(truncated.error().code == ErrorCode::kCorruption);
  }
  CHECK_FALSE(PaymentsProjection::DecodeRow(bytes + "x").has_value());
  // A huge text length or capture count is damage, not an allocation.
  for (size_t offset = 1; offset < bytes.size(); ++offset) {
    std::string flipped = bytes;
    flipped[offset] = static_cast<char>(0xff);
    auto result = PaymentsProjection::DecodeRow(flipped);  // May decode: must not crash.
    if (!result) CHECK(result.error().code == ErrorCode::kCorruption);
  }
  for (std::string_view garbage : {""sv, "\x01"sv, "garbage"sv,
                                   "\x01\x00\x00\x00\x05"
                                   "EDX-1"sv}) {
    auto result = PaymentsProjection::DecodeRow(garbage);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == ErrorCode::kCorruption);
  }
  const std::string capture = PaymentsProjection::EncodeCapture(row.captures[1]);
  REQUIRE(PaymentsProjection::DecodeCapture(capture).has_value());
  for (size_t size = 0; size < capture.size(); ++size) {
    auto truncated = PaymentsProjection::DecodeCapture(std::string_view(capture).substr(0, size));
    REQUIRE_FALSE(truncated.has_value());
    CHECK(truncated.error().code == ErrorCode::kCorruption);
  }
}

TEST_CASE("a damaged payments row in the store is corruption for readers and the runner",
          "[projections][payments][damage]") {
  LedgerFixture ledger;
  ledger.MustHandle(Capture("EDX-1", 100, kT0, "tx-1"));
  ledger.MustHandle(Capture("EDX-1", 100, kT0, "tx-2"));
  auto runner = ledger.Runner<PaymentsProjection>();
  MustCatchUp(*runner);

  const std::string rows = fmt::format("proj/payments/g/{:016x}/r/", runner->generation());
  eventstore::StateBatch batch = ledger.state().NewBatch();
  batch.Put(rows + "o/EDX-1", "\x01garbage");
  batch.Put(rows + fmt::format("x/{:016x}/EDX-1/0000", kT0), "\x00\x00"sv);
  REQUIRE(ledger.state().Write(batch).has_value());

  const ProjectionView view = runner->View();
  auto got = PaymentsProjection::Get(view, "EDX-1");
  REQUIRE_FALSE(got.has_value());
  CHECK(got.error().code == ErrorCode::kCorruption);
  auto excess = PaymentsProjection::ListExcess(view, 10);
  REQUIRE_FALSE(excess.has_value());
  CHECK(excess.error().code == ErrorCode::kCorruption);
  auto orphans = PaymentsProjection::ListOrphans(view, kT0, 0, 10);
  REQUIRE_FALSE(orphans.has_value());
  CHECK(orphans.error().code == ErrorCode::kCorruption);

  // The runner reads the damaged row to apply the next capture: it stops, it does not crash.
  ledger.MustHandle(Capture("EDX-1", 100, kT0, "tx-3"));
  auto caught_up = runner->CatchUp();
  REQUIRE_FALSE(caught_up.has_value());
  CHECK(caught_up.error().code == ErrorCode::kCorruption);
}

TEST_CASE("a second OrderCreated stops the payments runner with corruption at its position",
          "[projections][payments][damage]") {
  LedgerFixture ledger;
  ledger.MustHandle(Capture("EDX-1", 100, kT0));
  const auto placed = ledger.MustHandle(Place("EDX-1", 100));
  // The placement again, appended past the domain's rules under a fresh event id.
  eventstore::NewEvent again = eventstore::ToNewEvent(placed.events.front(), kMetadata);
  again.event_id = eventstore::testing::IdFor("second OrderCreated");
  auto appended = ledger.store().Append(domain::OrderStreamName("EDX-1"),
                                        eventstore::ExpectedVersion::Any(), std::span(&again, 1));
  REQUIRE(appended.has_value());

  auto runner = ledger.Runner<PaymentsProjection>();
  auto caught_up = runner->CatchUp();
  REQUIRE_FALSE(caught_up.has_value());
  CHECK(caught_up.error().code == ErrorCode::kCorruption);
  CHECK(caught_up.error().position == appended->first_position);
  CHECK(runner->checkpoint() < appended->first_position);
}

TEST_CASE("a capture outside its order's stream stops the payments runner naming it",
          "[projections][payments][damage]") {
  LedgerFixture ledger;
  ledger.MustHandle(Capture("EDX-1", 100, kT0));
  const auto other = ledger.MustHandle(Capture("EDX-2", 100, kT0, "tx-2"));
  // EDX-2's capture again, in EDX-1's stream: a rebuild split by stream would apply it in the
  // wrong walk, so it is refused.
  eventstore::NewEvent stray = eventstore::ToNewEvent(other.events.front(), kMetadata);
  stray.event_id = eventstore::testing::IdFor("stray capture");
  auto appended = ledger.store().Append(domain::OrderStreamName("EDX-1"),
                                        eventstore::ExpectedVersion::Any(), std::span(&stray, 1));
  REQUIRE(appended.has_value());

  auto runner = ledger.Runner<PaymentsProjection>({.batch_events_max = 1});
  auto caught_up = runner->CatchUp();
  REQUIRE_FALSE(caught_up.has_value());
  CHECK(caught_up.error().code == ErrorCode::kCorruption);
  CHECK(caught_up.error().position == appended->first_position);
  CHECK_THAT(caught_up.error().message, Catch::Contains("order-EDX-1"));
  CHECK(runner->checkpoint() == appended->first_position - 1);
}

}  // namespace
}  // namespace ledger::projections
