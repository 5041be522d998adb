// What is particular to the RocksDB store, beyond the conformance suite: the failures its
// factory documents (a directory it cannot use, one locked by another opener), and its options
// (the group commit bound, the in-memory tail kept for subscribers).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
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

}  // namespace
}  // namespace ledger::eventstore::testing
