#include "tests/eventstore/store_test_support.h"

#include <fmt/format.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <set>
#include <system_error>

namespace ledger::eventstore::testing {

namespace {

std::string TempRoot() {
  const char* root = std::getenv("LEDGER_TEST_TMP");
  return root != nullptr && root[0] != '\0' ? root : "/tmp";
}

}  // namespace

TempDir::TempDir(std::string_view label) {
  const std::string root = TempRoot();
  std::error_code error;
  std::filesystem::create_directories(root, error);
  REQUIRE_FALSE(error);
  std::string pattern = fmt::format("{}/eventstore-{}-XXXXXX", root, label);
  REQUIRE(mkdtemp(pattern.data()) != nullptr);
  path_ = std::move(pattern);
}

TempDir::~TempDir() {
  std::error_code error;  // Best effort: a leftover directory must not fail the test.
  std::filesystem::remove_all(path_, error);
}

std::string TempDir::Child(std::string_view name) const {
  return fmt::format("{}/{}", path_, name);
}

bool IsSanitized() {
  const char* value = std::getenv("LEDGER_SANITIZED");
  return value != nullptr && std::string_view(value) == "1";
}

size_t Scaled(size_t full, size_t sanitized) { return IsSanitized() ? sanitized : full; }

EventId IdFor(std::string_view name) { return EventId::FromName("eventstore-tests", name); }

NewEvent MakeEvent(std::string_view name) {
  return NewEvent{.event_id = IdFor(name),
                  .event_type = "TestEvent",
                  .payload = fmt::format("payload of {}", name),
                  .correlation_id = IdFor(fmt::format("correlation of {}", name)),
                  .causation_id = EventId(),
                  .actor = "tester",
                  .schema_version = 3};
}

std::vector<NewEvent> MakeEvents(std::string_view prefix, size_t count) {
  std::vector<NewEvent> events;
  events.reserve(count);
  for (size_t i = 0; i < count; ++i) events.push_back(MakeEvent(fmt::format("{}/{}", prefix, i)));
  return events;
}

bool SameContent(const RecordedEvent& record, std::string_view stream, const NewEvent& event) {
  return record.stream == stream && record.event_id == event.event_id &&
         record.event_type == event.event_type && record.payload == event.payload &&
         record.correlation_id == event.correlation_id &&
         record.causation_id == event.causation_id && record.actor == event.actor &&
         record.schema_version == event.schema_version;
}

bool SameRecord(const RecordedEvent& a, const RecordedEvent& b) {
  return a.position == b.position && a.stream == b.stream && a.version == b.version &&
         a.event_id == b.event_id && a.event_type == b.event_type &&
         a.recorded_at_us == b.recorded_at_us && a.correlation_id == b.correlation_id &&
         a.causation_id == b.causation_id && a.actor == b.actor &&
         a.schema_version == b.schema_version && a.payload == b.payload &&
         a.previous_hash == b.previous_hash && a.hash == b.hash;
}

AppendResult MustAppend(EventStore& store, std::string_view stream, ExpectedVersion expected,
                        const std::vector<NewEvent>& events) {
  auto result = store.Append(stream, expected, events);
  INFO("append to " << stream << " expecting " << expected.ToString());
  if (!result) FAIL(result.error().ToString());
  return *result;
}

Error MustFail(EventStore& store, std::string_view stream, ExpectedVersion expected,
               const std::vector<NewEvent>& events) {
  auto result = store.Append(stream, expected, events);
  INFO("append to " << stream << " expecting " << expected.ToString());
  REQUIRE_FALSE(result.has_value());
  return result.error();
}

std::vector<RecordedEvent> ReadWholeLog(EventStore& store, size_t page_events) {
  std::vector<RecordedEvent> log;
  uint64_t next = 1;
  while (true) {
    auto page = store.ReadAll(next, page_events);
    if (!page) FAIL(page.error().ToString());
    if (page->events.empty()) break;
    REQUIRE(page->next_position == next + page->events.size());
    next = page->next_position;
    for (RecordedEvent& event : page->events) log.push_back(std::move(event));
  }
  return log;
}

std::vector<RecordedEvent> CheckLogInvariants(EventStore& store) {
  const uint64_t head = store.HeadPosition();
  std::vector<RecordedEvent> log = ReadWholeLog(store);
  REQUIRE(log.size() == head);

  std::map<std::string, uint64_t> next_version;
  std::set<EventId> ids;
  Hash256 previous{};
  for (size_t i = 0; i < log.size(); ++i) {
    const RecordedEvent& event = log[i];
    INFO("position " << i + 1);
    REQUIRE(event.position == i + 1);
    REQUIRE(event.previous_hash == previous);
    previous = event.hash;
    uint64_t& version = next_version[event.stream];
    REQUIRE(event.version == version);
    ++version;
    REQUIRE(ids.insert(event.event_id).second);
  }
  for (const auto& [stream, version_after] : next_version) {
    auto current = store.StreamVersion(stream);
    REQUIRE(current.has_value());
    REQUIRE(*current == std::optional<uint64_t>(version_after - 1));
  }
  auto report = store.Verify(1, UINT64_MAX);
  REQUIRE(report.has_value());
  INFO(report->problem);
  REQUIRE(report->ok);
  REQUIRE(report->events_checked == head);
  return log;
}

std::unique_ptr<EventStore> MustOpenRocksDb(const std::string& path,
                                            const RocksDbOptions& options) {
  auto opened = OpenRocksDbEventStore(path, options);
  if (!opened) FAIL("cannot open the store in " << path << ": " << opened.error().ToString());
  return std::move(*opened);
}

RocksDbHarness::RocksDbHarness(StoreSettings settings)
    : dir_("rocksdb"), settings_(std::move(settings)) {
  Open();
}

RocksDbHarness::~RocksDbHarness() { store_.reset(); }

void RocksDbHarness::Reopen() {
  store_.reset();
  Open();
}

void RocksDbHarness::Reopen(StoreSettings settings) {
  settings_ = std::move(settings);
  Reopen();
}

void RocksDbHarness::Open() {
  RocksDbOptions options;
  options.clock_us = settings_.clock_us;
  options.recent_events_kept = settings_.recent_events_kept;
  // Tests open many small stores, in parallel: keep each one's memory small.
  options.block_cache_bytes = 8 << 20;
  store_ = MustOpenRocksDb(dir_.Child("store"), options);
}

}  // namespace ledger::eventstore::testing
