// The batches the crash test's child process appends, shared by the child (crash_appender.cc)
// and the parent that checks the log after each kill (crash_test.cc). Every event says which
// batch it belongs to, so the parent can tell a whole batch from a partial one without knowing
// what the child managed to acknowledge.
//
// Thread safety: free functions, safe from any thread.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eventstore/event_store.h"

namespace ledger::eventstore::testing {

// Where batch `batch` of round `round` goes, and how many events it holds (2 to 6).
inline std::string CrashStream(uint64_t batch) { return fmt::format("crash-{}", batch % 4); }
inline size_t CrashBatchEvents(uint64_t round, uint64_t batch) {
  return 2 + static_cast<size_t>((round * 7 + batch) % 5);
}

// The payload names the event; the padding makes records of a realistic size (~250 bytes).
inline std::string CrashPayload(uint64_t round, uint64_t batch, size_t event, size_t count) {
  std::string payload =
      fmt::format("round={} batch={} event={} count={};", round, batch, event, count);
  payload.resize(250, '.');
  return payload;
}

inline std::vector<NewEvent> CrashBatch(uint64_t round, uint64_t batch) {
  const size_t count = CrashBatchEvents(round, batch);
  std::vector<NewEvent> events;
  for (size_t i = 0; i < count; ++i) {
    events.push_back(NewEvent{
        .event_id = EventId::FromName("eventstore-crash", fmt::format("{}/{}/{}", round, batch, i)),
        .event_type = "CrashEvent",
        .payload = CrashPayload(round, batch, i, count),
        .correlation_id = EventId(),
        .causation_id = EventId(),
        .actor = "crash-appender",
        .schema_version = 1});
  }
  return events;
}

// Which batch an event read back belongs to, from its payload.
struct CrashEventName {
  uint64_t round = 0;
  uint64_t batch = 0;
  size_t event = 0;
  size_t count = 0;
};

inline std::optional<CrashEventName> ParseCrashPayload(const std::string& payload) {
  CrashEventName name;
  unsigned long long round = 0;
  unsigned long long batch = 0;
  unsigned long long event = 0;
  unsigned long long count = 0;
  if (std::sscanf(payload.c_str(), "round=%llu batch=%llu event=%llu count=%llu;", &round, &batch,
                  &event, &count) != 4) {
    return std::nullopt;
  }
  name.round = round;
  name.batch = batch;
  name.event = static_cast<size_t>(event);
  name.count = static_cast<size_t>(count);
  return name;
}

// The line the child writes to its acknowledgement pipe after each append returns success
// (shorter than PIPE_BUF, so one write() delivers it whole or not at all).
inline std::string AckLine(uint64_t round, uint64_t batch, const AppendResult& result) {
  return fmt::format("ack {} {} {} {}\n", round, batch, result.first_position,
                     result.last_position);
}

}  // namespace ledger::eventstore::testing
