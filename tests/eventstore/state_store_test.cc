#include "eventstore/state_store.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <vector>

namespace ledger::eventstore {
namespace {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("LEDGER_TEST_TMP");
    std::filesystem::path root = base ? base : std::filesystem::temp_directory_path();
    std::filesystem::create_directories(root);
    path_ = root / ("state-" + EventId::NewRandom().ToString());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

std::vector<std::string> Keys(StateStore& store, std::string_view begin, std::string_view end,
                              bool reverse) {
  std::vector<std::string> keys;
  auto scanned = store.Scan(begin, end, reverse, [&](std::string_view key, std::string_view) {
    keys.emplace_back(key);
    return true;
  });
  REQUIRE(scanned.has_value());
  return keys;
}

TEST_CASE("state batches are atomic and read their own writes", "[state_store]") {
  TempDir dir;
  auto opened = OpenRocksDbStateStore(dir.path());
  REQUIRE(opened.has_value());
  StateStore& store = **opened;

  StateBatch batch = store.NewBatch();
  batch.Put("order/1", "open");
  batch.Put("checkpoint", "7");
  CHECK(batch.Get("order/1")->value() == "open");
  CHECK_FALSE(store.Get("order/1")->has_value());  // Nothing visible before Write.
  batch.Delete("order/1");
  CHECK_FALSE(batch.Get("order/1")->has_value());
  batch.Put("order/1", "complete");
  REQUIRE(store.Write(batch).has_value());
  CHECK(batch.empty());
  CHECK(store.Get("order/1")->value() == "complete");
  CHECK(store.Get("checkpoint")->value() == "7");
}

TEST_CASE("state survives a reopen", "[state_store]") {
  TempDir dir;
  {
    auto store = OpenRocksDbStateStore(dir.path());
    REQUIRE(store.has_value());
    StateBatch batch = (*store)->NewBatch();
    batch.Put("k", "v");
    REQUIRE((*store)->Write(batch, /*sync=*/true).has_value());
  }
  auto store = OpenRocksDbStateStore(dir.path());
  REQUIRE(store.has_value());
  CHECK((*store)->Get("k")->value() == "v");
}

TEST_CASE("state scans respect bounds in both directions, and ranges delete", "[state_store]") {
  TempDir dir;
  auto opened = OpenRocksDbStateStore(dir.path());
  REQUIRE(opened.has_value());
  StateStore& store = **opened;
  StateBatch batch = store.NewBatch();
  for (const char* key : {"a", "b/1", "b/2", "b/3", "c"}) batch.Put(key, key);
  REQUIRE(store.Write(batch).has_value());

  CHECK(Keys(store, "b/", "b0", false) == std::vector<std::string>{"b/1", "b/2", "b/3"});
  CHECK(Keys(store, "b/", "b0", true) == std::vector<std::string>{"b/3", "b/2", "b/1"});
  CHECK(Keys(store, "b/2", "b/3", true) == std::vector<std::string>{"b/2"});
  CHECK(Keys(store, "b/", "", false) == std::vector<std::string>{"b/1", "b/2", "b/3", "c"});
  CHECK(Keys(store, "", "", true).front() == "c");

  REQUIRE(store.DeleteRange("b/", "b0").has_value());
  CHECK(Keys(store, "", "", false) == std::vector<std::string>{"a", "c"});
}

TEST_CASE("a state store directory held by another store is refused", "[state_store]") {
  TempDir dir;
  auto first = OpenRocksDbStateStore(dir.path());
  REQUIRE(first.has_value());
  auto second = OpenRocksDbStateStore(dir.path());
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().code == ErrorCode::kIoError);
}

}  // namespace
}  // namespace ledger::eventstore

namespace ledger::eventstore {
namespace {

TEST_CASE("a state view sees the store as it was when taken", "[state_store]") {
  TempDir dir;
  auto opened = OpenRocksDbStateStore(dir.path());
  REQUIRE(opened.has_value());
  StateStore& store = **opened;
  StateBatch batch = store.NewBatch();
  batch.Put("row/1", "old");
  batch.Put("row/2", "old");
  REQUIRE(store.Write(batch).has_value());

  std::unique_ptr<StateView> view = store.Snapshot();
  batch.Put("row/1", "new");
  batch.Put("row/3", "new");
  REQUIRE(store.Write(batch).has_value());
  REQUIRE(store.DeleteRange("row/2", "row/3").has_value());

  CHECK(view->Get("row/1")->value() == "old");
  CHECK(view->Get("row/2")->value() == "old");
  CHECK_FALSE(view->Get("row/3")->has_value());
  std::vector<std::string> seen;
  REQUIRE(view->Scan("row/", "row0", false,
                     [&](std::string_view key, std::string_view value) {
                       seen.push_back(std::string(key) + "=" + std::string(value));
                       return true;
                     })
              .has_value());
  CHECK(seen == std::vector<std::string>{"row/1=old", "row/2=old"});
  CHECK(store.Get("row/1")->value() == "new");
  CHECK_FALSE(store.Get("row/2")->has_value());
}

}  // namespace
}  // namespace ledger::eventstore
