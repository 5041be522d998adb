// Helpers shared by the event store's test suites: temporary directories, events with
// recognisable content, harnesses that open a store, and whole-log checks.
//
// The conformance, subscription and concurrency suites are written against `EventStore&` only
// and are instantiated once per harness type listed in LEDGER_STORE_HARNESSES. A harness owns one
// store and whatever it lives in (a directory), and can reopen it when the implementation is
// durable. To run the suites against another implementation, add a harness with the same shape
// as RocksDbHarness and list it there.
//
// Thread safety: TempDir and the harnesses are used by one test thread; the free functions are
// safe from any thread.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/event_store.h"

namespace ledger::eventstore::testing {

// A fresh directory under $LEDGER_TEST_TMP (else /tmp), removed with all it holds when the
// object dies. Each test gets its own, so tests that ctest runs in parallel never share one.
class TempDir {
 public:
  explicit TempDir(std::string_view label);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // A path inside the directory (not created).
  std::string Child(std::string_view name) const;

 private:
  std::string path_;
};

// Whether the suite runs under AddressSanitizer + UndefinedBehaviorSanitizer (LEDGER_SANITIZED=1),
// where everything is several times slower and iteration counts are scaled down.
bool IsSanitized();
// `full` normally, `sanitized` under the sanitizers.
size_t Scaled(size_t full, size_t sanitized);

// The id that `name` always maps to: a retry built from the same name carries the same id.
EventId IdFor(std::string_view name);

// An event named `name`: its id is IdFor(name), its payload and type say the name, so a record
// read back can be matched to the event that produced it.
NewEvent MakeEvent(std::string_view name);
// `count` events named "<prefix>/0", "<prefix>/1", ...
std::vector<NewEvent> MakeEvents(std::string_view prefix, size_t count);

// Whether `record` holds exactly the writer-chosen content of `event` in `stream`.
bool SameContent(const RecordedEvent& record, std::string_view stream, const NewEvent& event);
// Whether two recorded events are equal in every field.
bool SameRecord(const RecordedEvent& a, const RecordedEvent& b);

// Appends and REQUIREs success.
AppendResult MustAppend(EventStore& store, std::string_view stream, ExpectedVersion expected,
                        const std::vector<NewEvent>& events);
// Appends, REQUIREs failure, and returns the error.
Error MustFail(EventStore& store, std::string_view stream, ExpectedVersion expected,
               const std::vector<NewEvent>& events);

// The whole log read with ReadAll in pages of `page_events` (REQUIREs success).
std::vector<RecordedEvent> ReadWholeLog(EventStore& store, size_t page_events = 1000);

// Checks the invariants every healthy log keeps: positions 1..head, each exactly once and in
// order; versions gapless from 0 in each stream and agreeing with StreamVersion; each record
// linked to its predecessor's hash; no event id twice; Verify ok over the whole log.
// Returns the log it read.
std::vector<RecordedEvent> CheckLogInvariants(EventStore& store);

// What a harness may tune in the store it opens (each maps these to its own options).
struct StoreSettings {
  // The clock for recorded_at, in microseconds; the system clock when empty.
  std::function<int64_t()> clock_us;
  // How many recent events the store keeps for live subscribers (where it has such a cache).
  size_t recent_events_kept = 1 << 16;
};

// The RocksDB store in a fresh directory.
class RocksDbHarness {
 public:
  // Whether the store keeps its events across Reopen() (durable implementations do).
  static constexpr bool kSurvivesReopen = true;

  explicit RocksDbHarness(StoreSettings settings = {});
  ~RocksDbHarness();

  EventStore& store() { return *store_; }
  // Closes the store and opens it again on the same data.
  void Reopen();
  // Closes the store and opens it again, with other settings.
  void Reopen(StoreSettings settings);

 private:
  void Open();

  TempDir dir_;
  StoreSettings settings_;
  std::unique_ptr<EventStore> store_;
};

// Opens the RocksDB store in `path` and REQUIREs success.
std::unique_ptr<EventStore> MustOpenRocksDb(const std::string& path,
                                            const RocksDbOptions& options = {});

}  // namespace ledger::eventstore::testing

// Every harness the store suites run against. Written unqualified so the test names stay short:
// the suites live in ledger::eventstore::testing.
#define LEDGER_STORE_HARNESSES RocksDbHarness
