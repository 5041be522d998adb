// Opening the RocksDB store: the failures its factory documents (a directory it cannot use, one
// locked by another opener), and a store that is empty after creation.
#include <catch2/catch.hpp>

#include <cstdio>

#include "tests/eventstore/store_test_support.h"

namespace ledger::eventstore::testing {
namespace {

TEST_CASE("a directory already open is refused as an I/O error", "[open]") {
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

TEST_CASE("a missing directory is refused when creating is not allowed", "[open]") {
  TempDir dir("open-missing");
  RocksDbOptions options;
  options.create_if_missing = false;
  auto opened = OpenRocksDbEventStore(dir.Child("absent"), options);
  REQUIRE_FALSE(opened.has_value());
  CHECK(opened.error().code == ErrorCode::kIoError);
}

TEST_CASE("a path that is a file is refused as an I/O error", "[open]") {
  TempDir dir("open-file");
  const std::string path = dir.Child("plain-file");
  std::FILE* file = std::fopen(path.c_str(), "w");
  REQUIRE(file != nullptr);
  std::fclose(file);
  auto opened = OpenRocksDbEventStore(path);
  REQUIRE_FALSE(opened.has_value());
  CHECK(opened.error().code == ErrorCode::kIoError);
}

TEST_CASE("a new store is empty", "[open]") {
  TempDir dir("open-new");
  auto store = MustOpenRocksDb(dir.Child("store"));
  CHECK(store->HeadPosition() == 0);
  CheckLogInvariants(*store);
  store.reset();
  store = MustOpenRocksDb(dir.Child("store"));
  CHECK(store->HeadPosition() == 0);
}

}  // namespace
}  // namespace ledger::eventstore::testing
