// The command service against the real RocksDB store: commands become events in the order's
// stream, rejections write nothing, repeats are idempotent, racing writers keep the log
// consistent, and folding the stored events always gives the state the service returned.
#include "eventstore/order_command_service.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <thread>

#include "eventstore/event_codec.h"
#include "store_test_support.h"
#include "tests/support/sample_orders.h"

namespace ledger::eventstore {
namespace {

using testing::RocksDbHarness;

constexpr int64_t kT0 = 1'790'000'000'000'000;
const EventMetadata kMetadata{.correlation_id = {}, .causation_id = {}, .actor = "test"};

domain::CapturePayment Capture(std::string order_number, int64_t amount_minor,
                               std::string reference = "tx-1") {
  return domain::CapturePayment{.order_number = std::move(order_number),
                                .processor = "cybersource",
                                .reference = std::move(reference),
                                .amount = {.minor_units = amount_minor, .currency = "USD"},
                                .card_type = "visa",
                                .card_last_digits = "1111",
                                .captured_at_us = kT0};
}

domain::Line SeatLine(std::string line_id, int64_t unit_price_minor) {
  return domain::Line{.line_id = std::move(line_id),
                      .product_type = "Seat",
                      .sku = "SEAT-" + std::to_string(unit_price_minor),
                      .title = "Seat in Demo Course",
                      .quantity = 1,
                      .unit_price_minor = unit_price_minor,
                      .attributes = {{.name = "course_key", .value = "course-v1:edX+Demo+2026"},
                                     {.name = "certificate_type", .value = "verified"}}};
}

domain::PlaceOrder Place(std::string order_number, std::vector<domain::Line> lines) {
  return ledger::testing::SamplePlaceOrder(std::move(order_number), std::move(lines), "USD",
                                           kT0 + 1);
}

CommandOutcome MustHandle(OrderCommandService& service, const domain::Command& command) {
  auto result = service.Handle(command, kMetadata);
  INFO(domain::CommandTypeName(command));
  if (!result) FAIL(result.error().ToString());
  return std::move(result).value();
}

std::vector<std::string> StreamTypes(EventStore& store, std::string_view order_number) {
  auto events =
      store.ReadStream(domain::OrderStreamName(order_number), Direction::kForward, 0, 1000);
  REQUIRE(events.has_value());
  std::vector<std::string> types;
  for (const auto& event : *events) types.push_back(event.event_type);
  return types;
}

TEST_CASE(
    "Given a captured payment, When the order is placed, Then OrderCreated and PostCheckout "
    "follow the capture in the order's stream",
    "[command_service]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store());
  MustHandle(service, Capture("EDX-100042", 4900));

  const CommandOutcome placed = MustHandle(service, Place("EDX-100042", {SeatLine("1", 4900)}));

  CHECK(placed.order_number == "EDX-100042");
  REQUIRE(placed.events.size() == 2);
  CHECK(placed.last_position == placed.first_position + 1);
  CHECK(placed.order.stream_version == 2u);
  CHECK(placed.order.state.placed());
  CHECK(placed.order.state.status == domain::OrderStatus::kOpen);
  CHECK(StreamTypes(harness.store(), "EDX-100042") ==
        std::vector<std::string>{"PaymentCaptured", "OrderCreated", "PostCheckout"});
}

TEST_CASE(
    "Given no payment, When a paid order is placed, Then it is rejected and nothing is "
    "written",
    "[command_service]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store());
  auto result = service.Handle(Place("EDX-100043", {SeatLine("1", 4900)}), kMetadata);
  REQUIRE_FALSE(result.has_value());
  REQUIRE(result.error().rejection.has_value());
  CHECK(result.error().rejection->code == domain::RejectionCode::kPaymentMissing);
  CHECK(harness.store().HeadPosition() == 0);
}

TEST_CASE(
    "Given a placed order, When the same placement and capture arrive again, Then the "
    "answer is the same and the log does not grow",
    "[command_service]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store());
  MustHandle(service, Capture("EDX-100044", 4900));
  const CommandOutcome first = MustHandle(service, Place("EDX-100044", {SeatLine("1", 4900)}));
  const uint64_t head = harness.store().HeadPosition();

  const CommandOutcome again = MustHandle(service, Place("EDX-100044", {SeatLine("1", 4900)}));
  const CommandOutcome capture_again = MustHandle(service, Capture("EDX-100044", 4900));

  CHECK(again.idempotent_repeat);
  CHECK(again.events.empty());
  CHECK(again.order.state == first.order.state);
  CHECK(capture_again.idempotent_repeat);
  CHECK(harness.store().HeadPosition() == head);
}

TEST_CASE(
    "Given a placed order, When a different basket is placed under its number, Then it is "
    "a duplicate order attempt",
    "[command_service]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store());
  MustHandle(service, Capture("EDX-100045", 9800));
  MustHandle(service, Place("EDX-100045", {SeatLine("1", 4900)}));
  auto result = service.Handle(Place("EDX-100045", {SeatLine("1", 9800)}), kMetadata);
  REQUIRE_FALSE(result.has_value());
  REQUIRE(result.error().rejection.has_value());
  CHECK(result.error().rejection->code == domain::RejectionCode::kDuplicateOrderAttempt);
}

TEST_CASE("Load as of a position gives the order as it was then", "[command_service]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store());
  const CommandOutcome captured = MustHandle(service, Capture("EDX-100046", 4900));
  MustHandle(service, Place("EDX-100046", {SeatLine("1", 4900)}));

  auto before = service.Load("EDX-100046", captured.last_position);
  REQUIRE(before.has_value());
  CHECK_FALSE(before->state.placed());
  CHECK(before->stream_version == 0u);
  auto now = service.Load("EDX-100046");
  REQUIRE(now.has_value());
  CHECK(now->state.placed());
}

TEST_CASE(
    "Given a stored event that cannot apply, When the order is loaded or a command handled, "
    "Then the answer is corruption naming its position, never a crash",
    "[command_service]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store());
  MustHandle(service, Capture("EDX-100047", 4900));
  MustHandle(service, Place("EDX-100047", {SeatLine("1", 4900)}));
  // What an old buggy version, or someone editing the log, could have written: line 9 of an
  // order that has only line 1.
  const domain::LineFulfilled bad{.order_number = "EDX-100047",
                                  .line_id = "9",
                                  .module = "EnrollmentFulfillmentModule",
                                  .attempt = 1,
                                  .external_reference = "",
                                  .codes = {},
                                  .fulfilled_at_us = kT0 + 2};
  const std::vector<NewEvent> raw = {ToNewEvent(bad, kMetadata)};
  auto appended =
      harness.store().Append(domain::OrderStreamName("EDX-100047"), ExpectedVersion::Any(), raw);
  REQUIRE(appended.has_value());

  auto loaded = service.Load("EDX-100047");
  REQUIRE_FALSE(loaded.has_value());
  CHECK(loaded.error().code == ErrorCode::kCorruption);
  CHECK(loaded.error().position == appended->first_position);
  INFO(loaded.error().message);
  CHECK(loaded.error().message.find("the order has no line 9") != std::string::npos);
  CHECK(loaded.error().message.find("position " + std::to_string(appended->first_position)) !=
        std::string::npos);

  domain::RecordLineFulfilled fulfill{.order_number = "EDX-100047",
                                      .line_id = "1",
                                      .module = "EnrollmentFulfillmentModule",
                                      .external_reference = "",
                                      .codes = {},
                                      .fulfilled_at_us = kT0 + 3};
  auto handled = service.Handle(fulfill, kMetadata);
  REQUIRE_FALSE(handled.has_value());
  REQUIRE(handled.error().store_error.has_value());
  CHECK(handled.error().store_error->code == ErrorCode::kCorruption);
  CHECK(handled.error().store_error->position == appended->first_position);
}

TEST_CASE("Writers racing to place the same order leave exactly one placement",
          "[command_service][concurrency]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store());
  MustHandle(service, Capture("EDX-100047", 4900));

  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<std::optional<CommandResult>> results(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[static_cast<size_t>(i)] =
          service.Handle(Place("EDX-100047", {SeatLine("1", 4900)}), kMetadata);
    });
  }
  for (auto& thread : threads) thread.join();

  int writers = 0;
  for (const auto& result : results) {
    REQUIRE(result->has_value());
    if (!(*result)->idempotent_repeat) ++writers;
    CHECK((*result)->order.state.placed());
  }
  CHECK(writers == 1);
  CHECK(StreamTypes(harness.store(), "EDX-100047") ==
        std::vector<std::string>{"PaymentCaptured", "OrderCreated", "PostCheckout"});
  testing::CheckLogInvariants(harness.store());
}

TEST_CASE("Writers racing to record outcomes of different lines of one order all land",
          "[command_service][concurrency]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store());
  constexpr int kLines = 6;
  std::vector<domain::Line> lines;
  for (int i = 0; i < kLines; ++i) lines.push_back(SeatLine(std::to_string(i + 1), 1000));
  MustHandle(service, Capture("EDX-100048", 1000 * kLines));
  MustHandle(service, Place("EDX-100048", lines));

  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < kLines; ++i) {
    threads.emplace_back([&, i] {
      const std::string line_id = std::to_string(i + 1);
      domain::Command command =
          i % 2 == 0 ? domain::Command(domain::RecordLineFulfilled{.order_number = "EDX-100048",
                                                                   .line_id = line_id,
                                                                   .module = "EnrollmentModule",
                                                                   .external_reference = "",
                                                                   .codes = {},
                                                                   .fulfilled_at_us = kT0 + 10})
                     : domain::Command(
                           domain::RecordFulfillmentFailed{.order_number = "EDX-100048",
                                                           .line_id = line_id,
                                                           .module = "EnrollmentModule",
                                                           .kind = domain::FailureKind::kNetwork,
                                                           .message = "connection refused",
                                                           .retryable = true,
                                                           .failed_at_us = kT0 + 10});
      if (!service.Handle(command, kMetadata)) ++failures;
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures == 0);

  auto loaded = service.Load("EDX-100048");
  REQUIRE(loaded.has_value());
  CHECK(loaded->state.status == domain::OrderStatus::kFulfillmentError);
  for (int i = 0; i < kLines; ++i) {
    const auto* line = loaded->state.FindLine(std::to_string(i + 1));
    REQUIRE(line != nullptr);
    CHECK(line->status == (i % 2 == 0 ? domain::LineStatus::kComplete
                                      : domain::LineStatus::kFulfillmentNetworkError));
  }
  testing::CheckLogInvariants(harness.store());
}

// Random commands against a few orders: every answer the service gives equals a fresh fold of
// what it stored, whether the command was accepted, repeated or rejected.
TEST_CASE("Folding the stored events always reproduces the state the service returned",
          "[command_service][property]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store());
  std::mt19937_64 random(20261122);
  const std::vector<std::string> orders = {"EDX-200001", "EDX-200002", "EDX-200003"};
  const std::vector<std::string> line_ids = {"1", "2", "3"};
  auto pick = [&](const auto& items) { return items[random() % items.size()]; };
  const size_t steps = testing::Scaled(600, 150);
  int64_t now = kT0;
  size_t accepted = 0;

  for (size_t step = 0; step < steps; ++step) {
    now += 1000;
    const std::string order = pick(orders);
    const std::string line = pick(line_ids);
    domain::Command command;
    switch (random() % 7) {
      case 0:
        command = Capture(order, static_cast<int64_t>(1000 + random() % 3 * 1000),
                          "tx-" + std::to_string(random() % 4));
        break;
      case 1:
        command = Place(order, {SeatLine("1", 1000), SeatLine("2", 1000), SeatLine("3", 1000)});
        break;
      case 2:
        command = domain::RecordLineFulfilled{.order_number = order,
                                              .line_id = line,
                                              .module = "EnrollmentModule",
                                              .external_reference = "",
                                              .codes = {},
                                              .fulfilled_at_us = now};
        break;
      case 3:
        command = domain::RecordFulfillmentFailed{
            .order_number = order,
            .line_id = line,
            .module = "EnrollmentModule",
            .kind = static_cast<domain::FailureKind>(1 + random() % 4),
            .message = "failed at step " + std::to_string(step),
            .retryable = random() % 2 == 0,
            .failed_at_us = now};
        break;
      case 4:
        command = domain::RequestFulfillmentRetry{.order_number = order,
                                                  .requested_by = "ops",
                                                  .reason = "step " + std::to_string(step),
                                                  .line_ids = {},
                                                  .automatic = false,
                                                  .requested_at_us = now};
        break;
      case 5:
        command = domain::RecordLineRevoked{.order_number = order,
                                            .line_id = line,
                                            .module = "EnrollmentModule",
                                            .refund_reference = "refund-" + line,
                                            .revoked_at_us = now};
        break;
      default:
        command = domain::RecordRevocationFailed{.order_number = order,
                                                 .line_id = line,
                                                 .module = "EnrollmentModule",
                                                 .kind = domain::FailureKind::kServer,
                                                 .message = "HTTP 500",
                                                 .refund_reference = "refund-" + line,
                                                 .failed_at_us = now};
        break;
    }
    const uint64_t head_before = harness.store().HeadPosition();
    auto result = service.Handle(command, kMetadata);
    auto folded = service.Load(order);
    REQUIRE(folded.has_value());
    if (result) {
      ++accepted;
      CHECK(result->order.state == folded->state);
      CHECK(result->order.stream_version == folded->stream_version);
      CHECK(result->idempotent_repeat == (harness.store().HeadPosition() == head_before));
    } else {
      REQUIRE(result.error().rejection.has_value());
      CHECK(harness.store().HeadPosition() == head_before);
    }
  }
  CHECK(accepted > steps / 4);
  testing::CheckLogInvariants(harness.store());
}

domain::RecordLineFulfilled Fulfill(std::string order_number, std::string line_id,
                                    std::string external_reference = "") {
  return domain::RecordLineFulfilled{.order_number = std::move(order_number),
                                     .line_id = std::move(line_id),
                                     .module = "enrollment",
                                     .external_reference = std::move(external_reference),
                                     .codes = {},
                                     .fulfilled_at_us = kT0 + 2};
}

LoadedOrder MustLoad(OrderCommandService& service, std::string_view order_number) {
  auto loaded = service.Load(order_number);
  REQUIRE(loaded.has_value());
  return std::move(loaded).value();
}

int CountType(EventStore& store, std::string_view order_number, std::string_view type) {
  const auto types = StreamTypes(store, order_number);
  return static_cast<int>(std::count(types.begin(), types.end(), type));
}

TEST_CASE(
    "Given a known order made stale by another writer, When outcomes are decided against it, "
    "Then the append conflicts, the stream is read again, and each line is fulfilled once",
    "[command_service][known_order]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store(), 0);
  OrderCommandService other(harness.store(), 0);
  MustHandle(service, Capture("EDX-100060", 9800));
  MustHandle(service, Place("EDX-100060", {SeatLine("1", 4900), SeatLine("2", 4900)}));
  LoadedOrder known = MustLoad(service, "EDX-100060");
  REQUIRE(known.stream_version == 2u);
  MustHandle(other, Fulfill("EDX-100060", "1", "by-the-other-writer"));

  const std::vector<domain::Command> commands = {Fulfill("EDX-100060", "1"),
                                                 Fulfill("EDX-100060", "2")};
  auto result = service.HandleAll(commands, kMetadata, known);
  REQUIRE(result.has_value());
  // Only line 2 was left to record; line 1 keeps the other writer's outcome.
  REQUIRE(result->events.size() == 1);
  CHECK(std::get<domain::LineFulfilled>(result->events[0]).line_id == "2");
  CHECK(result->order.stream_version == 4u);
  CHECK(result->order.state.FindLine("1")->external_reference == "by-the-other-writer");
  CHECK(CountType(harness.store(), "EDX-100060", "LineFulfilled") == 2);
  CHECK(MustLoad(service, "EDX-100060").state == result->order.state);
}

TEST_CASE(
    "Given a known order made stale by another writer, When it would reject or repeat, Then the "
    "answer is the stream's, not the stale state's",
    "[command_service][known_order]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store(), 0);
  OrderCommandService other(harness.store(), 0);

  SECTION("a rejection the stale state would give is not given") {
    MustHandle(service, Capture("EDX-100061", 4900));
    const LoadedOrder only_captured = MustLoad(service, "EDX-100061");
    MustHandle(other, Place("EDX-100061", {SeatLine("1", 4900)}));
    // Against the capture alone, the line does not exist yet.
    const std::vector<domain::Command> commands = {Fulfill("EDX-100061", "1")};
    auto result = service.HandleAll(commands, kMetadata, only_captured);
    REQUIRE(result.has_value());
    CHECK(result->events.size() == 1);
    CHECK(result->order.state.FindLine("1")->status == domain::LineStatus::kComplete);
  }
  SECTION("a repeat the stale state would answer is the stream's rejection") {
    MustHandle(service, Capture("EDX-100062", 4900));
    MustHandle(service, Place("EDX-100062", {SeatLine("1", 4900)}));
    MustHandle(service, Fulfill("EDX-100062", "1"));
    const LoadedOrder complete = MustLoad(service, "EDX-100062");
    MustHandle(other, domain::RecordLineRevoked{.order_number = "EDX-100062",
                                                .line_id = "1",
                                                .module = "enrollment",
                                                .refund_reference = "refund-1",
                                                .revoked_at_us = kT0 + 3});
    // Against `complete`, fulfilling line 1 again is a repeat; the line is revoked now.
    const std::vector<domain::Command> commands = {Fulfill("EDX-100062", "1")};
    auto result = service.HandleAll(commands, kMetadata, complete);
    REQUIRE_FALSE(result.has_value());
    REQUIRE(result.error().rejection.has_value());
    CHECK(result.error().rejection->code == domain::RejectionCode::kLineRevoked);
  }
}

TEST_CASE(
    "Given a service whose cached order another service made stale, When it places the order, "
    "Then it decides against the stream: no wrong rejection, no second placement",
    "[command_service][known_order]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store());
  OrderCommandService other(harness.store());

  SECTION("a second capture it did not see covers the total") {
    MustHandle(service, Capture("EDX-100063", 4900, "tx-1"));
    MustHandle(other, Capture("EDX-100063", 4900, "tx-2"));
    // The cached order holds one capture: too little for a total of 98.00.
    const CommandOutcome placed =
        MustHandle(service, Place("EDX-100063", {SeatLine("1", 4900), SeatLine("2", 4900)}));
    CHECK_FALSE(placed.idempotent_repeat);
    CHECK(placed.order.stream_version == 3u);
    CHECK(StreamTypes(harness.store(), "EDX-100063") ==
          std::vector<std::string>{"PaymentCaptured", "PaymentCaptured", "OrderCreated",
                                   "PostCheckout"});
  }
  SECTION("a placement it did not see is a repeat") {
    MustHandle(service, Capture("EDX-100064", 4900));
    MustHandle(other, Place("EDX-100064", {SeatLine("1", 4900)}));
    const CommandOutcome placed = MustHandle(service, Place("EDX-100064", {SeatLine("1", 4900)}));
    CHECK(placed.idempotent_repeat);
    CHECK(placed.order.stream_version == 2u);
    CHECK(StreamTypes(harness.store(), "EDX-100064") ==
          std::vector<std::string>{"PaymentCaptured", "OrderCreated", "PostCheckout"});
  }
  testing::CheckLogInvariants(harness.store());
}

TEST_CASE(
    "Given several known orders, When HandleMany records their outcomes, Then one store call "
    "writes the fresh ones and every stale one is decided again on its own",
    "[command_service][known_order][handle_many]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store(), 0);
  OrderCommandService other(harness.store(), 0);
  std::vector<LoadedOrder> known;
  for (const char* number : {"EDX-100070", "EDX-100071", "EDX-100072", "EDX-100073"}) {
    MustHandle(service, Capture(number, 9800));
    MustHandle(service, Place(number, {SeatLine("1", 4900), SeatLine("2", 4900)}));
    known.push_back(MustLoad(service, number));
  }
  // 71: another writer records line 1 first (a race). 72: revoked by another writer after this
  // caller's fold (the stale state would record line 1 again; the stream says it is revoked).
  MustHandle(other, Fulfill("EDX-100071", "1", "by-the-other-writer"));
  MustHandle(other, Fulfill("EDX-100072", "1"));
  known[2] = MustLoad(service, "EDX-100072");
  MustHandle(other, domain::RecordLineRevoked{.order_number = "EDX-100072",
                                              .line_id = "1",
                                              .module = "enrollment",
                                              .refund_reference = "refund-1",
                                              .revoked_at_us = kT0 + 3});
  const uint64_t commits_before = harness.store().stats().group_commits;

  const std::vector<domain::Command> for_70 = {Fulfill("EDX-100070", "1"),
                                               Fulfill("EDX-100070", "2")};
  const std::vector<domain::Command> for_71 = {Fulfill("EDX-100071", "1"),
                                               Fulfill("EDX-100071", "2")};
  const std::vector<domain::Command> for_72 = {Fulfill("EDX-100072", "1")};
  const std::vector<domain::Command> for_73 = {Fulfill("EDX-100073", "2")};
  std::vector<OrderCommands> batch = {{.commands = for_70, .known = known[0]},
                                      {.commands = for_71, .known = known[1]},
                                      {.commands = for_72, .known = known[2]},
                                      {.commands = for_73, .known = known[3]}};
  auto results = service.HandleMany(batch, kMetadata);
  REQUIRE(results.size() == 4);

  REQUIRE(results[0].has_value());
  CHECK(results[0]->events.size() == 2);
  CHECK(results[0]->order.stream_version == 4u);
  REQUIRE(results[1].has_value());
  // Decided again against the stream: only line 2 was left.
  REQUIRE(results[1]->events.size() == 1);
  CHECK(std::get<domain::LineFulfilled>(results[1]->events[0]).line_id == "2");
  CHECK(results[1]->order.state.FindLine("1")->external_reference == "by-the-other-writer");
  REQUIRE_FALSE(results[2].has_value());
  REQUIRE(results[2].error().rejection.has_value());
  CHECK(results[2].error().rejection->code == domain::RejectionCode::kLineRevoked);
  REQUIRE(results[3].has_value());
  CHECK(results[3]->events.size() == 1);
  CHECK(results[3]->order.state.FindLine("1")->status == domain::LineStatus::kOpen);
  // The shared call (70, 73 and 71's stale try), then 71 alone.
  CHECK(harness.store().stats().group_commits == commits_before + 2);

  CHECK(CountType(harness.store(), "EDX-100070", "LineFulfilled") == 2);
  CHECK(CountType(harness.store(), "EDX-100071", "LineFulfilled") == 2);
  CHECK(CountType(harness.store(), "EDX-100072", "LineFulfilled") == 1);
  CHECK(CountType(harness.store(), "EDX-100073", "LineFulfilled") == 1);
  for (size_t i : {size_t{0}, size_t{1}, size_t{3}}) {
    CHECK(MustLoad(service, results[i]->order_number).state == results[i]->order.state);
  }

  // The same call again, from the same stale states: every line already has its outcome.
  std::vector<OrderCommands> again = {{.commands = for_70, .known = known[0]},
                                      {.commands = for_73, .known = known[3]}};
  auto repeated = service.HandleMany(again, kMetadata);
  REQUIRE(repeated.size() == 2);
  for (const auto& result : repeated) {
    REQUIRE(result.has_value());
    CHECK(result->idempotent_repeat);
    CHECK(result->events.empty());
  }
  CHECK(CountType(harness.store(), "EDX-100070", "LineFulfilled") == 2);
  CHECK(CountType(harness.store(), "EDX-100073", "LineFulfilled") == 1);
  testing::CheckLogInvariants(harness.store());
}

TEST_CASE(
    "Given more outcomes than one store call may carry, When HandleMany records them, Then it "
    "splits them over calls and records every one",
    "[command_service][handle_many]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store(), 0);
  // Eleven orders of the most lines an order may have: 11,000 outcomes, over the 10,000 events
  // one call may carry.
  constexpr size_t kOrders = 11;
  std::vector<std::string> numbers;
  std::vector<std::vector<domain::Command>> commands(kOrders);
  std::vector<OrderCommands> batch;
  for (size_t i = 0; i < kOrders; ++i) {
    numbers.push_back("EDX-1001" + std::to_string(10 + i));
    std::vector<domain::Line> lines;
    for (size_t l = 0; l < domain::kLinesMax; ++l) {
      lines.push_back(SeatLine(std::to_string(l + 1), 100));
      commands[i].push_back(Fulfill(numbers[i], std::to_string(l + 1)));
    }
    MustHandle(service, Capture(numbers[i], 100 * static_cast<int64_t>(domain::kLinesMax)));
    MustHandle(service, Place(numbers[i], std::move(lines)));
    batch.push_back({.commands = commands[i], .known = MustLoad(service, numbers[i])});
  }
  const uint64_t commits_before = harness.store().stats().group_commits;
  auto results = service.HandleMany(batch, kMetadata);
  REQUIRE(results.size() == kOrders);
  for (size_t i = 0; i < kOrders; ++i) {
    INFO(numbers[i]);
    REQUIRE(results[i].has_value());
    CHECK(results[i]->events.size() == domain::kLinesMax);
    const LoadedOrder stored = MustLoad(service, numbers[i]);
    CHECK(stored.stream_version == std::optional<uint64_t>(2 + domain::kLinesMax));
    CHECK(std::all_of(stored.state.lines.begin(), stored.state.lines.end(),
                      [](const domain::LineState& line) {
                        return line.status == domain::LineStatus::kComplete;
                      }));
    CHECK(stored.state == results[i]->order.state);
  }
  // Ten orders fill one call; the eleventh takes a second.
  CHECK(harness.store().stats().group_commits == commits_before + 2);
}

// The order's events as the store recorded them.
std::vector<RecordedEvent> StreamRecords(EventStore& store, std::string_view order_number) {
  auto events =
      store.ReadStream(domain::OrderStreamName(order_number), Direction::kForward, 0, 1000);
  REQUIRE(events.has_value());
  return std::move(events).value();
}

void Fold(OrderStateCache& cache, const RecordedEvent& record) {
  auto event = DecodeEvent(record);
  REQUIRE(event.has_value());
  cache.Fold(record, *event);
}

TEST_CASE(
    "OrderStateCache folds a stream seen from its first event, skips what it has, and drops an "
    "order on a gap",
    "[command_service][order_state_cache]") {
  RocksDbHarness harness;
  OrderCommandService service(harness.store(), 0);
  MustHandle(service, Capture("EDX-100070", 4900));
  MustHandle(service, Place("EDX-100070", {SeatLine("1", 4900)}));
  MustHandle(service, Fulfill("EDX-100070", "1"));
  const std::vector<RecordedEvent> records = StreamRecords(harness.store(), "EDX-100070");
  REQUIRE(records.size() == 4);
  const std::string stream = domain::OrderStreamName("EDX-100070");
  const LoadedOrder loaded = MustLoad(service, "EDX-100070");

  SECTION("the whole stream, with repeats, folds to what Load gives") {
    OrderStateCache cache(8);
    Fold(cache, records[0]);
    Fold(cache, records[1]);
    Fold(cache, records[0]);  // Seen: skipped (a dispatcher reading again from its checkpoint).
    Fold(cache, records[2]);
    Fold(cache, records[3]);
    auto taken = cache.Take(stream);
    REQUIRE(taken.has_value());
    CHECK(taken->state == loaded.state);
    CHECK(taken->stream_version == loaded.stream_version);
    CHECK(taken->position == loaded.position);
    CHECK_FALSE(cache.Take(stream).has_value());  // Taken out.
  }
  SECTION("a stream not seen from its first event is not folded") {
    OrderStateCache cache(8);
    Fold(cache, records[1]);
    Fold(cache, records[2]);
    CHECK_FALSE(cache.Take(stream).has_value());
  }
  SECTION("a gap drops the order") {
    OrderStateCache cache(8);
    Fold(cache, records[0]);
    Fold(cache, records[2]);
    CHECK(cache.size() == 0);
    Fold(cache, records[3]);
    CHECK_FALSE(cache.Take(stream).has_value());
  }
  SECTION("after Take, later events are not folded: the next reader reads the stream") {
    OrderStateCache cache(8);
    Fold(cache, records[0]);
    Fold(cache, records[1]);
    Fold(cache, records[2]);
    REQUIRE(cache.Take(stream).has_value());
    Fold(cache, records[3]);
    CHECK(cache.size() == 0);
  }
  SECTION("Put keeps the later version") {
    OrderStateCache cache(8);
    for (const RecordedEvent& record : records) Fold(cache, record);
    LoadedOrder older = MustLoad(service, "EDX-100070");
    older.state = {};
    older.stream_version = 1;
    cache.Put(stream, older);
    auto taken = cache.Take(stream);
    REQUIRE(taken.has_value());
    CHECK(taken->stream_version == 3u);
    cache.Put(stream, older);
    CHECK(cache.Take(stream)->stream_version == 1u);
  }
  SECTION("a disabled cache keeps nothing") {
    OrderStateCache cache(0);
    for (const RecordedEvent& record : records) Fold(cache, record);
    cache.Put(stream, loaded);
    CHECK(cache.size() == 0);
    CHECK_FALSE(cache.Take(stream).has_value());
  }
}

TEST_CASE(
    "An order within every domain limit whose event the log would refuse for its size is "
    "refused as limit_exceeded, and nothing is written",
    "[command_service]") {
  // kLinesMax lines of kAttributesPerLineMax short attributes: each limit met, yet OrderCreated
  // encodes to about 2 MiB (short texts cost several times their bytes once encoded).
  RocksDbHarness harness;
  OrderCommandService service(harness.store());
  std::vector<domain::Line> lines;
  for (size_t i = 0; i < domain::kLinesMax; ++i) {
    domain::Line line{.line_id = std::to_string(i),
                      .product_type = "Donation",
                      .sku = "D",
                      .title = "D",
                      .quantity = 1,
                      .unit_price_minor = 0,
                      .attributes = {}};
    for (size_t a = 0; a < domain::kAttributesPerLineMax; ++a) {
      line.attributes.push_back({.name = "a" + std::to_string(a), .value = "v"});
    }
    lines.push_back(std::move(line));
  }
  domain::PlaceOrder place = Place("EDX-7001", std::move(lines));
  place.total_minor = 0;
  place.shipping_charge_minor = 0;

  for (int twice = 0; twice < 2; ++twice) {
    std::vector<domain::Command> commands{place};
    std::vector<OrderCommands> many{OrderCommands{.commands = commands, .known = {}}};
    auto refused = twice == 0 ? service.Handle(place, kMetadata)
                              : std::move(service.HandleMany(many, kMetadata).front());
    REQUIRE_FALSE(refused.has_value());
    REQUIRE(refused.error().rejection.has_value());
    CHECK(refused.error().rejection->code == domain::RejectionCode::kLimitExceeded);
    CHECK_THAT(refused.error().rejection->detail,
               Catch::Contains("its OrderCreated event would be") &&
                   Catch::Contains("the log takes at most 1048576"));
  }
  CHECK(harness.store().HeadPosition() == 0);
  CHECK(StreamTypes(harness.store(), "EDX-7001").empty());
}

TEST_CASE("OrderStateCache holds at most its bound, the oldest entry leaving first",
          "[command_service][order_state_cache]") {
  OrderStateCache cache(3);
  auto order_at = [](uint64_t version) {
    LoadedOrder order;
    order.stream_version = version;
    return order;
  };
  cache.Put("order-A", order_at(1));
  cache.Put("order-B", order_at(1));
  cache.Put("order-C", order_at(1));
  cache.Put("order-A", order_at(2));  // Replaced: now the newest.
  cache.Put("order-D", order_at(1));  // B leaves, the oldest still held.
  CHECK(cache.size() == 3);
  CHECK_FALSE(cache.Take("order-B").has_value());
  CHECK(cache.Take("order-A")->stream_version == 2u);
  CHECK(cache.Take("order-C").has_value());
  CHECK(cache.Take("order-D").has_value());
  CHECK(cache.size() == 0);
  // Many more than the bound: never more than 3 held.
  for (int i = 0; i < 100; ++i) {
    cache.Put("order-" + std::to_string(i), order_at(1));
    CHECK(cache.size() <= 3);
  }
  CHECK(cache.Take("order-99").has_value());
  CHECK_FALSE(cache.Take("order-96").has_value());
}

}  // namespace
}  // namespace ledger::eventstore
