// Crash test: a child process (eventstore_crash_appender) appends batches to the RocksDB store in
// a loop and acknowledges each append that returned success on a pipe; the test kills it with
// SIGKILL at random moments, reopens the store and checks that
//   - every acknowledged append is there, at the positions it was told, with its content;
//   - no batch is partial, acknowledged or not (each event names its batch and its size);
//   - positions are gapless from 1, versions gapless in each stream, and Verify is ok;
// then the next round's child appends on the same directory, after retrying the previous round's
// batches: a retry of an append that was committed must return its original positions, so no
// batch is ever in the log twice.
//
// Half the rounds kill at a random time after the start (which may fall inside open and
// recovery), half at a random time after the first acknowledgement (inside the append loop).
#include <catch2/catch.hpp>

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "tests/eventstore/crash_batch.h"
#include "tests/eventstore/store_test_support.h"
#include "tests/support/child_process.h"

namespace ledger::eventstore::testing {
namespace {

struct Ack {
  uint64_t round = 0;
  uint64_t batch = 0;
  uint64_t first_position = 0;
  uint64_t last_position = 0;
};

// One run of the child, from spawn to SIGKILL, and what it acknowledged.
struct ChildRun {
  std::vector<Ack> acks;
  std::string error;  // What the child reported, or why the run went wrong.
  bool killed = false;
};

// Starts the child with its acknowledgements on fd 3; kills it once `kill_after` has passed
// since the start (or since its first acknowledgement of a batch of this round, after its
// retries, when `after_first_ack`), reading the pipe all along so the child never blocks on it.
ChildRun RunChild(const std::string& data_dir, uint64_t round, uint64_t retry_round,
                  uint64_t retry_batches, std::chrono::milliseconds kill_after,
                  bool after_first_ack) {
  ChildRun run;
  // The child's acknowledgements come on its fd 3.
  const ledger::testing::SpawnedChild spawned =
      ledger::testing::SpawnReporting({LEDGER_CRASH_APPENDER, data_dir, std::to_string(round), "3",
                                       std::to_string(retry_round), std::to_string(retry_batches)},
                                      3);
  const pid_t child = spawned.pid;
  const int pipe_fd = spawned.pipe_read_fd;

  // A child that never acknowledges is stuck; this bounds the wait for the first ack.
  constexpr std::chrono::seconds kFirstAckPatience(30);
  auto deadline =
      std::chrono::steady_clock::now() + (after_first_ack ? kFirstAckPatience : kill_after);
  bool deadline_is_final = !after_first_ack;
  std::string buffer;
  bool child_closed_pipe = false;
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      if (deadline_is_final) break;
      run.error = "the child acknowledged nothing in time";
      break;
    }
    pollfd poll_fd{.fd = pipe_fd, .events = POLLIN, .revents = 0};
    const auto wait_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    const int ready = ::poll(&poll_fd, 1, static_cast<int>(wait_ms));
    if (ready <= 0) continue;  // Timed out (checked above) or interrupted.
    char chunk[4096];
    const ssize_t got = ::read(pipe_fd, chunk, sizeof chunk);
    if (got <= 0) {
      child_closed_pipe = true;  // The child exited on its own: it reported why.
      break;
    }
    buffer.append(chunk, static_cast<size_t>(got));
    if (!deadline_is_final && buffer.find(fmt::format("ack {} ", round)) != std::string::npos) {
      deadline = std::chrono::steady_clock::now() + kill_after;
      deadline_is_final = true;
    }
  }
  run.killed = ledger::testing::KillAndReap(child);
  // Whatever the child wrote before it died is still in the pipe.
  if (!child_closed_pipe) {
    char chunk[4096];
    ssize_t got = 0;
    while ((got = ::read(pipe_fd, chunk, sizeof chunk)) > 0) {
      buffer.append(chunk, static_cast<size_t>(got));
    }
  }
  ::close(pipe_fd);

  std::istringstream lines(buffer);
  std::string line;
  while (std::getline(lines, line)) {
    Ack ack;
    unsigned long long values[4] = {};
    if (std::sscanf(line.c_str(), "ack %llu %llu %llu %llu", &values[0], &values[1], &values[2],
                    &values[3]) == 4) {
      run.acks.push_back(Ack{.round = values[0],
                             .batch = values[1],
                             .first_position = values[2],
                             .last_position = values[3]});
    } else {
      run.error += line;
    }
  }
  if (!buffer.empty() && buffer.back() != '\n') run.error += " (a torn acknowledgement line)";
  return run;
}

// Checks that every event of the log belongs to a whole batch: its events at consecutive
// positions, in order, in the right stream, with the right content.
void CheckWholeBatches(const std::vector<RecordedEvent>& log) {
  std::set<std::pair<uint64_t, uint64_t>> batches_seen;
  size_t i = 0;
  while (i < log.size()) {
    const auto name = ParseCrashPayload(log[i].payload);
    INFO("position " << log[i].position);
    REQUIRE(name.has_value());
    REQUIRE(name->event == 0);
    const auto batch = CrashBatch(name->round, name->batch);
    REQUIRE(name->count == batch.size());
    INFO("round " << name->round << " batch " << name->batch);
    REQUIRE(batches_seen.emplace(name->round, name->batch).second);
    REQUIRE(i + batch.size() <= log.size());
    for (size_t e = 0; e < batch.size(); ++e) {
      INFO("event " << e << " of round " << name->round << " batch " << name->batch);
      REQUIRE(SameContent(log[i + e], CrashStream(name->batch), batch[e]));
    }
    i += batch.size();
  }
}

TEST_CASE(
    "after SIGKILL at random moments every acknowledged append is whole and the log "
    "verifies",
    "[crash]") {
  TempDir dir("crash");
  const std::string data_dir = dir.Child("store");
  const size_t rounds = 24;
  const std::random_device::result_type seed = std::random_device()();
  CAPTURE(seed);
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> since_start_ms(2, IsSanitized() ? 400 : 150);
  std::uniform_int_distribution<int> since_first_ack_ms(0, 60);

  // Over all rounds, (round, batch) -> (first, last position): none may ever go missing or move.
  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, uint64_t>> acknowledged;
  size_t acknowledged_in_previous_round = 0;
  size_t kills = 0;
  for (uint64_t round = 0; round < rounds; ++round) {
    CAPTURE(round);
    const bool after_first_ack = round % 2 == 1;
    const std::chrono::milliseconds kill_after(after_first_ack ? since_first_ack_ms(random)
                                                               : since_start_ms(random));
    // Retries the previous round's acknowledged batches and the two after them (which the kill
    // may have caught before, during or after their commit).
    const uint64_t retry_round = round == 0 ? 0 : round - 1;
    const uint64_t retry_batches = round == 0 ? 0 : acknowledged_in_previous_round + 2;
    const ChildRun run =
        RunChild(data_dir, round, retry_round, retry_batches, kill_after, after_first_ack);
    INFO("child: " << run.error);
    REQUIRE(run.error.empty());
    REQUIRE(run.killed);
    ++kills;
    acknowledged_in_previous_round = 0;
    for (const Ack& ack : run.acks) {
      REQUIRE((ack.round == round || (round > 0 && ack.round == retry_round)));
      const auto positions = std::make_pair(ack.first_position, ack.last_position);
      const auto [entry, inserted] =
          acknowledged.emplace(std::make_pair(ack.round, ack.batch), positions);
      if (!inserted) {
        INFO("round " << ack.round << " batch " << ack.batch << " retried");
        CHECK(entry->second == positions);
      }
      if (ack.round == round) ++acknowledged_in_previous_round;
    }

    auto store = MustOpenRocksDb(data_dir);
    const auto log = CheckLogInvariants(*store);
    CheckWholeBatches(log);
    for (const auto& [batch_name, positions] : acknowledged) {
      const auto [ack_round, ack_batch] = batch_name;
      const auto [first, last] = positions;
      INFO("acknowledged round " << ack_round << " batch " << ack_batch << " at " << first << ".."
                                 << last);
      const auto batch = CrashBatch(ack_round, ack_batch);
      REQUIRE(last - first + 1 == batch.size());
      REQUIRE(last <= log.size());
      for (size_t e = 0; e < batch.size(); ++e) {
        REQUIRE(SameContent(log[first - 1 + e], CrashStream(ack_batch), batch[e]));
      }
    }
    // Retried now, after recovery, this round's acknowledged appends return their original
    // positions and write nothing.
    for (const Ack& ack : run.acks) {
      if (ack.round != round) continue;
      INFO("retrying round " << ack.round << " batch " << ack.batch);
      const AppendResult replay =
          MustAppend(*store, CrashStream(ack.batch), ExpectedVersion::NoStream(),
                     CrashBatch(ack.round, ack.batch));
      CHECK(replay.idempotent_replay);
      CHECK(replay.first_position == ack.first_position);
      CHECK(replay.last_position == ack.last_position);
    }
    CHECK(store->HeadPosition() == log.size());
  }
  CHECK(kills >= 20);
  // The kills must have landed among appends, not only before the first one.
  CHECK(acknowledged.size() >= rounds / 2);
}

}  // namespace
}  // namespace ledger::eventstore::testing
