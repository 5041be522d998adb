// What is particular to the RocksDB store, beyond the conformance suite: the failures its
// factory documents (a directory it cannot use, one locked by another opener), and its options
// (the group commit bound, the in-memory tail kept for subscribers), and what appends queued
// behind a write see while it is held up and when it fails.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "tests/eventstore/store_test_support.h"

namespace ledger::eventstore::testing {
namespace {

TEST_CASE("a directory already open is refused as an I/O error", "[rocksdb][open]") {
  TempDir dir("open-locked");
  auto first = MustOpenRocksDb(dir.Child("store"));
  MustAppend(*first, "s", ExpectedVersion::NoStream(), MakeEvents("locked", 1));
  auto second = OpenRocksDbEventStore(dir.Child("store"));
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().code == ErrorCode::kIoError);
  // The first opener is unharmed, and once it closes the directory opens again.
  CHECK(first->HeadPosition() == 1);
  first.reset();
  auto third = MustOpenRocksDb(dir.Child("store"));
  CHECK(third->HeadPosition() == 1);
}

TEST_CASE("a missing directory is refused when creating is not allowed", "[rocksdb][open]") {
  TempDir dir("open-missing");
  RocksDbOptions options;
  options.create_if_missing = false;
  auto opened = OpenRocksDbEventStore(dir.Child("absent"), options);
  REQUIRE_FALSE(opened.has_value());
  CHECK(opened.error().code == ErrorCode::kIoError);
}

TEST_CASE("a path that is a file is refused as an I/O error", "[rocksdb][open]") {
  TempDir dir("open-file");
  const std::string path = dir.Child("plain-file");
  std::FILE* file = std::fopen(path.c_str(), "w");
  REQUIRE(file != nullptr);
  std::fclose(file);
  auto opened = OpenRocksDbEventStore(path);
  REQUIRE_FALSE(opened.has_value());
  CHECK(opened.error().code == ErrorCode::kIoError);
}

TEST_CASE("a new store is empty", "[rocksdb][open]") {
  TempDir dir("open-new");
  auto store = MustOpenRocksDb(dir.Child("store"));
  CHECK(store->HeadPosition() == 0);
  CheckLogInvariants(*store);
  store.reset();
  store = MustOpenRocksDb(dir.Child("store"));
  CHECK(store->HeadPosition() == 0);
}

TEST_CASE("a small group commit bound still commits every append, gapless", "[rocksdb]") {
  TempDir dir("group-bound");
  RocksDbOptions options;
  options.group_commit_events_max = 3;
  auto store = MustOpenRocksDb(dir.Child("store"), options);
  constexpr size_t kAppenders = 6;
  const size_t appends = Scaled(60, 20);
  std::vector<std::string> errors(kAppenders);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kAppenders; ++t) {
    threads.emplace_back([&, t] {
      for (size_t a = 0; a < appends; ++a) {
        // Two events per call: a group holds one call, or a call and part of the bound.
        auto result = store->Append(fmt::format("bound-{}", t), ExpectedVersion::Any(),
                                    MakeEvents(fmt::format("bound/{}/{}", t, a), 2 + a % 3));
        if (!result) {
          errors[t] = result.error().ToString();
          return;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& error : errors) CHECK(error.empty());
  size_t events_per_thread = 0;
  for (size_t a = 0; a < appends; ++a) events_per_thread += 2 + a % 3;
  CHECK(CheckLogInvariants(*store).size() == kAppenders * events_per_thread);
}

TEST_CASE("with no recent events kept a live subscriber reads everything from disk",
          "[rocksdb][subscription]") {
  TempDir dir("no-tail");
  RocksDbOptions options;
  options.recent_events_kept = 0;
  auto store = MustOpenRocksDb(dir.Child("store"), options);
  const size_t appends = Scaled(100, 40);
  std::string writer_error;
  std::thread writer([&] {
    for (size_t a = 0; a < appends; ++a) {
      auto result =
          store->Append("s", ExpectedVersion::Any(), MakeEvents(fmt::format("no-tail/{}", a), 2));
      if (!result) {
        writer_error = result.error().ToString();
        return;
      }
    }
  });
  auto subscription = store->SubscribeToAll(0);
  std::vector<uint64_t> positions;
  while (positions.size() < 2 * appends) {
    auto events = subscription->Next(5, std::chrono::seconds(10));
    if (!events || events->empty()) break;
    for (const RecordedEvent& event : *events) positions.push_back(event.position);
  }
  writer.join();
  subscription.reset();
  CHECK(writer_error.empty());
  REQUIRE(positions.size() == 2 * appends);
  for (size_t i = 0; i < positions.size(); ++i) CHECK(positions[i] == i + 1);
}

// A before_write hook that holds the first write until Release(), then answers `first_ok`;
// later writes pass.
class HeldWrite {
 public:
  explicit HeldWrite(bool first_ok) : first_ok_(first_ok) {}
  std::function<bool()> Hook() {
    return [this] {
      std::unique_lock lock(mutex_);
      if (calls_++ > 0) return true;
      changed_.notify_all();
      changed_.wait(lock, [&] { return released_; });
      return first_ok_;
    };
  }
  void AwaitFirstWrite() {
    std::unique_lock lock(mutex_);
    REQUIRE(changed_.wait_for(lock, std::chrono::seconds(10), [&] { return calls_ > 0; }));
  }
  void Release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  const bool first_ok_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int calls_ = 0;
  bool released_ = false;
};

// A fresh store whose first write is held up until held.Release() (see HeldWrite).
struct HeldStore {
  HeldStore(std::string_view label, bool first_ok) : dir(label), held(first_ok) {
    RocksDbOptions options;
    options.before_write = held.Hook();
    store = MustOpenRocksDb(dir.Child("store"), options);
  }
  TempDir dir;
  HeldWrite held;
  std::unique_ptr<EventStore> store;  // Declared last: closed before the hook's HeldWrite ends.
};

// Appends on a thread of its own; done() says whether it has returned.
class PendingAppend {
 public:
  PendingAppend(EventStore& store, std::string stream, ExpectedVersion expected,
                std::vector<NewEvent> events)
      : events_(std::move(events)), thread_([this, &store, stream, expected] {
          result_.emplace(store.Append(stream, expected, events_));
          done_.store(true);
        }) {}
  ~PendingAppend() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() const { return done_.load(); }
  const StoreResult<AppendResult>& Result() {
    if (thread_.joinable()) thread_.join();
    return *result_;
  }

 private:
  std::vector<NewEvent> events_;
  std::optional<StoreResult<AppendResult>> result_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

TEST_CASE("appends queued behind a write are answered after it, on top of what it wrote",
          "[rocksdb][group]") {
  HeldStore fixture("pipeline", /*first_ok=*/true);
  HeldWrite& held = fixture.held;
  std::unique_ptr<EventStore>& store = fixture.store;
  const std::vector<NewEvent> first = MakeEvents("pipeline/first", 2);

  PendingAppend writing(*store, "p", ExpectedVersion::NoStream(), first);
  held.AwaitFirstWrite();
  // Each depends on the write held up: its event ids, its stream head.
  PendingAppend replay(*store, "p", ExpectedVersion::NoStream(), first);
  PendingAppend next(*store, "p", ExpectedVersion::Exactly(1), MakeEvents("pipeline/next", 1));
  PendingAppend conflict(*store, "p", ExpectedVersion::NoStream(), MakeEvents("pipeline/c", 1));
  PendingAppend other(*store, "q", ExpectedVersion::Any(), MakeEvents("pipeline/other", 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Nothing is answered, nor readable, before the first write is durable.
  CHECK_FALSE(writing.done());
  CHECK_FALSE(next.done());
  CHECK_FALSE(replay.done());
  CHECK_FALSE(conflict.done());
  CHECK_FALSE(other.done());
  CHECK(store->HeadPosition() == 0);
  auto unwritten = store->ReadStream("p", Direction::kForward, 0, 10);
  REQUIRE(unwritten.has_value());
  CHECK(unwritten->empty());
  held.Release();

  REQUIRE(writing.Result().has_value());
  CHECK(writing.Result()->first_position == 1);
  CHECK(writing.Result()->stream_version == 1);
  REQUIRE(next.Result().has_value());
  CHECK(next.Result()->stream_version == 2);
  REQUIRE(replay.Result().has_value());
  CHECK(replay.Result()->idempotent_replay);
  CHECK(replay.Result()->first_position == 1);
  CHECK(replay.Result()->last_position == 2);
  REQUIRE_FALSE(conflict.Result().has_value());
  CHECK(conflict.Result().error().code == ErrorCode::kWrongExpectedVersion);
  REQUIRE(conflict.Result().error().current_version.has_value());
  CHECK(*conflict.Result().error().current_version >= 1);
  REQUIRE(other.Result().has_value());
  const auto log = CheckLogInvariants(*store);
  CHECK(log.size() == 4);
  auto stream = store->ReadStream("p", Direction::kForward, 0, 10);
  REQUIRE(stream.has_value());
  CHECK(stream->size() == 3);
}

TEST_CASE("a failed write fails the appends queued behind it, and nothing of them is stored",
          "[rocksdb][group]") {
  HeldStore fixture("pipeline-failure", /*first_ok=*/false);
  HeldWrite& held = fixture.held;
  std::unique_ptr<EventStore>& store = fixture.store;
  const std::vector<NewEvent> first = MakeEvents("failure/first", 1);

  PendingAppend failing(*store, "p", ExpectedVersion::NoStream(), first);
  held.AwaitFirstWrite();
  PendingAppend next(*store, "p", ExpectedVersion::Exactly(0), MakeEvents("failure/next", 1));
  PendingAppend replay(*store, "p", ExpectedVersion::NoStream(), first);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  held.Release();
  for (PendingAppend* append : {&failing, &next, &replay}) {
    REQUIRE_FALSE(append->Result().has_value());
    CHECK(append->Result().error().code == ErrorCode::kIoError);
  }
  // Refused until reopened; reopened, the log is as before the failed write.
  auto later = store->Append("r", ExpectedVersion::Any(), MakeEvents("failure/later", 1));
  REQUIRE_FALSE(later.has_value());
  CHECK(later.error().code == ErrorCode::kIoError);
  CHECK(store->HeadPosition() == 0);
  store.reset();
  store = MustOpenRocksDb(fixture.dir.Child("store"));
  CHECK(store->HeadPosition() == 0);
  CHECK(MustAppend(*store, "p", ExpectedVersion::NoStream(), first).first_position == 1);
  CheckLogInvariants(*store);
}

}  // namespace
}  // namespace ledger::eventstore::testing
