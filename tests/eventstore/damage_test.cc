// Damaged data under the RocksDB store: the test closes the store, changes what RocksDB holds
// directly (a flipped byte, garbage, a deleted record, a rewritten record, a broken index entry),
// reopens the store and checks that reads and Verify report corruption naming the position, and
// never crash or skip silently.
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "base/bytes.h"
#include "eventstore/record_codec.h"
#include "tests/eventstore/raw_database.h"
#include "tests/eventstore/store_test_support.h"

namespace ledger::eventstore::testing {
namespace {

using std::chrono::milliseconds;

// The record that gets damaged: position 7 of 12, the first event of the fourth append, in
// stream "b" (version 2).
constexpr uint64_t kDamaged = 7;
constexpr uint64_t kEvents = 12;

// Twelve events, two per append ("damage/<append>/<event>"), alternating streams a and b: a holds
// positions 1 2 5 6 9 10, b holds 3 4 7 8 11 12. Returns the log as written.
std::vector<RecordedEvent> Fill(EventStore& store) {
  for (size_t i = 0; i < kEvents / 2; ++i) {
    MustAppend(store, i % 2 == 0 ? "a" : "b", ExpectedVersion::Any(),
               MakeEvents(fmt::format("damage/{}", i), 2));
  }
  return CheckLogInvariants(store);
}

// A store in a fresh directory, filled, closed; then `damage` is applied through RocksDB.
class DamagedStore {
 public:
  DamagedStore() : dir_("damage") {
    auto store = MustOpenRocksDb(path());
    log_ = Fill(*store);
  }

  const std::string& path() {
    if (path_.empty()) path_ = dir_.Child("store");
    return path_;
  }
  const std::vector<RecordedEvent>& log() const { return log_; }
  const RecordedEvent& damaged() const { return log_[kDamaged - 1]; }

  template <typename Damage>
  void Apply(Damage damage) {
    RawDatabase raw(path());
    damage(raw);
  }

  std::unique_ptr<EventStore> Open() { return MustOpenRocksDb(path()); }

 private:
  TempDir dir_;
  std::string path_;
  std::vector<RecordedEvent> log_;
};

// Flips one byte inside the payload of a stored record: it still decodes, but fails its hash.
std::string FlipPayloadByte(std::string value, const std::string& payload) {
  const size_t at = value.find(payload);
  REQUIRE(at != std::string::npos);
  value[at + payload.size() / 2] = static_cast<char>(value[at + payload.size() / 2] ^ 0x01);
  return value;
}

void CheckCorruptionAt(const Error& error, uint64_t position) {
  INFO(error.ToString());
  CHECK(error.code == ErrorCode::kCorruption);
  CHECK(error.position == position);
}

void CheckVerifyNames(EventStore& store, uint64_t position) {
  auto report = store.Verify(1, UINT64_MAX);
  REQUIRE(report.has_value());
  INFO(report->problem);
  CHECK_FALSE(report->ok);
  CHECK(report->first_bad_position == position);
  CHECK(report->events_checked == position - 1);
  CHECK_FALSE(report->problem.empty());
  // The range before the damage still verifies.
  auto before = store.Verify(1, position - 1);
  REQUIRE(before.has_value());
  CHECK(before->ok);
  CHECK(before->events_checked == position - 1);
}

// The reads that go through the damaged record by its id and by its stream report it.
void CheckPointReadsReport(EventStore& store, const RecordedEvent& damaged) {
  auto by_id = store.ReadEvent(damaged.event_id);
  REQUIRE_FALSE(by_id.has_value());
  CheckCorruptionAt(by_id.error(), damaged.position);
  auto by_stream = store.ReadStream(damaged.stream, Direction::kForward, 0, 100);
  REQUIRE_FALSE(by_stream.has_value());
  CheckCorruptionAt(by_stream.error(), damaged.position);
  auto backward = store.ReadStream(damaged.stream, Direction::kBackward, kEndOfStream, 100);
  REQUIRE_FALSE(backward.has_value());
  CheckCorruptionAt(backward.error(), damaged.position);
  // The other stream does not pass through it.
  auto other = store.ReadStream(damaged.stream == "a" ? "b" : "a", Direction::kForward, 0, 100);
  REQUIRE(other.has_value());
  CHECK(other->size() == kEvents / 2);
}

// The reads of the whole log report the record, and deliver what lies before it.
void CheckLogReadsReport(EventStore& store, uint64_t position) {
  // A page ends before the record; the page that would start with it is the error.
  auto page = store.ReadAll(1, 100);
  REQUIRE(page.has_value());
  CHECK(page->events.size() == position - 1);
  CHECK(page->next_position == position);
  auto at = store.ReadAll(page->next_position, 100);
  REQUIRE_FALSE(at.has_value());
  CheckCorruptionAt(at.error(), position);
  auto before = store.ReadAll(1, position - 1);
  REQUIRE(before.has_value());
  CHECK(before->events.size() == position - 1);
  uint64_t visited = 0;
  auto scanned = store.ScanAll(1, UINT64_MAX, [&](const RecordedEvent&) {
    ++visited;
    return true;
  });
  REQUIRE_FALSE(scanned.has_value());
  CheckCorruptionAt(scanned.error(), position);
  CHECK(visited == position - 1);

  // A subscriber reading one event at a time gets everything before the record, then an error
  // naming it, and stays there.
  auto subscription = store.SubscribeToAll(0);
  for (uint64_t expected = 1; expected < position; ++expected) {
    auto events = subscription->Next(1, milliseconds(0));
    REQUIRE(events.has_value());
    REQUIRE(events->size() == 1);
    CHECK(events->front().position == expected);
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto events = subscription->Next(1, milliseconds(0));
    REQUIRE_FALSE(events.has_value());
    CheckCorruptionAt(events.error(), position);
    CHECK(subscription->last_position() == position - 1);
  }
  // One asking for many events at once is told of the damage too, and never passes it.
  auto eager = store.SubscribeToAll(0);
  auto events = eager->Next(100, milliseconds(0));
  if (events) {
    for (const RecordedEvent& event : *events) CHECK(event.position < position);
    events = eager->Next(100, milliseconds(0));
  }
  REQUIRE_FALSE(events.has_value());
  CheckCorruptionAt(events.error(), position);
  CHECK(eager->last_position() < position);
}

TEST_CASE("a flipped byte in a stored record's payload is named by Verify and by point reads",
          "[damage]") {
  DamagedStore fixture;
  fixture.Apply([&](RawDatabase& raw) {
    raw.PutRecord(kDamaged, FlipPayloadByte(raw.GetRecord(kDamaged), fixture.damaged().payload));
  });
  auto store = fixture.Open();
  CHECK(store->HeadPosition() == kEvents);
  CheckVerifyNames(*store, kDamaged);
  CheckPointReadsReport(*store, fixture.damaged());

  // The damage is not at the tail, so appends go on; Verify still names the damage.
  MustAppend(*store, "c", ExpectedVersion::NoStream(), MakeEvents("damage/after", 2));
  CheckVerifyNames(*store, kDamaged);
}

// Every read of the log checks each record against its own hash: a record with one flipped
// payload byte is never delivered as if it were intact.
TEST_CASE("reads of the whole log report a record that fails its hash", "[damage]") {
  DamagedStore fixture;
  fixture.Apply([&](RawDatabase& raw) {
    raw.PutRecord(kDamaged, FlipPayloadByte(raw.GetRecord(kDamaged), fixture.damaged().payload));
  });
  auto store = fixture.Open();
  CheckLogReadsReport(*store, kDamaged);
}

// A scan with a stream filter (parallel rebuilds split the log by stream) checks the hash of
// each record it visits; a record of a stream it turns away is left to the scan that takes it,
// but must still decode that far.
TEST_CASE("a scan filtered by stream checks the records it visits", "[damage]") {
  DamagedStore fixture;
  auto only = [](std::string_view wanted) {
    ScanOptions options;
    options.stream_filter = [wanted](std::string_view stream) { return stream == wanted; };
    return options;
  };
  auto positions_of = [&](EventStore& store, const ScanOptions& options) {
    std::vector<uint64_t> positions;
    auto scanned = store.ScanAll(
        1, UINT64_MAX,
        [&](const RecordedEvent& event) {
          positions.push_back(event.position);
          return true;
        },
        options);
    return std::pair(std::move(scanned), positions);
  };
  SECTION("a record that fails its hash") {
    fixture.Apply([&](RawDatabase& raw) {
      raw.PutRecord(kDamaged, FlipPayloadByte(raw.GetRecord(kDamaged), fixture.damaged().payload));
    });
    auto store = fixture.Open();
    auto [scanned_b, positions_b] = positions_of(*store, only("b"));
    REQUIRE_FALSE(scanned_b.has_value());
    CheckCorruptionAt(scanned_b.error(), kDamaged);
    CHECK(positions_b == std::vector<uint64_t>{3, 4});
    auto [scanned_a, positions_a] = positions_of(*store, only("a"));
    REQUIRE(scanned_a.has_value());
    CHECK(*scanned_a == kEvents / 2);
    CHECK(positions_a == std::vector<uint64_t>{1, 2, 5, 6, 9, 10});
  }
  SECTION("garbage: no filter can pass it") {
    fixture.Apply([&](RawDatabase& raw) { raw.PutRecord(kDamaged, std::string(64, '\x5a')); });
    auto store = fixture.Open();
    auto [scanned_a, positions_a] = positions_of(*store, only("a"));
    REQUIRE_FALSE(scanned_a.has_value());
    CheckCorruptionAt(scanned_a.error(), kDamaged);
    CHECK(positions_a == std::vector<uint64_t>{1, 2, 5, 6});
  }
}

TEST_CASE("garbage in place of a stored record is corruption naming its position", "[damage]") {
  DamagedStore fixture;
  std::string garbage;
  SECTION("random bytes, a whole number of words") {
    std::mt19937 random(7);
    garbage.resize(512);
    for (char& byte : garbage) byte = static_cast<char>(random() & 0xff);
  }
  SECTION("random bytes, not a whole number of words") {
    std::mt19937 random(11);
    garbage.resize(13);
    for (char& byte : garbage) byte = static_cast<char>(random() & 0xff);
  }
  SECTION("an empty value") { garbage.clear(); }
  SECTION("a segment table claiming far more than is there") {
    garbage = std::string("\x00\x00\x00\x00\xff\xff\xff\x0f", 8) + std::string(16, '\0');
  }
  SECTION("a root pointer out of bounds") {
    garbage = std::string("\x00\x00\x00\x00\x01\x00\x00\x00", 8) +
              std::string("\xfc\xff\xff\x0f\x02\x00\x0d\x00", 8);
  }
  SECTION("the record truncated") {
    RawDatabase raw(fixture.path());
    const std::string whole = raw.GetRecord(kDamaged);
    garbage = whole.substr(0, (whole.size() / 2) & ~size_t{7});
  }
  SECTION("the record of the position before") {
    RawDatabase raw(fixture.path());
    garbage = raw.GetRecord(kDamaged - 1);
  }
  fixture.Apply([&](RawDatabase& raw) { raw.PutRecord(kDamaged, garbage); });
  auto store = fixture.Open();
  CHECK(store->HeadPosition() == kEvents);
  CheckVerifyNames(*store, kDamaged);
  CheckPointReadsReport(*store, fixture.damaged());
  CheckLogReadsReport(*store, kDamaged);
}

TEST_CASE("a record missing from the middle of the log is named", "[damage]") {
  DamagedStore fixture;
  fixture.Apply([](RawDatabase& raw) { raw.DeleteRecord(kDamaged); });
  auto store = fixture.Open();
  CHECK(store->HeadPosition() == kEvents);
  CheckVerifyNames(*store, kDamaged);
  CheckPointReadsReport(*store, fixture.damaged());
  CheckLogReadsReport(*store, kDamaged);
  // Reading from after the gap is fine.
  auto after = store->ReadAll(kDamaged + 1, 100);
  REQUIRE(after.has_value());
  CHECK(after->events.size() == kEvents - kDamaged);
}

TEST_CASE("a record rewritten with a matching hash of its own breaks the chain",
          "[damage][verify]") {
  DamagedStore fixture;
  RecordedEvent forged = fixture.damaged();
  uint64_t named = 0;
  SECTION("other content: the next record no longer links to it") {
    forged.payload = "forged payload";
    named = kDamaged + 1;
  }
  SECTION("another previous hash: it no longer links to its predecessor") {
    forged.previous_hash = Sha256Digest("not the predecessor");
    named = kDamaged;
  }
  forged.hash = internal::ComputeRecordHash(forged);
  fixture.Apply([&](RawDatabase& raw) { raw.PutRecord(kDamaged, internal::EncodeRecord(forged)); });
  auto store = fixture.Open();
  CheckVerifyNames(*store, named);
}

TEST_CASE("damage to the last record makes the store refuse to open, naming it", "[damage]") {
  DamagedStore fixture;
  const RecordedEvent& last = fixture.log().back();
  fixture.Apply([&](RawDatabase& raw) {
    std::string value = raw.GetRecord(kEvents);
    SECTION("a flipped payload byte") { value = FlipPayloadByte(value, last.payload); }
    SECTION("garbage") { value = std::string(64, '\x5a'); }
    SECTION("a flipped byte in its hash") {
      const std::string_view hash(reinterpret_cast<const char*>(last.hash.data()),
                                  last.hash.size());
      const size_t at = value.find(hash);
      REQUIRE(at != std::string::npos);
      value[at] = static_cast<char>(value[at] ^ 0x80);
    }
    raw.PutRecord(kEvents, value);
  });
  auto opened = OpenRocksDbEventStore(fixture.path());
  REQUIRE_FALSE(opened.has_value());
  CheckCorruptionAt(opened.error(), kEvents);
}

// A byte flipped in the write-ahead log, among synced records not yet in a table file: RocksDB's
// point-in-time recovery would drop every acknowledged event after it without a word and then
// delete the file. The store refuses to open instead, and leaves the file as it was.
TEST_CASE("a damaged write-ahead log refuses the open and is left untouched", "[damage]") {
  TempDir dir("damaged-wal");
  const std::string path = dir.Child("store");
  {
    auto store = MustOpenRocksDb(path);
    Fill(*store);
  }  // Closed: the events stay in the write-ahead log (a close does not flush the memtables).
  std::filesystem::path wal;  // The largest write-ahead log file.
  uintmax_t size = 0;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    if (entry.path().extension() == ".log" && entry.file_size() > size) {
      wal = entry.path();
      size = entry.file_size();
    }
  }
  REQUIRE_FALSE(wal.empty());
  REQUIRE(size > 12 * 200);  // It holds the twelve records.
  auto flip = [&] {
    std::fstream file(wal, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(static_cast<std::streamoff>(size / 3));
    char byte = 0;
    file.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0xff);
    file.seekp(static_cast<std::streamoff>(size / 3));
    file.write(&byte, 1);
  };
  flip();
  auto refused = OpenRocksDbEventStore(path);
  REQUIRE_FALSE(refused.has_value());
  INFO(refused.error().ToString());
  CHECK(refused.error().code == ErrorCode::kCorruption);
  CHECK(refused.error().message.find("nothing was changed") != std::string::npos);
  REQUIRE(std::filesystem::exists(wal));
  CHECK(std::filesystem::file_size(wal) == size);

  flip();  // Repaired: every event is there.
  auto store = MustOpenRocksDb(path);
  CHECK(store->HeadPosition() == kEvents);
  CheckLogInvariants(*store);
}

// A log whose last record is gone while the indexes still point at it (damage, not a crash:
// every append is one atomic WriteBatch) must not open: appending on would reuse the lost
// position, and the id and stream indexes would lead to another event than the one they name.
TEST_CASE("a log missing its last record is refused, not silently reused", "[damage]") {
  DamagedStore fixture;
  const RecordedEvent lost = fixture.log().back();
  fixture.Apply([](RawDatabase& raw) { raw.DeleteRecord(kEvents); });
  auto opened = OpenRocksDbEventStore(fixture.path());
  if (!opened) {
    CheckCorruptionAt(opened.error(), kEvents);
    return;
  }
  EventStore& store = **opened;
  CHECK(store.HeadPosition() == kEvents);
  auto lost_by_id = store.ReadEvent(lost.event_id);
  REQUIRE_FALSE(lost_by_id.has_value());
  CheckCorruptionAt(lost_by_id.error(), kEvents);
  // Whatever the store does with further appends, the lost event's id never leads elsewhere.
  auto appended = store.Append(lost.stream, ExpectedVersion::Any(), MakeEvents("after-loss", 1));
  lost_by_id = store.ReadEvent(lost.event_id);
  if (lost_by_id.has_value() && lost_by_id->has_value()) {
    CHECK((*lost_by_id)->event_id == lost.event_id);
  }
  auto stream = store.ReadStream(lost.stream, Direction::kForward, 0, 100);
  if (stream.has_value()) {
    for (size_t i = 0; i < stream->size(); ++i) CHECK((*stream)[i].version == i);
  }
}

TEST_CASE("damaged index entries are corruption, never a crash", "[damage]") {
  DamagedStore fixture;
  const RecordedEvent& target = fixture.damaged();
  SECTION("a stream head of the wrong size") {
    fixture.Apply([](RawDatabase& raw) { raw.Put(RawDatabase::kStreamHeads, "a", "abc"); });
    auto store = fixture.Open();
    auto version = store->StreamVersion("a");
    REQUIRE_FALSE(version.has_value());
    CHECK(version.error().code == ErrorCode::kCorruption);
    auto appended = store->Append("a", ExpectedVersion::Any(), MakeEvents("damage/head", 1));
    REQUIRE_FALSE(appended.has_value());
    CHECK(appended.error().code == ErrorCode::kCorruption);
    CHECK(store->HeadPosition() == kEvents);
  }
  SECTION("an event id entry of the wrong size") {
    fixture.Apply([&](RawDatabase& raw) {
      raw.Put(RawDatabase::kEventIds, target.event_id.AsBytes(), "12345");
    });
    auto store = fixture.Open();
    auto found = store->ReadEvent(target.event_id);
    REQUIRE_FALSE(found.has_value());
    CHECK(found.error().code == ErrorCode::kCorruption);
    // A retry of that id cannot be decided: it must not be written again.
    NewEvent retry = MakeEvent("damage/3/0");
    REQUIRE(retry.event_id == target.event_id);
    auto appended = store->Append("a", ExpectedVersion::Any(), std::vector<NewEvent>{retry});
    REQUIRE_FALSE(appended.has_value());
    CHECK(appended.error().code == ErrorCode::kCorruption);
    CHECK(store->HeadPosition() == kEvents);
  }
  SECTION("an event id entry pointing past the log") {
    fixture.Apply([&](RawDatabase& raw) {
      raw.Put(RawDatabase::kEventIds, target.event_id.AsBytes(), RawDatabase::PositionKey(999));
    });
    auto store = fixture.Open();
    auto found = store->ReadEvent(target.event_id);
    REQUIRE_FALSE(found.has_value());
    CheckCorruptionAt(found.error(), 999);
  }
  SECTION("a stream index entry of the wrong size") {
    std::string key = "b";
    key.push_back('\0');
    AppendBigEndian64(key, 1);
    fixture.Apply([&](RawDatabase& raw) { raw.Put(RawDatabase::kStreamIndex, key, "x"); });
    auto store = fixture.Open();
    auto read = store->ReadStream("b", Direction::kForward, 0, 100);
    REQUIRE_FALSE(read.has_value());
    CHECK(read.error().code == ErrorCode::kCorruption);
    // The log itself is intact.
    CheckLogInvariants(*store);
  }
}

TEST_CASE("a directory of another format is refused", "[damage]") {
  DamagedStore fixture;
  fixture.Apply(
      [](RawDatabase& raw) { raw.Put(RawDatabase::kDefault, "format", "orderledger-log-999"); });
  auto opened = OpenRocksDbEventStore(fixture.path());
  REQUIRE_FALSE(opened.has_value());
  CHECK(opened.error().code == ErrorCode::kCorruption);
}

}  // namespace
}  // namespace ledger::eventstore::testing
