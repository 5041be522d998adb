// Many threads at once on one store: appends to one stream (every conflict detected), to
// distinct streams, retries of the same event ids (every retry answered with the original
// result, one copy stored), and readers walking the log while it grows. Written against
// `EventStore&` and run once per harness in LEDGER_STORE_HARNESSES.
//
// Catch2's assertions are not thread-safe: the threads only record what they saw, and the test
// thread checks it after joining them.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <latch>
#include <map>
#include <set>
#include <thread>

#include "tests/eventstore/store_test_support.h"

namespace ledger::eventstore::testing {
namespace {

constexpr size_t kThreads = 8;

// Runs body(thread_index) on kThreads threads that start together.
template <typename Body>
void RunThreads(Body body) {
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&start, &body, t] {
      start.arrive_and_wait();
      body(t);
    });
  }
  for (std::thread& thread : threads) thread.join();
}

struct Success {
  std::string name;  // MakeEvents prefix of the append.
  AppendResult result;
};

// What one thread saw.
struct ThreadLog {
  std::vector<Success> successes;
  size_t conflicts = 0;
  std::vector<std::string> problems;  // Anything the contract forbids, described.
};

void CheckNoProblems(const std::vector<ThreadLog>& logs) {
  for (size_t t = 0; t < logs.size(); ++t) {
    INFO("thread " << t);
    for (const std::string& problem : logs[t].problems) FAIL_CHECK(problem);
  }
}

// Checks that the successful appends were stored at the positions they were told, with their
// content, and nothing else: together they tile positions 1..head.
void CheckSuccessesStored(const std::vector<ThreadLog>& logs, const std::vector<RecordedEvent>& log,
                          const std::function<size_t(const std::string&)>& events_per_append_of) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const ThreadLog& thread_log : logs) {
    for (const Success& success : thread_log.successes) {
      const auto events = MakeEvents(success.name, events_per_append_of(success.name));
      REQUIRE(success.result.last_position - success.result.first_position + 1 == events.size());
      ranges.emplace_back(success.result.first_position, success.result.last_position);
      for (size_t i = 0; i < events.size(); ++i) {
        const uint64_t position = success.result.first_position + i;
        REQUIRE(position <= log.size());
        const RecordedEvent& stored = log[position - 1];
        CHECK(SameContent(stored, stored.stream, events[i]));
        CHECK(stored.version == success.result.stream_version - (events.size() - 1 - i));
      }
    }
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t next = 1;
  for (const auto& [first, last] : ranges) {
    CHECK(first == next);
    next = last + 1;
  }
  CHECK(next == log.size() + 1);
}

TEMPLATE_TEST_CASE("concurrent appends to one stream detect every conflict", "[concurrency]",
                   LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const size_t attempts = Scaled(300, 60);
  std::vector<ThreadLog> logs(kThreads);
  RunThreads([&](size_t t) {
    ThreadLog& mine = logs[t];
    for (size_t a = 0; a < attempts; ++a) {
      auto current = store.StreamVersion("contended");
      if (!current) {
        mine.problems.push_back(current.error().ToString());
        return;
      }
      const ExpectedVersion expected =
          current->has_value() ? ExpectedVersion::Exactly(**current) : ExpectedVersion::NoStream();
      const std::string name = fmt::format("contended/{}/{}", t, a);
      auto result = store.Append("contended", expected, MakeEvents(name, 2));
      if (result) {
        const uint64_t version_after = current->has_value() ? **current + 2 : 1;
        if (result->stream_version != version_after || result->idempotent_replay) {
          mine.problems.push_back(fmt::format("{} expecting {} got version {}", name,
                                              expected.ToString(), result->stream_version));
        }
        mine.successes.push_back({name, *result});
      } else if (result.error().code == ErrorCode::kWrongExpectedVersion) {
        ++mine.conflicts;
        if (result.error().current_version == *current) {
          mine.problems.push_back(
              fmt::format("{}: a conflict reports the version the append expected", name));
        }
        if (!result.error().current_version.has_value()) {
          mine.problems.push_back(
              fmt::format("{}: a conflict on a stream that exists reports "
                          "no stream",
                          name));
        }
      } else {
        mine.problems.push_back(result.error().ToString());
      }
    }
  });
  CheckNoProblems(logs);

  size_t successes = 0;
  size_t conflicts = 0;
  std::set<uint64_t> versions;
  for (const ThreadLog& thread_log : logs) {
    successes += thread_log.successes.size();
    conflicts += thread_log.conflicts;
    for (const Success& success : thread_log.successes) {
      CHECK(versions.insert(success.result.stream_version).second);
    }
  }
  CHECK(successes + conflicts == kThreads * attempts);
  REQUIRE(successes > 0);
  auto version = store.StreamVersion("contended");
  REQUIRE(version.has_value());
  CHECK(*version == std::optional<uint64_t>(2 * successes - 1));
  const auto log = CheckLogInvariants(store);
  CHECK(log.size() == 2 * successes);
  CheckSuccessesStored(logs, log, [](const std::string&) -> size_t { return 2; });
  // A rejected append left no trace of its ids.
  size_t ids_found = 0;
  for (size_t t = 0; t < kThreads; ++t) {
    for (size_t a = 0; a < attempts; ++a) {
      auto found = store.ReadEvent(IdFor(fmt::format("contended/{}/{}/0", t, a)));
      REQUIRE(found.has_value());
      if (found->has_value()) ++ids_found;
    }
  }
  CHECK(ids_found == successes);
}

TEMPLATE_TEST_CASE("concurrent appends to distinct streams all succeed, gapless", "[concurrency]",
                   LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const size_t appends = Scaled(300, 60);
  auto size_of = [](const std::string& name) -> size_t {
    return 1 + static_cast<size_t>(std::stoul(name.substr(name.rfind('/') + 1))) % 3;
  };
  std::vector<ThreadLog> logs(kThreads);
  RunThreads([&](size_t t) {
    ThreadLog& mine = logs[t];
    const std::string stream = fmt::format("own-{}", t);
    uint64_t last_position = 0;
    uint64_t events_so_far = 0;
    for (size_t a = 0; a < appends; ++a) {
      const std::string name = fmt::format("own/{}/{}", t, a);
      auto result = store.Append(stream, ExpectedVersion::Any(), MakeEvents(name, size_of(name)));
      if (!result) {
        mine.problems.push_back(result.error().ToString());
        return;
      }
      events_so_far += size_of(name);
      if (result->first_position <= last_position) {
        mine.problems.push_back(fmt::format("{} went to position {}, after {}", name,
                                            result->first_position, last_position));
      }
      if (result->stream_version != events_so_far - 1) {
        mine.problems.push_back(
            fmt::format("{} left the stream at version {}", name, result->stream_version));
      }
      last_position = result->last_position;
      mine.successes.push_back({name, *result});
    }
  });
  CheckNoProblems(logs);
  for (const ThreadLog& thread_log : logs) CHECK(thread_log.successes.size() == appends);
  const auto log = CheckLogInvariants(store);
  CheckSuccessesStored(logs, log, size_of);
}

TEMPLATE_TEST_CASE("AppendMany calls and single appends at once: gapless, each where it was told",
                   "[concurrency][append_many]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const size_t calls = Scaled(200, 40);
  constexpr size_t kRequestsPerCall = 3;
  auto size_of = [](const std::string& name) -> size_t {
    return 1 + static_cast<size_t>(std::stoul(name.substr(name.rfind('/') + 1))) % 2;
  };
  std::vector<ThreadLog> logs(kThreads);
  RunThreads([&](size_t t) {
    ThreadLog& mine = logs[t];
    for (size_t c = 0; c < calls; ++c) {
      if (t % 2 == 0) {
        const std::string name = fmt::format("single/{}/{}", t, c);
        auto result = store.Append(fmt::format("single-{}", t), ExpectedVersion::Any(),
                                   MakeEvents(name, size_of(name)));
        if (!result) {
          mine.problems.push_back(result.error().ToString());
          return;
        }
        mine.successes.push_back({name, *result});
        continue;
      }
      // Three requests to three streams of this thread; the names keep their events apart.
      std::vector<std::string> names;
      std::vector<std::string> streams;
      std::vector<std::vector<NewEvent>> events;
      for (size_t r = 0; r < kRequestsPerCall; ++r) {
        names.push_back(fmt::format("many/{}/{}", t, c * kRequestsPerCall + r));
        streams.push_back(fmt::format("many-{}-{}", t, r));
        events.push_back(MakeEvents(names.back(), size_of(names.back())));
      }
      std::vector<AppendRequest> requests;
      for (size_t r = 0; r < kRequestsPerCall; ++r) {
        // Each stream of this thread gets one request per call, so its version is known.
        requests.push_back(
            {.stream = streams[r],
             .expected = c == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::StreamExists(),
             .events = events[r]});
      }
      auto results = store.AppendMany(requests);
      if (results.size() != kRequestsPerCall) {
        mine.problems.push_back(
            fmt::format("{} results for {} requests", results.size(), kRequestsPerCall));
        return;
      }
      for (size_t r = 0; r < kRequestsPerCall; ++r) {
        if (!results[r]) {
          mine.problems.push_back(results[r].error().ToString());
          return;
        }
        if (r > 0 && results[r]->first_position != results[r - 1]->last_position + 1) {
          mine.problems.push_back(
              fmt::format("{}: the requests of one call are not adjacent", names[r]));
        }
        mine.successes.push_back({names[r], *results[r]});
      }
    }
  });
  CheckNoProblems(logs);
  const auto log = CheckLogInvariants(store);
  CheckSuccessesStored(logs, log, size_of);
}

TEMPLATE_TEST_CASE("concurrent retries of the same event ids get the original result",
                   "[concurrency][idempotency]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const size_t batches = Scaled(40, 15);
  constexpr size_t kBatchEvents = 3;
  bool shared_stream = false;
  SECTION("each batch to its own new stream, expecting no stream") { shared_stream = false; }
  SECTION("every batch to one stream, expecting any version") { shared_stream = true; }

  // results[t][b]: what thread t was told for batch b.
  std::vector<std::vector<std::optional<AppendResult>>> results(
      kThreads, std::vector<std::optional<AppendResult>>(batches));
  std::vector<ThreadLog> logs(kThreads);
  RunThreads([&](size_t t) {
    for (size_t i = 0; i < batches; ++i) {
      // Each thread walks the batches from another starting point.
      const size_t b = (i + t * 5) % batches;
      const std::string stream = shared_stream ? "retry-shared" : fmt::format("retry-{}", b);
      const ExpectedVersion expected =
          shared_stream ? ExpectedVersion::Any() : ExpectedVersion::NoStream();
      auto result =
          store.Append(stream, expected, MakeEvents(fmt::format("retry/{}", b), kBatchEvents));
      if (!result) {
        logs[t].problems.push_back(fmt::format("batch {}: {}", b, result.error().ToString()));
        continue;
      }
      results[t][b] = *result;
    }
  });
  CheckNoProblems(logs);

  const auto log = CheckLogInvariants(store);
  CHECK(log.size() == batches * kBatchEvents);
  for (size_t b = 0; b < batches; ++b) {
    INFO("batch " << b);
    size_t writes = 0;
    REQUIRE(results[0][b].has_value());
    const AppendResult& reference = *results[0][b];
    for (size_t t = 0; t < kThreads; ++t) {
      REQUIRE(results[t][b].has_value());
      const AppendResult& result = *results[t][b];
      CHECK(result.first_position == reference.first_position);
      CHECK(result.last_position == reference.last_position);
      CHECK(result.stream_version == reference.stream_version);
      if (!result.idempotent_replay) ++writes;
    }
    CHECK(writes == 1);
    const auto events = MakeEvents(fmt::format("retry/{}", b), kBatchEvents);
    REQUIRE(reference.last_position - reference.first_position + 1 == kBatchEvents);
    for (size_t i = 0; i < kBatchEvents; ++i) {
      const RecordedEvent& stored = log[reference.first_position + i - 1];
      CHECK(SameContent(stored, shared_stream ? "retry-shared" : fmt::format("retry-{}", b),
                        events[i]));
    }
  }
}

TEMPLATE_TEST_CASE("concurrent appends of one event id with different content store one",
                   "[concurrency][idempotency]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const size_t batches = Scaled(30, 10);
  // Thread t's version of batch b: the same ids as every other thread's, its own payloads.
  auto batch_of = [](size_t t, size_t b) {
    auto events = MakeEvents(fmt::format("contested/{}", b), 2);
    for (NewEvent& event : events) event.payload += fmt::format(" as written by thread {}", t);
    return events;
  };
  std::vector<std::vector<std::optional<AppendResult>>> results(
      kThreads, std::vector<std::optional<AppendResult>>(batches));
  std::vector<ThreadLog> logs(kThreads);
  RunThreads([&](size_t t) {
    for (size_t i = 0; i < batches; ++i) {
      const size_t b = (i + t * 3) % batches;
      auto result =
          store.Append(fmt::format("contested-{}", b % 3), ExpectedVersion::Any(), batch_of(t, b));
      if (result) {
        results[t][b] = *result;
      } else if (result.error().code != ErrorCode::kEventIdReused) {
        logs[t].problems.push_back(fmt::format("batch {}: {}", b, result.error().ToString()));
      }
    }
  });
  CheckNoProblems(logs);
  const auto log = CheckLogInvariants(store);
  CHECK(log.size() == 2 * batches);
  for (size_t b = 0; b < batches; ++b) {
    INFO("batch " << b);
    std::vector<size_t> winners;
    for (size_t t = 0; t < kThreads; ++t) {
      if (results[t][b].has_value()) winners.push_back(t);
    }
    // Only the first writer's content is accepted: the others differ from what the log holds.
    REQUIRE(winners.size() == 1);
    const AppendResult& result = *results[winners[0]][b];
    CHECK_FALSE(result.idempotent_replay);
    const auto events = batch_of(winners[0], b);
    REQUIRE(result.last_position == result.first_position + 1);
    for (size_t i = 0; i < events.size(); ++i) {
      CHECK(SameContent(log[result.first_position - 1 + i], fmt::format("contested-{}", b % 3),
                        events[i]));
    }
  }
}

TEMPLATE_TEST_CASE("readers see a gapless, unchanging log while writers append",
                   "[concurrency][read]", LEDGER_STORE_HARNESSES) {
  TestType harness;
  EventStore& store = harness.store();
  const size_t appends = Scaled(120, 40);
  constexpr size_t kWriters = 4;
  std::atomic<size_t> writers_done{0};
  std::vector<ThreadLog> logs(kWriters + 1);
  std::vector<std::thread> threads;
  for (size_t w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (size_t a = 0; a < appends; ++a) {
        auto result = store.Append(fmt::format("w{}", w), ExpectedVersion::Any(),
                                   MakeEvents(fmt::format("reader/{}/{}", w, a), 1 + a % 2));
        if (!result) logs[w].problems.push_back(result.error().ToString());
      }
      ++writers_done;
    });
  }
  // The reader pages through the log from the start until the writers are done and it has read
  // the final head, checking every page links to what it read before.
  threads.emplace_back([&] {
    ThreadLog& mine = logs[kWriters];
    std::vector<Hash256> hashes;  // hashes[p - 1]: the hash seen at position p.
    size_t passes = 0;
    while (true) {
      const bool last_pass = writers_done.load() == kWriters;
      const uint64_t head_before = store.HeadPosition();
      uint64_t next = 1;
      Hash256 previous{};
      while (true) {
        auto page = store.ReadAll(next, 50);
        if (!page) {
          mine.problems.push_back(page.error().ToString());
          return;
        }
        if (page->events.empty()) break;
        for (const RecordedEvent& event : page->events) {
          if (event.position != next || event.previous_hash != previous) {
            mine.problems.push_back(
                fmt::format("pass {}: position {} where {} was due, or it "
                            "does not link",
                            passes, event.position, next));
            return;
          }
          if (event.position <= hashes.size() && hashes[event.position - 1] != event.hash) {
            mine.problems.push_back(fmt::format("position {} changed", event.position));
          }
          if (event.position > hashes.size()) hashes.push_back(event.hash);
          previous = event.hash;
          ++next;
        }
      }
      if (next - 1 < head_before) {
        mine.problems.push_back(
            fmt::format("read up to {} but the head was {} before", next - 1, head_before));
      }
      ++passes;
      if (last_pass) return;
    }
  });
  for (std::thread& thread : threads) thread.join();
  CheckNoProblems(logs);
  const auto log = CheckLogInvariants(store);
  CHECK(log.size() == kWriters * (appends + appends / 2));
}

}  // namespace
}  // namespace ledger::eventstore::testing
