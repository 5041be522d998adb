// The conformance suite of the EventStore interface: what every implementation must do, written
// against `EventStore&` only and run once per harness in LEDGER_STORE_HARNESSES.
//
// Each TEST_CASE builds a fresh harness (a fresh store); SECTIONs rerun the case from the start.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>

#include "tests/eventstore/store_test_support.h"

namespace ledger::eventstore::testing {
namespace {

// What a rejected call must leave behind: the same head, stream version and no trace of its ids.
void CheckNothingWritten(EventStore& store, uint64_t head_before, std::string_view stream,
                         std::optional<uint64_t> version_before,
                         const std::vector<NewEvent>& events) {
  CHECK(store.HeadPosition() == head_before);
  auto version = store.StreamVersion(stream);
  REQUIRE(version.has_value());
  CHECK(*version == version_before);
  for (const NewEvent& event : events) {
    auto found = store.ReadEvent(event.event_id);
    REQUIRE(found.has_value());
    if (found->has_value()) {
      // Only an id the log held before the call may be found, and then not at a new position.
      CHECK((*found)->position <= head_before);
    }
  }
  CHECK(ReadWholeLog(store).size() == head_before);
}

TEMPLATE_TEST_CASE("an append writes all its events at consecutive positions and versions",
                   "[conformance][append]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const auto order_1 = MakeEvents("order-1/a", 3);
  const auto order_2 = MakeEvents("order-2/a", 2);
  const auto order_1_more = MakeEvents("order-1/b", 1);

  const AppendResult first = MustAppend(store, "order-1", ExpectedVersion::NoStream(), order_1);
  CHECK(first.first_position == 1);
  CHECK(first.last_position == 3);
  CHECK(first.stream_version == 2);
  CHECK_FALSE(first.idempotent_replay);
  const AppendResult second = MustAppend(store, "order-2", ExpectedVersion::NoStream(), order_2);
  CHECK(second.first_position == 4);
  CHECK(second.last_position == 5);
  CHECK(second.stream_version == 1);
  const AppendResult third =
      MustAppend(store, "order-1", ExpectedVersion::Exactly(2), order_1_more);
  CHECK(third.first_position == 6);
  CHECK(third.last_position == 6);
  CHECK(third.stream_version == 3);
  CHECK(store.HeadPosition() == 6);

  auto stream = store.ReadStream("order-1", Direction::kForward, 0, 100);
  REQUIRE(stream.has_value());
  REQUIRE(stream->size() == 4);
  const std::vector<uint64_t> expected_positions = {1, 2, 3, 6};
  for (size_t i = 0; i < 4; ++i) {
    const RecordedEvent& event = (*stream)[i];
    CHECK(event.version == i);
    CHECK(event.position == expected_positions[i]);
    CHECK(SameContent(event, "order-1", i < 3 ? order_1[i] : order_1_more[0]));
  }
  const auto log = CheckLogInvariants(store);
  CHECK(log.front().previous_hash == Hash256{});
  CHECK(SameContent(log[3], "order-2", order_2[0]));
  CHECK(SameContent(log[4], "order-2", order_2[1]));
}

TEMPLATE_TEST_CASE("an append is all or nothing", "[conformance][append]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const auto existing = MakeEvents("existing", 2);
  MustAppend(store, "s", ExpectedVersion::NoStream(), existing);
  const uint64_t head = store.HeadPosition();
  auto events = MakeEvents("batch", 4);

  SECTION("the last event is malformed") {
    events.back().event_type.clear();
    CHECK(MustFail(store, "s", ExpectedVersion::Any(), events).code == ErrorCode::kInvalidArgument);
  }
  SECTION("the last event's payload is too large") {
    events.back().payload.assign(EventStore::kPayloadBytesMax + 1, 'x');
    CHECK(MustFail(store, "s", ExpectedVersion::Any(), events).code == ErrorCode::kInvalidArgument);
  }
  SECTION("the last event reuses an id the log holds, with other content") {
    events.back() = existing.front();
    events.back().payload = "something else";
    CHECK(MustFail(store, "s", ExpectedVersion::Any(), events).code == ErrorCode::kEventIdReused);
  }
  SECTION("the last event repeats an id the log holds") {
    events.back() = existing.front();
    CHECK(MustFail(store, "s", ExpectedVersion::Any(), events).code ==
          ErrorCode::kPartialDuplicate);
  }
  SECTION("the expected version is wrong") {
    CHECK(MustFail(store, "s", ExpectedVersion::Exactly(0), events).code ==
          ErrorCode::kWrongExpectedVersion);
  }
  CheckNothingWritten(store, head, "s", 1, events);
  // The store still takes the same events once the call is put right.
  const AppendResult fixed =
      MustAppend(store, "s", ExpectedVersion::Exactly(1), MakeEvents("batch", 4));
  CHECK(fixed.first_position == head + 1);
  CHECK(fixed.stream_version == 5);
  CheckLogInvariants(store);
}

TEMPLATE_TEST_CASE("every kind of expected version is accepted when it holds",
                   "[conformance][expected-version]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  CHECK(MustAppend(store, "any-new", ExpectedVersion::Any(), MakeEvents("a", 1)).stream_version ==
        0);
  CHECK(MustAppend(store, "any-new", ExpectedVersion::Any(), MakeEvents("b", 2)).stream_version ==
        2);
  CHECK(
      MustAppend(store, "fresh", ExpectedVersion::NoStream(), MakeEvents("c", 1)).stream_version ==
      0);
  CHECK(MustAppend(store, "fresh", ExpectedVersion::StreamExists(), MakeEvents("d", 1))
            .stream_version == 1);
  CHECK(
      MustAppend(store, "fresh", ExpectedVersion::Exactly(1), MakeEvents("e", 3)).stream_version ==
      4);
  CHECK(
      MustAppend(store, "fresh", ExpectedVersion::Exactly(4), MakeEvents("f", 1)).stream_version ==
      5);
  CheckLogInvariants(store);
}

TEMPLATE_TEST_CASE(
    "every kind of expected version is rejected when it fails, with the current "
    "version",
    "[conformance][expected-version]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  MustAppend(store, "two", ExpectedVersion::NoStream(), MakeEvents("two", 2));
  const uint64_t head = store.HeadPosition();
  const auto events = MakeEvents("rejected", 2);

  struct Case {
    std::string stream;
    ExpectedVersion expected;
    std::optional<uint64_t> current;
  };
  const std::vector<Case> cases = {
      {"two", ExpectedVersion::NoStream(), 1},
      {"two", ExpectedVersion::Exactly(0), 1},
      {"two", ExpectedVersion::Exactly(2), 1},
      {"two", ExpectedVersion::Exactly(UINT64_MAX), 1},
      {"missing", ExpectedVersion::StreamExists(), std::nullopt},
      {"missing", ExpectedVersion::Exactly(0), std::nullopt},
      {"missing", ExpectedVersion::Exactly(7), std::nullopt},
  };
  for (const Case& c : cases) {
    INFO(c.stream << " expecting " << c.expected.ToString());
    const Error error = MustFail(store, c.stream, c.expected, events);
    CHECK(error.code == ErrorCode::kWrongExpectedVersion);
    CHECK(error.current_version == c.current);
    CheckNothingWritten(store, head, c.stream, c.current, events);
  }
}

TEMPLATE_TEST_CASE("positions are gapless across streams and versions gapless within each",
                   "[conformance][append]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  std::map<std::string, uint64_t> events_per_stream;
  uint64_t expected_head = 0;
  for (size_t i = 0; i < 60; ++i) {
    const std::string stream = fmt::format("stream-{}", (i * 7) % 5);
    const size_t count = 1 + (i * 3) % 4;
    const AppendResult result = MustAppend(store, stream, ExpectedVersion::Any(),
                                           MakeEvents(fmt::format("gapless/{}", i), count));
    CHECK(result.first_position == expected_head + 1);
    CHECK(result.last_position == expected_head + count);
    expected_head += count;
    events_per_stream[stream] += count;
    CHECK(result.stream_version == events_per_stream[stream] - 1);
  }
  CHECK(store.HeadPosition() == expected_head);
  const auto log = CheckLogInvariants(store);
  CHECK(log.size() == expected_head);
}

TEMPLATE_TEST_CASE("an idempotent retry returns the original result and writes nothing",
                   "[conformance][idempotency]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  const auto original = MakeEvents("retry/original", 3);
  const auto single = MakeEvents("retry/single", 1);
  const AppendResult first =
      MustAppend(harness.store(), "s", ExpectedVersion::NoStream(), original);
  MustAppend(harness.store(), "other", ExpectedVersion::Any(), MakeEvents("retry/other", 2));
  const AppendResult single_first =
      MustAppend(harness.store(), "s", ExpectedVersion::Exactly(2), single);
  // Moves the stream on, so every expected version the retries carry is stale.
  MustAppend(harness.store(), "s", ExpectedVersion::Exactly(3), MakeEvents("retry/later", 2));

  auto check_retries = [&](EventStore& store) {
    const uint64_t head = store.HeadPosition();
    for (ExpectedVersion expected :
         {ExpectedVersion::NoStream(), ExpectedVersion::Any(), ExpectedVersion::StreamExists(),
          ExpectedVersion::Exactly(2), ExpectedVersion::Exactly(99)}) {
      INFO("retry expecting " << expected.ToString());
      const AppendResult again = MustAppend(store, "s", expected, original);
      CHECK(again.first_position == first.first_position);
      CHECK(again.last_position == first.last_position);
      CHECK(again.stream_version == first.stream_version);
      CHECK(again.idempotent_replay);
      const AppendResult single_again = MustAppend(store, "s", expected, single);
      CHECK(single_again.first_position == single_first.first_position);
      CHECK(single_again.last_position == single_first.last_position);
      CHECK(single_again.stream_version == single_first.stream_version);
      CHECK(single_again.idempotent_replay);
    }
    CHECK(store.HeadPosition() == head);
    auto version = store.StreamVersion("s");
    REQUIRE(version.has_value());
    CHECK(*version == std::optional<uint64_t>(5));
    const auto log = CheckLogInvariants(store);
    CHECK(log.size() == head);
  };
  check_retries(harness.store());
  if constexpr (TestType::kSurvivesReopen) {
    harness.Reopen();
    check_retries(harness.store());
  }
}

TEMPLATE_TEST_CASE("an event id sent again with other content is rejected as reused",
                   "[conformance][idempotency]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const auto original = MakeEvents("reused", 2);
  MustAppend(store, "s", ExpectedVersion::NoStream(), original);
  const uint64_t head = store.HeadPosition();

  auto changed = original;
  SECTION("payload") { changed[1].payload += "!"; }
  SECTION("event type") { changed[1].event_type = "OtherEvent"; }
  SECTION("actor") { changed[0].actor = "someone else"; }
  SECTION("correlation id") { changed[0].correlation_id = IdFor("another correlation"); }
  SECTION("causation id") { changed[0].causation_id = IdFor("a cause"); }
  SECTION("schema version") { changed[1].schema_version += 1; }
  for (ExpectedVersion expected : {ExpectedVersion::Any(), ExpectedVersion::Exactly(1)}) {
    CHECK(MustFail(store, "s", expected, changed).code == ErrorCode::kEventIdReused);
  }
  CheckNothingWritten(store, head, "s", 1, changed);
}

TEMPLATE_TEST_CASE("event ids held by the log in another shape are not a retry",
                   "[conformance][idempotency]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const auto original = MakeEvents("held", 3);
  MustAppend(store, "s", ExpectedVersion::NoStream(), original);
  MustAppend(store, "t", ExpectedVersion::NoStream(), MakeEvents("held-in-t", 1));
  const uint64_t head = store.HeadPosition();
  const NewEvent fresh = MakeEvent("fresh");

  SECTION("some ids new, some held") {
    const std::vector<NewEvent> call = {original[0], original[1], fresh};
    CHECK(MustFail(store, "s", ExpectedVersion::Any(), call).code == ErrorCode::kPartialDuplicate);
    CheckNothingWritten(store, head, "s", 2, call);
  }
  SECTION("a new id before a held one") {
    const std::vector<NewEvent> call = {fresh, original[2]};
    CHECK(MustFail(store, "s", ExpectedVersion::Any(), call).code == ErrorCode::kPartialDuplicate);
    CheckNothingWritten(store, head, "s", 2, call);
  }
  SECTION("all ids held, in another order") {
    const std::vector<NewEvent> call = {original[1], original[0], original[2]};
    CHECK(MustFail(store, "s", ExpectedVersion::Any(), call).code == ErrorCode::kPartialDuplicate);
    CheckNothingWritten(store, head, "s", 2, call);
  }
  SECTION("all ids held, with a hole between them") {
    const std::vector<NewEvent> call = {original[0], original[2]};
    CHECK(MustFail(store, "s", ExpectedVersion::Any(), call).code == ErrorCode::kPartialDuplicate);
    CheckNothingWritten(store, head, "s", 2, call);
  }
  SECTION("ids held by two streams") {
    auto held_in_t = MakeEvents("held-in-t", 1);
    const std::vector<NewEvent> call = {original[2], held_in_t[0]};
    const ErrorCode code = MustFail(store, "s", ExpectedVersion::Any(), call).code;
    CHECK((code == ErrorCode::kPartialDuplicate || code == ErrorCode::kEventIdReused));
    CheckNothingWritten(store, head, "s", 2, call);
  }
  SECTION("all ids held, sent to another stream") {
    // Not a retry of the original (that went to "s"): which error is the implementation's
    // choice, but nothing may be written and it must not claim success.
    const ErrorCode code = MustFail(store, "u", ExpectedVersion::Any(), original).code;
    CHECK((code == ErrorCode::kPartialDuplicate || code == ErrorCode::kEventIdReused));
    CheckNothingWritten(store, head, "u", std::nullopt, original);
  }
}

TEMPLATE_TEST_CASE("AppendMany decides each request on its own and writes them in one commit",
                   "[conformance][append_many]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const auto a_first = MakeEvents("many/a-first", 1);
  MustAppend(store, "a", ExpectedVersion::NoStream(), a_first);
  const uint64_t commits_before = store.stats().group_commits;

  const auto a_two = MakeEvents("many/a-two", 2);
  const auto b_one = MakeEvents("many/b-one", 1);
  const auto a_stale = MakeEvents("many/a-stale", 1);
  const auto a_next = MakeEvents("many/a-next", 1);
  const std::vector<NewEvent> none;
  const std::vector<AppendRequest> requests = {
      {.stream = "a", .expected = ExpectedVersion::Exactly(0), .events = a_two},
      {.stream = "b", .expected = ExpectedVersion::NoStream(), .events = b_one},
      // Stale: the first request moved "a" to version 2.
      {.stream = "a", .expected = ExpectedVersion::Exactly(0), .events = a_stale},
      // Sees the first request's events.
      {.stream = "a", .expected = ExpectedVersion::Exactly(2), .events = a_next},
      {.stream = "c", .expected = ExpectedVersion::Any(), .events = none},
      // A retry of the append before the call.
      {.stream = "a", .expected = ExpectedVersion::NoStream(), .events = a_first},
      // A retry of the first request of this very call.
      {.stream = "a", .expected = ExpectedVersion::Exactly(0), .events = a_two},
  };
  auto results = store.AppendMany(requests);
  REQUIRE(results.size() == requests.size());

  REQUIRE(results[0].has_value());
  CHECK(results[0]->first_position == 2);
  CHECK(results[0]->last_position == 3);
  CHECK(results[0]->stream_version == 2);
  CHECK_FALSE(results[0]->idempotent_replay);
  REQUIRE(results[1].has_value());
  CHECK(results[1]->first_position == 4);
  CHECK(results[1]->stream_version == 0);
  REQUIRE_FALSE(results[2].has_value());
  CHECK(results[2].error().code == ErrorCode::kWrongExpectedVersion);
  CHECK(results[2].error().current_version == std::optional<uint64_t>(2));
  REQUIRE(results[3].has_value());
  CHECK(results[3]->first_position == 5);
  CHECK(results[3]->stream_version == 3);
  REQUIRE_FALSE(results[4].has_value());
  CHECK(results[4].error().code == ErrorCode::kInvalidArgument);
  REQUIRE(results[5].has_value());
  CHECK(results[5]->first_position == 1);
  CHECK(results[5]->idempotent_replay);
  REQUIRE(results[6].has_value());
  CHECK(results[6]->first_position == 2);
  CHECK(results[6]->last_position == 3);
  CHECK(results[6]->idempotent_replay);

  // One commit carried every request that wrote.
  CHECK(store.stats().group_commits == commits_before + 1);
  CHECK(store.HeadPosition() == 5);
  const auto log = CheckLogInvariants(store);
  REQUIRE(log.size() == 5);
  CHECK(SameContent(log[1], "a", a_two[0]));
  CHECK(SameContent(log[2], "a", a_two[1]));
  CHECK(SameContent(log[3], "b", b_one[0]));
  CHECK(SameContent(log[4], "a", a_next[0]));
  auto stale = store.ReadEvent(a_stale[0].event_id);
  REQUIRE(stale.has_value());
  CHECK_FALSE(stale->has_value());

  // The whole call again: every request that wrote is now a replay of itself.
  auto again = store.AppendMany(requests);
  REQUIRE(again.size() == requests.size());
  for (size_t i : {size_t{0}, size_t{1}, size_t{3}, size_t{5}, size_t{6}}) {
    INFO("request " << i);
    REQUIRE(again[i].has_value());
    CHECK(again[i]->idempotent_replay);
    CHECK(again[i]->first_position == results[i]->first_position);
    CHECK(again[i]->last_position == results[i]->last_position);
  }
  CHECK(again[2].error().code == ErrorCode::kWrongExpectedVersion);
  CHECK(again[4].error().code == ErrorCode::kInvalidArgument);
  CHECK(store.HeadPosition() == 5);
  if constexpr (TestType::kSurvivesReopen) {
    harness.Reopen();
    CHECK(CheckLogInvariants(harness.store()).size() == 5);
  }
}

TEMPLATE_TEST_CASE("AppendMany with nothing to write, or too much, writes nothing",
                   "[conformance][append_many]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  MustAppend(store, "a", ExpectedVersion::NoStream(), MakeEvents("limit/a", 1));

  // Every request of the call fails, each with its code.
  auto check_failures = [&](const std::vector<AppendRequest>& requests,
                            const std::vector<ErrorCode>& codes) {
    auto results = store.AppendMany(requests);
    REQUIRE(results.size() == codes.size());
    for (size_t i = 0; i < codes.size(); ++i) {
      REQUIRE_FALSE(results[i].has_value());
      CHECK(results[i].error().code == codes[i]);
    }
  };
  SECTION("no requests") { CHECK(store.AppendMany({}).empty()); }
  SECTION("only rejected requests") {
    const auto events = MakeEvents("limit/rejected", 1);
    check_failures({{.stream = "a", .expected = ExpectedVersion::NoStream(), .events = events},
                    {.stream = "", .expected = ExpectedVersion::Any(), .events = events}},
                   {ErrorCode::kWrongExpectedVersion, ErrorCode::kInvalidArgument});
  }
  SECTION("one event more than a call may carry, spread over two requests") {
    const size_t half = EventStore::kEventsPerAppendMax / 2;
    const auto first = MakeEvents("limit/first", half);
    const auto second = MakeEvents("limit/second", EventStore::kEventsPerAppendMax - half + 1);
    check_failures({{.stream = "x", .expected = ExpectedVersion::Any(), .events = first},
                    {.stream = "y", .expected = ExpectedVersion::Any(), .events = second}},
                   {ErrorCode::kInvalidArgument, ErrorCode::kInvalidArgument});
  }
  CHECK(store.HeadPosition() == 1);
  CHECK(CheckLogInvariants(store).size() == 1);
}

TEMPLATE_TEST_CASE("malformed appends are rejected as invalid arguments",
                   "[conformance][validation]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  MustAppend(store, "s", ExpectedVersion::NoStream(), MakeEvents("before", 1));
  const uint64_t head = store.HeadPosition();
  std::string stream = "s";
  std::vector<NewEvent> events = MakeEvents("malformed", 3);

  SECTION("no events") { events.clear(); }
  SECTION("one id twice in the call") { events[2].event_id = events[0].event_id; }
  SECTION("one event twice in the call") { events[2] = events[0]; }
  SECTION("a nil event id") { events[1].event_id = EventId(); }
  SECTION("an empty stream name") { stream.clear(); }
  SECTION("a NUL in the stream name") { stream = std::string("a\0b", 3); }
  SECTION("a stream name one byte too long") {
    stream.assign(EventStore::kStreamNameBytesMax + 1, 's');
  }
  SECTION("a stream name that is not UTF-8") { stream = "order-\xff\xfe"; }
  SECTION("an empty event type") { events[0].event_type.clear(); }
  SECTION("an event type one byte too long") {
    events[0].event_type.assign(EventStore::kEventTypeBytesMax + 1, 't');
  }
  SECTION("an actor one byte too long") {
    events[0].actor.assign(EventStore::kActorBytesMax + 1, 'a');
  }
  SECTION("a payload one byte too large") {
    events[1].payload.assign(EventStore::kPayloadBytesMax + 1, 'p');
  }
  SECTION("one event more than a call may carry") {
    events = MakeEvents("too-many", EventStore::kEventsPerAppendMax + 1);
  }
  const Error error = MustFail(store, stream, ExpectedVersion::Any(), events);
  CHECK(error.code == ErrorCode::kInvalidArgument);
  CHECK(store.HeadPosition() == head);
  CHECK(ReadWholeLog(store).size() == head);
}

TEMPLATE_TEST_CASE("appends at the limits are accepted", "[conformance][validation]",
                   LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  SECTION("the longest stream name") {
    const std::string stream(EventStore::kStreamNameBytesMax, 's');
    MustAppend(store, stream, ExpectedVersion::NoStream(), MakeEvents("long-name", 2));
    auto read = store.ReadStream(stream, Direction::kForward, 0, 10);
    REQUIRE(read.has_value());
    CHECK(read->size() == 2);
  }
  SECTION("the largest payload, the longest type and actor") {
    auto events = MakeEvents("large", 1);
    events[0].payload.assign(EventStore::kPayloadBytesMax, '\0');
    events[0].payload[12345] = 'x';
    events[0].event_type.assign(EventStore::kEventTypeBytesMax, 't');
    events[0].actor.assign(EventStore::kActorBytesMax, 'a');
    MustAppend(store, "s", ExpectedVersion::NoStream(), events);
    auto read = store.ReadEvent(events[0].event_id);
    REQUIRE(read.has_value());
    REQUIRE(read->has_value());
    CHECK(SameContent(**read, "s", events[0]));
  }
  SECTION("the most events one call may carry") {
    const auto events = MakeEvents("many", EventStore::kEventsPerAppendMax);
    const AppendResult result = MustAppend(store, "s", ExpectedVersion::NoStream(), events);
    CHECK(result.last_position == EventStore::kEventsPerAppendMax);
    CHECK(result.stream_version == EventStore::kEventsPerAppendMax - 1);
  }
  SECTION("an empty payload and actor, UTF-8 names") {
    auto events = MakeEvents("empty", 1);
    events[0].payload.clear();
    events[0].actor.clear();
    const std::string stream = "commande-\xc3\xa9t\xc3\xa9";
    MustAppend(store, stream, ExpectedVersion::NoStream(), events);
    auto read = store.ReadStream(stream, Direction::kForward, 0, 10);
    REQUIRE(read.has_value());
    REQUIRE(read->size() == 1);
    CHECK(SameContent(read->front(), stream, events[0]));
  }
  CheckLogInvariants(store);
}

// Ten events in "order-1", interleaved with events of streams whose names extend or precede it.
template <typename Harness>
void FillStreams(Harness& harness) {
  for (size_t i = 0; i < 10; ++i) {
    MustAppend(harness.store(), "order-1", ExpectedVersion::Any(),
               MakeEvents(fmt::format("order-1/{}", i), 1));
    MustAppend(harness.store(), i % 2 == 0 ? "order-10" : "order-", ExpectedVersion::Any(),
               MakeEvents(fmt::format("neighbour/{}", i), 1));
  }
}

std::vector<uint64_t> VersionsOf(const std::vector<RecordedEvent>& events) {
  std::vector<uint64_t> versions;
  for (const RecordedEvent& event : events) versions.push_back(event.version);
  return versions;
}

using Versions = std::vector<uint64_t>;
using Positions = std::vector<uint64_t>;

TEMPLATE_TEST_CASE("a stream reads forward from a version", "[conformance][read]",
                   LEDGER_STORE_HARNESSES) {
  TestType harness;
  FillStreams(harness);
  EventStore& store = harness.store();
  auto read = [&](std::string_view stream, uint64_t from, size_t count) {
    auto events = store.ReadStream(stream, Direction::kForward, from, count);
    REQUIRE(events.has_value());
    for (const RecordedEvent& event : *events) {
      CHECK(event.stream == stream);
      CHECK(SameContent(event, stream, MakeEvent(fmt::format("order-1/{}/0", event.version))));
      CHECK(event.position == 2 * event.version + 1);
    }
    return VersionsOf(*events);
  };
  CHECK(read("order-1", 0, 100) == Versions{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(read("order-1", 4, 3) == Versions{4, 5, 6});
  CHECK(read("order-1", 8, 100) == Versions{8, 9});
  CHECK(read("order-1", 9, 1) == Versions{9});
  CHECK(read("order-1", 10, 100).empty());
  CHECK(read("order-1", kEndOfStream, 100).empty());
  CHECK(read("order-1", 0, 0).empty());
  CHECK(read("order-2", 0, 100).empty());
  CHECK(read("order", 0, 100).empty());
}

TEMPLATE_TEST_CASE("a stream reads backward from a version", "[conformance][read]",
                   LEDGER_STORE_HARNESSES) {
  TestType harness;
  FillStreams(harness);
  EventStore& store = harness.store();
  auto read = [&](std::string_view stream, uint64_t from, size_t count) {
    auto events = store.ReadStream(stream, Direction::kBackward, from, count);
    REQUIRE(events.has_value());
    for (const RecordedEvent& event : *events) CHECK(event.stream == stream);
    return VersionsOf(*events);
  };
  CHECK(read("order-1", kEndOfStream, 3) == Versions{9, 8, 7});
  CHECK(read("order-1", kEndOfStream, 100) == Versions{9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  CHECK(read("order-1", 4, 100) == Versions{4, 3, 2, 1, 0});
  CHECK(read("order-1", 4, 2) == Versions{4, 3});
  CHECK(read("order-1", 0, 100) == Versions{0});
  CHECK(read("order-1", 9, 1) == Versions{9});
  CHECK(read("order-1", kEndOfStream, 0).empty());
  CHECK(read("order-2", kEndOfStream, 100).empty());
  CHECK(read("order-2", 3, 100).empty());
  CHECK(read("order-10", kEndOfStream, 100) == Versions{4, 3, 2, 1, 0});
  CHECK(read("order-", kEndOfStream, 100) == Versions{4, 3, 2, 1, 0});
}

TEMPLATE_TEST_CASE("the whole log reads forward in pages", "[conformance][read]",
                   LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  {
    auto empty = store.ReadAll(1, 10);
    REQUIRE(empty.has_value());
    CHECK(empty->events.empty());
    CHECK(empty->head_position == 0);
    CHECK(empty->next_position == 1);
  }
  for (size_t i = 0; i < 25; ++i) {
    MustAppend(store, fmt::format("s{}", i % 3), ExpectedVersion::Any(),
               MakeEvents(fmt::format("page/{}", i), 1));
  }
  auto page_positions = [&](uint64_t from, size_t count) {
    auto page = store.ReadAll(from, count);
    REQUIRE(page.has_value());
    CHECK(page->head_position == 25);
    std::vector<uint64_t> positions;
    for (const RecordedEvent& event : page->events) positions.push_back(event.position);
    if (!positions.empty()) CHECK(page->next_position == positions.back() + 1);
    if (positions.empty()) CHECK(page->next_position == from);
    return positions;
  };
  CHECK(page_positions(1, 10) == Positions{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(page_positions(11, 3) == Positions{11, 12, 13});
  CHECK(page_positions(21, 10) == Positions{21, 22, 23, 24, 25});
  CHECK(page_positions(25, 1) == Positions{25});
  CHECK(page_positions(26, 10).empty());
  CHECK(page_positions(5, 0).empty());

  // Paging by next_position reads every event once, in order, and agrees with the streams.
  const auto log = ReadWholeLog(store, 7);
  REQUIRE(log.size() == 25);
  for (size_t i = 0; i < log.size(); ++i) {
    CHECK(SameContent(log[i], fmt::format("s{}", i % 3), MakeEvent(fmt::format("page/{}/0", i))));
    auto by_stream = store.ReadStream(log[i].stream, Direction::kForward, log[i].version, 1);
    REQUIRE(by_stream.has_value());
    REQUIRE(by_stream->size() == 1);
    CHECK(SameRecord(by_stream->front(), log[i]));
  }
}

// A page read from beyond the end still reports the true head.
TEMPLATE_TEST_CASE("a page read beyond the head reports the true head", "[conformance][read]",
                   LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  MustAppend(store, "s", ExpectedVersion::NoStream(), MakeEvents("beyond", 25));
  auto page = store.ReadAll(1000, 10);
  REQUIRE(page.has_value());
  CHECK(page->events.empty());
  CHECK(page->next_position == 1000);
  CHECK(page->head_position == 25);
}

TEMPLATE_TEST_CASE("scanning the log visits a range in order and may stop early",
                   "[conformance][read]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  for (size_t i = 0; i < 4; ++i) {
    MustAppend(store, fmt::format("scan-{}", i), ExpectedVersion::Any(),
               MakeEvents(fmt::format("scan/{}", i), 5));
  }
  const auto log = ReadWholeLog(store);
  REQUIRE(log.size() == 20);
  auto scan = [&](uint64_t from, uint64_t to, size_t stop_after) {
    std::vector<uint64_t> positions;
    auto visited = store.ScanAll(from, to, [&](const RecordedEvent& event) {
      CHECK(SameRecord(event, log[event.position - 1]));
      positions.push_back(event.position);
      return positions.size() < stop_after;
    });
    REQUIRE(visited.has_value());
    CHECK(*visited == positions.size());
    return positions;
  };
  const auto all = scan(1, 20, SIZE_MAX);
  REQUIRE(all.size() == 20);
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i] == i + 1);
  CHECK(scan(5, 9, SIZE_MAX) == Positions{5, 6, 7, 8, 9});
  CHECK(scan(18, UINT64_MAX, SIZE_MAX) == Positions{18, 19, 20});
  CHECK(scan(3, 3, SIZE_MAX) == Positions{3});
  CHECK(scan(1, 20, 3) == Positions{1, 2, 3});
  CHECK(scan(10, 20, 1) == Positions{10});
  CHECK(scan(9, 5, SIZE_MAX).empty());
  CHECK(scan(21, UINT64_MAX, SIZE_MAX).empty());

  // A stream filter: only the streams it accepts are visited, and the count says so.
  std::vector<std::string> streams_asked;
  auto filtered = [&](uint64_t from, uint64_t to, size_t stop_after) {
    std::vector<uint64_t> positions;
    ScanOptions options;
    options.stream_filter = [&](std::string_view stream) {
      streams_asked.emplace_back(stream);
      return stream == "scan-1" || stream == "scan-3";
    };
    auto visited = store.ScanAll(
        from, to,
        [&](const RecordedEvent& event) {
          CHECK(SameRecord(event, log[event.position - 1]));
          positions.push_back(event.position);
          return positions.size() < stop_after;
        },
        options);
    REQUIRE(visited.has_value());
    CHECK(*visited == positions.size());
    return positions;
  };
  CHECK(filtered(1, 20, SIZE_MAX) == Positions{6, 7, 8, 9, 10, 16, 17, 18, 19, 20});
  CHECK(streams_asked.size() == 20);  // Asked once about every record.
  CHECK(filtered(8, 17, SIZE_MAX) == Positions{8, 9, 10, 16, 17});
  CHECK(filtered(1, 20, 7) == Positions{6, 7, 8, 9, 10, 16, 17});
  CHECK(filtered(1, 5, SIZE_MAX).empty());
}

TEMPLATE_TEST_CASE("an event reads by its id", "[conformance][read]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const auto a = MakeEvents("by-id/a", 3);
  const auto b = MakeEvents("by-id/b", 2);
  MustAppend(store, "a", ExpectedVersion::NoStream(), a);
  MustAppend(store, "b", ExpectedVersion::NoStream(), b);
  auto found = store.ReadEvent(b[1].event_id);
  REQUIRE(found.has_value());
  REQUIRE(found->has_value());
  CHECK(SameContent(**found, "b", b[1]));
  CHECK((*found)->position == 5);
  CHECK((*found)->version == 1);
  found = store.ReadEvent(a[0].event_id);
  REQUIRE(found.has_value());
  REQUIRE(found->has_value());
  CHECK((*found)->position == 1);
  auto missing = store.ReadEvent(IdFor("never appended"));
  REQUIRE(missing.has_value());
  CHECK_FALSE(missing->has_value());
  missing = store.ReadEvent(EventId());
  REQUIRE(missing.has_value());
  CHECK_FALSE(missing->has_value());
}

TEMPLATE_TEST_CASE("stream versions and the head position follow the appends",
                   "[conformance][read]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  auto version_of = [&](std::string_view stream) {
    auto version = store.StreamVersion(stream);
    REQUIRE(version.has_value());
    return *version;
  };
  CHECK(store.HeadPosition() == 0);
  CHECK(version_of("a") == std::nullopt);
  MustAppend(store, "a", ExpectedVersion::Any(), MakeEvents("v/a", 4));
  CHECK(store.HeadPosition() == 4);
  CHECK(version_of("a") == 3);
  CHECK(version_of("b") == std::nullopt);
  MustAppend(store, "b", ExpectedVersion::Any(), MakeEvents("v/b", 1));
  MustAppend(store, "a", ExpectedVersion::Any(), MakeEvents("v/a2", 2));
  CHECK(store.HeadPosition() == 7);
  CHECK(version_of("a") == 5);
  CHECK(version_of("b") == 0);
  CHECK(version_of("a-") == std::nullopt);
  // A rejected call leaves both alone.
  MustFail(store, "a", ExpectedVersion::Exactly(1), MakeEvents("v/x", 1));
  CHECK(store.HeadPosition() == 7);
  CHECK(version_of("a") == 5);
}

TEMPLATE_TEST_CASE("recorded_at never decreases, even when the clock goes backwards",
                   "[conformance][time]", LEDGER_STORE_HARNESSES) {
  // Each reading of the clock takes the next value; readings beyond the list repeat the last.
  struct BackwardClock {
    std::vector<int64_t> values;
    std::shared_ptr<std::atomic<size_t>> next = std::make_shared<std::atomic<size_t>>(0);
    int64_t operator()() const {
      const size_t index = next->fetch_add(1);
      return values[std::min(index, values.size() - 1)];
    }
  };
  constexpr int64_t kSecond = 1'000'000;
  const int64_t base = 1'790'000'000 * kSecond;
  const BackwardClock clock{.values = {base, base - 5 * kSecond, base + 2 * kSecond, base - 1,
                                       base + 2 * kSecond, base + 3 * kSecond, base - 60 * kSecond,
                                       base + 4 * kSecond}};
  TestType harness(StoreSettings{.clock_us = clock, .recent_events_kept = 1 << 16});
  for (size_t i = 0; i < 12; ++i) {
    MustAppend(harness.store(), "clocked", ExpectedVersion::Any(),
               MakeEvents(fmt::format("clock/{}", i), 1 + i % 3));
  }
  auto check_never_decreases = [](const std::vector<RecordedEvent>& log) {
    for (size_t i = 1; i < log.size(); ++i) {
      INFO("position " << log[i].position);
      CHECK(log[i].recorded_at_us >= log[i - 1].recorded_at_us);
    }
  };
  auto log = ReadWholeLog(harness.store());
  check_never_decreases(log);
  // The times are the clock's readings (held back where the clock ran backwards); the last
  // appends came after it reached its latest reading.
  for (const RecordedEvent& event : log) {
    CHECK(std::find(clock.values.begin(), clock.values.end(), event.recorded_at_us) !=
          clock.values.end());
  }
  CHECK(log.back().recorded_at_us == base + 4 * kSecond);

  if constexpr (TestType::kSurvivesReopen) {
    // After a reopen with a clock an hour behind, time still does not run backwards.
    harness.Reopen(StoreSettings{.clock_us = [base] { return base - 3600 * kSecond; },
                                 .recent_events_kept = 1 << 16});
    MustAppend(harness.store(), "clocked", ExpectedVersion::Any(), MakeEvents("clock/after", 2));
    log = ReadWholeLog(harness.store());
    check_never_decreases(log);
    CHECK(log.back().recorded_at_us == base + 4 * kSecond);
  }
}

TEMPLATE_TEST_CASE("a reopened store holds everything and the chain continues",
                   "[conformance][reopen]", LEDGER_STORE_HARNESSES) {
  if constexpr (TestType::kSurvivesReopen) {
    TestType harness;
    for (size_t i = 0; i < 15; ++i) {
      MustAppend(harness.store(), fmt::format("r{}", i % 4), ExpectedVersion::Any(),
                 MakeEvents(fmt::format("reopen/{}", i), 1 + i % 3));
    }
    const auto before = CheckLogInvariants(harness.store());
    const uint64_t head = harness.store().HeadPosition();
    harness.Reopen();
    EventStore& store = harness.store();
    CHECK(store.HeadPosition() == head);
    const auto after = CheckLogInvariants(store);
    REQUIRE(after.size() == before.size());
    for (size_t i = 0; i < after.size(); ++i) CHECK(SameRecord(after[i], before[i]));
    for (const RecordedEvent& event : before) {
      auto found = store.ReadEvent(event.event_id);
      REQUIRE(found.has_value());
      REQUIRE(found->has_value());
      CHECK(SameRecord(**found, event));
    }

    auto version = store.StreamVersion("r1");
    REQUIRE(version.has_value());
    REQUIRE(version->has_value());
    const AppendResult next =
        MustAppend(store, "r1", ExpectedVersion::Exactly(**version), MakeEvents("reopen/next", 2));
    CHECK(next.first_position == head + 1);
    CHECK(next.stream_version == **version + 2);
    const AppendResult fresh =
        MustAppend(store, "r-new", ExpectedVersion::NoStream(), MakeEvents("reopen/fresh", 1));
    CHECK(fresh.first_position == head + 3);
    const auto continued = CheckLogInvariants(store);
    CHECK(continued[head].previous_hash == before.back().hash);

    harness.Reopen();
    CHECK(harness.store().HeadPosition() == head + 3);
    CheckLogInvariants(harness.store());
  }
}

TEMPLATE_TEST_CASE("Verify accepts a good log, over ranges, and reports progress",
                   "[conformance][verify]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  {
    auto empty = store.Verify(1, UINT64_MAX);
    REQUIRE(empty.has_value());
    CHECK(empty->ok);
    CHECK(empty->events_checked == 0);
  }
  for (size_t i = 0; i < 10; ++i) {
    MustAppend(store, fmt::format("v{}", i % 2), ExpectedVersion::Any(),
               MakeEvents(fmt::format("verify/{}", i), 3));
  }
  const auto log = ReadWholeLog(store);
  REQUIRE(log.size() == 30);

  auto verify = [&](uint64_t from, uint64_t to) {
    std::vector<std::pair<uint64_t, uint64_t>> calls;
    auto report = store.Verify(
        from, to, [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); });
    REQUIRE(report.has_value());
    INFO(report->problem);
    CHECK(report->ok);
    // Progress never runs backwards or past the total.
    for (size_t i = 0; i < calls.size(); ++i) {
      CHECK(calls[i].first <= calls[i].second);
      if (i > 0) CHECK(calls[i].first >= calls[i - 1].first);
    }
    return std::make_pair(*report, calls);
  };

  const auto [whole, whole_calls] = verify(1, UINT64_MAX);
  CHECK(whole.from_position == 1);
  CHECK(whole.to_position == 30);
  CHECK(whole.events_checked == 30);
  CHECK(whole.last_hash == log.back().hash);
  REQUIRE_FALSE(whole_calls.empty());
  CHECK(whole_calls.back() == std::make_pair(uint64_t{30}, uint64_t{30}));

  const auto [middle, middle_calls] = verify(5, 9);
  CHECK(middle.from_position == 5);
  CHECK(middle.to_position == 9);
  CHECK(middle.events_checked == 5);
  CHECK(middle.last_hash == log[8].hash);
  REQUIRE_FALSE(middle_calls.empty());
  CHECK(middle_calls.back() == std::make_pair(uint64_t{5}, uint64_t{5}));

  const auto [tail, tail_calls] = verify(28, 1000);
  CHECK(tail.to_position == 30);
  CHECK(tail.events_checked == 3);

  const auto [one, one_calls] = verify(30, 30);
  CHECK(one.events_checked == 1);
  CHECK(one.last_hash == log.back().hash);

  const auto [beyond, beyond_calls] = verify(31, UINT64_MAX);
  CHECK(beyond.events_checked == 0);
}

TEST_CASE("ExpectedVersion says which stream versions satisfy it",
          "[conformance][expected-version]") {
  const std::optional<uint64_t> none;
  CHECK(ExpectedVersion::Any().IsSatisfiedBy(none));
  CHECK(ExpectedVersion::Any().IsSatisfiedBy(5));
  CHECK(ExpectedVersion::NoStream().IsSatisfiedBy(none));
  CHECK_FALSE(ExpectedVersion::NoStream().IsSatisfiedBy(0));
  CHECK_FALSE(ExpectedVersion::StreamExists().IsSatisfiedBy(none));
  CHECK(ExpectedVersion::StreamExists().IsSatisfiedBy(0));
  CHECK(ExpectedVersion::Exactly(0).IsSatisfiedBy(0));
  CHECK_FALSE(ExpectedVersion::Exactly(0).IsSatisfiedBy(none));
  CHECK_FALSE(ExpectedVersion::Exactly(3).IsSatisfiedBy(4));
}

}  // namespace
}  // namespace ledger::eventstore::testing
