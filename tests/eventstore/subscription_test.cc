// Subscriptions and commit listeners, written against `EventStore&` and run once per harness in
// LEDGER_STORE_HARNESSES.
//
// Catch2's assertions are not thread-safe: threads started here only record what they saw, and
// the test thread checks it after joining them.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "tests/eventstore/store_test_support.h"

namespace ledger::eventstore::testing {
namespace {

using std::chrono::milliseconds;

// Long enough never to pass while events are on their way, even under the sanitizers; a Next
// that waits this long means the subscription missed its wake-up.
constexpr milliseconds kPatience(10'000);

// Appends `appends` batches of 1 to 4 events, round-robin over five streams, named
// "<prefix>/<i>". Returns the number of events, or the first error as a message.
struct WriterOutcome {
  uint64_t events = 0;
  std::string error;
};

WriterOutcome AppendBatches(EventStore& store, std::string_view prefix, size_t appends) {
  WriterOutcome outcome;
  for (size_t i = 0; i < appends; ++i) {
    const auto events = MakeEvents(fmt::format("{}/{}", prefix, i), 1 + i % 4);
    auto result = store.Append(fmt::format("{}-{}", prefix, i % 5), ExpectedVersion::Any(), events);
    if (!result) {
      outcome.error = result.error().ToString();
      return outcome;
    }
    outcome.events += events.size();
  }
  return outcome;
}

size_t EventsIn(size_t appends) {
  size_t events = 0;
  for (size_t i = 0; i < appends; ++i) events += 1 + i % 4;
  return events;
}

// Reads from `subscription` until it has delivered everything up to `last_position`, with
// batches of varying size. Stops early (and the caller's checks fail) when a Next errs or waits
// out kPatience.
struct Delivery {
  std::vector<RecordedEvent> events;
  std::string error;
};

Delivery ReadUntil(Subscription& subscription, uint64_t last_position, size_t max_count_max) {
  Delivery delivery;
  size_t call = 0;
  while (subscription.last_position() < last_position) {
    const size_t max_count = 1 + (call++ * 5) % max_count_max;
    auto events = subscription.Next(max_count, kPatience);
    if (!events) {
      delivery.error = events.error().ToString();
      break;
    }
    if (events->empty()) {
      delivery.error = fmt::format("Next waited {} ms at position {} for events up to {}",
                                   kPatience.count(), subscription.last_position(), last_position);
      break;
    }
    if (events->size() > max_count) {
      delivery.error =
          fmt::format("Next returned {} events for max_count {}", events->size(), max_count);
      break;
    }
    if (events->back().position != subscription.last_position()) {
      delivery.error = "last_position() is not the position of the last event delivered";
      break;
    }
    for (RecordedEvent& event : *events) delivery.events.push_back(std::move(event));
  }
  return delivery;
}

// Checks that `delivered` is exactly the log's positions [first, last], each once, in order, and
// equal to the log's records.
void CheckDelivered(const std::vector<RecordedEvent>& delivered,
                    const std::vector<RecordedEvent>& log, uint64_t first, uint64_t last) {
  REQUIRE(log.size() >= last);
  REQUIRE(delivered.size() == last - first + 1);
  for (size_t i = 0; i < delivered.size(); ++i) {
    INFO("delivery " << i);
    REQUIRE(delivered[i].position == first + i);
    CHECK(SameRecord(delivered[i], log[first + i - 1]));
  }
}

TEMPLATE_TEST_CASE("a subscription catches up and goes live without a gap or a duplicate",
                   "[subscription]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const size_t prefill_appends = 30;
  const size_t live_appends = Scaled(300, 120);
  REQUIRE(AppendBatches(store, "prefill", prefill_appends).error.empty());
  const uint64_t total = EventsIn(prefill_appends) + EventsIn(live_appends);

  // The writer starts first, so the subscriber catches up while the log is still growing and
  // switches to live delivery in the middle of the writes.
  std::promise<WriterOutcome> written;
  std::thread writer([&] { written.set_value(AppendBatches(store, "live", live_appends)); });
  auto subscription = store.SubscribeToAll(0);
  const Delivery delivery = ReadUntil(*subscription, total, 13);
  writer.join();
  const WriterOutcome outcome = written.get_future().get();
  REQUIRE(outcome.error.empty());
  INFO(delivery.error);
  REQUIRE(delivery.error.empty());
  REQUIRE(store.HeadPosition() == total);
  CheckDelivered(delivery.events, CheckLogInvariants(store), 1, total);
  // Nothing more, and nothing twice.
  auto more = subscription->Next(100, milliseconds(0));
  REQUIRE(more.has_value());
  CHECK(more->empty());
  CHECK(subscription->last_position() == total);
}

TEMPLATE_TEST_CASE("a subscription from a checkpoint delivers every later event once",
                   "[subscription]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  REQUIRE(AppendBatches(harness.store(), "checkpoint", 20).error.empty());
  const uint64_t head = harness.store().HeadPosition();
  REQUIRE(head == EventsIn(20));

  SECTION("from a position inside the log") {
    auto subscription = harness.store().SubscribeToAll(20);
    CHECK(subscription->last_position() == 20);
    const Delivery delivery = ReadUntil(*subscription, head, 100);
    INFO(delivery.error);
    REQUIRE(delivery.error.empty());
    CheckDelivered(delivery.events, ReadWholeLog(harness.store()), 21, head);
  }
  SECTION("a restarted subscriber resumes at its checkpoint") {
    Delivery first;
    uint64_t checkpoint = 0;
    {
      auto subscription = harness.store().SubscribeToAll(0);
      first = ReadUntil(*subscription, 17, 4);
      checkpoint = subscription->last_position();
      subscription->Close();
    }
    REQUIRE(first.error.empty());
    REQUIRE(checkpoint >= 17);
    REQUIRE(checkpoint < head);
    auto resumed = harness.store().SubscribeToAll(checkpoint);
    Delivery second = ReadUntil(*resumed, head, 6);
    REQUIRE(second.error.empty());
    for (RecordedEvent& event : second.events) first.events.push_back(std::move(event));
    CheckDelivered(first.events, ReadWholeLog(harness.store()), 1, head);

    // It then goes on with what is appended later.
    REQUIRE(AppendBatches(harness.store(), "later", 4).error.empty());
    const Delivery live = ReadUntil(*resumed, harness.store().HeadPosition(), 100);
    REQUIRE(live.error.empty());
    CheckDelivered(live.events, ReadWholeLog(harness.store()), head + 1,
                   harness.store().HeadPosition());
  }
  SECTION("from the head: nothing until something is appended") {
    auto subscription = harness.store().SubscribeToAll(head);
    auto nothing = subscription->Next(100, milliseconds(0));
    REQUIRE(nothing.has_value());
    CHECK(nothing->empty());
    CHECK(subscription->last_position() == head);
    MustAppend(harness.store(), "s", ExpectedVersion::Any(), MakeEvents("after-head", 2));
    const Delivery delivery = ReadUntil(*subscription, head + 2, 100);
    REQUIRE(delivery.error.empty());
    CheckDelivered(delivery.events, ReadWholeLog(harness.store()), head + 1, head + 2);
  }
  if constexpr (TestType::kSurvivesReopen) {
    SECTION("from a checkpoint, after the store is reopened") {
      harness.Reopen();
      auto subscription = harness.store().SubscribeToAll(head - 7);
      const Delivery delivery = ReadUntil(*subscription, head, 3);
      REQUIRE(delivery.error.empty());
      CheckDelivered(delivery.events, ReadWholeLog(harness.store()), head - 6, head);
    }
  }
}

TEMPLATE_TEST_CASE("a subscriber that falls far behind still gets every event in order",
                   "[subscription]", LEDGER_STORE_HARNESSES) {
  // The store keeps only 16 recent events in memory: this subscriber must be served from disk.
  TestType harness(StoreSettings{.clock_us = {}, .recent_events_kept = 16});
  EventStore& store = harness.store();
  auto subscription = store.SubscribeToAll(0);
  MustAppend(store, "s", ExpectedVersion::Any(), MakeEvents("slow/first", 5));
  Delivery delivery = ReadUntil(*subscription, 5, 100);
  REQUIRE(delivery.error.empty());

  SECTION("the writes all come while it is not reading") {
    REQUIRE(AppendBatches(store, "slow", 120).error.empty());
  }
  SECTION("it reads a few events at a time while a writer appends") {
    std::promise<WriterOutcome> written;
    std::thread writer([&] { written.set_value(AppendBatches(store, "slow", 120)); });
    // Reads one to three events per call: the writer outpaces it by far.
    const Delivery during = ReadUntil(*subscription, 5 + EventsIn(120) / 2, 3);
    writer.join();
    REQUIRE(written.get_future().get().error.empty());
    REQUIRE(during.error.empty());
    for (const RecordedEvent& event : during.events) delivery.events.push_back(event);
  }
  const uint64_t head = store.HeadPosition();
  REQUIRE(head == 5 + EventsIn(120));
  const Delivery rest = ReadUntil(*subscription, head, 7);
  INFO(rest.error);
  REQUIRE(rest.error.empty());
  for (const RecordedEvent& event : rest.events) delivery.events.push_back(event);
  CheckDelivered(delivery.events, CheckLogInvariants(store), 1, head);
}

TEMPLATE_TEST_CASE("Close wakes a Next that waits on another thread", "[subscription]",
                   LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  MustAppend(store, "s", ExpectedVersion::Any(), MakeEvents("close", 3));
  auto subscription = store.SubscribeToAll(store.HeadPosition());

  std::promise<void> started;
  std::promise<std::pair<bool, size_t>> outcome;  // (ok, events delivered)
  std::atomic<int64_t> waited_ms{0};
  std::thread waiter([&] {
    started.set_value();
    const auto begin = std::chrono::steady_clock::now();
    auto events = subscription->Next(10, std::chrono::minutes(2));
    waited_ms =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - begin).count();
    outcome.set_value({events.has_value(), events.has_value() ? events->size() : 0});
  });
  started.get_future().wait();
  // No signal says "Next is now blocked", so give it a moment to get there; if Close comes
  // first, Next must still return at once, so the check below holds either way.
  std::this_thread::sleep_for(milliseconds(50));
  subscription->Close();
  waiter.join();
  const auto [ok, delivered] = outcome.get_future().get();
  CHECK(ok);
  CHECK(delivered == 0);
  CHECK(waited_ms.load() < 30'000);

  // Closed for good: Close again is harmless, and Next returns nothing at once, even when
  // events arrive.
  subscription->Close();
  MustAppend(store, "s", ExpectedVersion::Any(), MakeEvents("after-close", 1));
  const auto begin = std::chrono::steady_clock::now();
  auto after = subscription->Next(10, std::chrono::minutes(2));
  CHECK(std::chrono::steady_clock::now() - begin < std::chrono::seconds(30));
  REQUIRE(after.has_value());
  CHECK(after->empty());
}

TEMPLATE_TEST_CASE("Next returns nothing when its timeout passes, and wakes for a commit",
                   "[subscription]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  MustAppend(store, "s", ExpectedVersion::Any(), MakeEvents("timeout", 2));
  auto subscription = store.SubscribeToAll(2);

  const auto begin = std::chrono::steady_clock::now();
  auto nothing = subscription->Next(10, milliseconds(100));
  const auto waited = std::chrono::steady_clock::now() - begin;
  REQUIRE(nothing.has_value());
  CHECK(nothing->empty());
  CHECK(waited < kPatience);
  CHECK(subscription->last_position() == 2);

  // A Next waiting with a long timeout returns as soon as an event is committed.
  std::promise<void> started;
  std::promise<std::vector<uint64_t>> delivered;
  std::thread waiter([&] {
    started.set_value();
    auto events = subscription->Next(10, std::chrono::minutes(2));
    std::vector<uint64_t> positions;
    if (events) {
      for (const RecordedEvent& event : *events) positions.push_back(event.position);
    }
    delivered.set_value(positions);
  });
  started.get_future().wait();
  const auto appended_at = std::chrono::steady_clock::now();
  MustAppend(store, "s", ExpectedVersion::Any(), MakeEvents("wake", 1));
  waiter.join();
  CHECK(std::chrono::steady_clock::now() - appended_at < std::chrono::seconds(30));
  CHECK(delivered.get_future().get() == std::vector<uint64_t>{3});
}

// "At most max_count": zero means none.
TEMPLATE_TEST_CASE("Next with max_count 0 delivers nothing", "[subscription]",
                   LEDGER_STORE_HARNESSES) {
  TestType harness;
  MustAppend(harness.store(), "s", ExpectedVersion::Any(), MakeEvents("zero", 2));
  auto subscription = harness.store().SubscribeToAll(0);
  auto events = subscription->Next(0, milliseconds(0));
  REQUIRE(events.has_value());
  CHECK(events->empty());
  CHECK(subscription->last_position() == 0);
}

TEMPLATE_TEST_CASE("commit listeners hear the new head after each commit", "[subscription]",
                   LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  std::mutex mutex;
  std::vector<uint64_t> heard_first;
  std::vector<uint64_t> heard_second;
  const uint64_t first = store.AddCommitListener([&](uint64_t head) {
    std::lock_guard lock(mutex);
    heard_first.push_back(head);
  });
  const uint64_t second = store.AddCommitListener([&](uint64_t head) {
    std::lock_guard lock(mutex);
    heard_second.push_back(head);
  });
  CHECK(first != second);

  MustAppend(store, "a", ExpectedVersion::Any(), MakeEvents("listen/1", 3));
  MustAppend(store, "b", ExpectedVersion::Any(), MakeEvents("listen/2", 2));
  MustAppend(store, "a", ExpectedVersion::Any(), MakeEvents("listen/3", 1));
  {
    std::lock_guard lock(mutex);
    CHECK(heard_first == std::vector<uint64_t>{3, 5, 6});
    CHECK(heard_second == std::vector<uint64_t>{3, 5, 6});
  }
  store.RemoveCommitListener(first);
  MustAppend(store, "a", ExpectedVersion::Any(), MakeEvents("listen/4", 4));
  std::lock_guard lock(mutex);
  CHECK(heard_first == std::vector<uint64_t>{3, 5, 6});
  CHECK(heard_second == std::vector<uint64_t>{3, 5, 6, 10});
  store.RemoveCommitListener(second);
}

}  // namespace
}  // namespace ledger::eventstore::testing
