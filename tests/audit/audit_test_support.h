// Helpers of the audit suite: the event store suite's temporary directories and scaling, a
// ledger data directory filled with realistic orders, and the log's RocksDB opened directly to
// damage it (as tests/eventstore/damage_test.cc does).
#pragma once

#include <catch2/catch.hpp>

#include <rocksdb/db.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "tests/eventstore/store_test_support.h"
#include "tests/projections/order_workload.h"

namespace ledger::audit_testing {

using eventstore::RecordedEvent;
using eventstore::StoreResult;
using eventstore::testing::IsSanitized;
using eventstore::testing::Scaled;
using eventstore::testing::TempDir;

// A data directory (log/ and state/ as ledgerd lays them out) with `orders` orders placed and
// taken through some fulfillment steps.
inline void FillOrders(eventstore::EventStore& store, size_t orders, uint64_t seed = 7) {
  eventstore::OrderCommandService service(store);
  // Order numbers of their own per seed: a second fill adds orders instead of repeating them.
  testing::OrderWorkload workload(service, seed, "S" + std::to_string(seed));
  for (size_t i = 0; i < orders; ++i) {
    const std::string order = workload.AddOrder();
    workload.Step(order);
    if (i % 3 == 0) workload.Step(order);
  }
  workload.AddOrphanPayment();
}

inline std::unique_ptr<eventstore::EventStore> MustOpen(const std::string& log_path) {
  auto store = eventstore::OpenRocksDbEventStore(log_path);
  INFO((store ? std::string() : store.error().ToString()));
  REQUIRE(store);
  return std::move(*store);
}

// The log's RocksDB opened directly, with its five column families (eventstore/FORMAT.md).
class RawLog {
 public:
  explicit RawLog(const std::string& path) {
    const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {"log", rocksdb::ColumnFamilyOptions()},
        {"stream_index", rocksdb::ColumnFamilyOptions()},
        {"stream_heads", rocksdb::ColumnFamilyOptions()},
        {"event_ids", rocksdb::ColumnFamilyOptions()},
    };
    rocksdb::DB* db = nullptr;
    const rocksdb::Status status =
        rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles_, &db);
    INFO(status.ToString());
    REQUIRE(status.ok());
    db_.reset(db);
  }
  ~RawLog() {
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
    db_->Close().PermitUncheckedError();
  }
  RawLog(const RawLog&) = delete;
  RawLog& operator=(const RawLog&) = delete;

  std::string GetRecord(uint64_t position) { return Get(1, Key(position)); }
  void PutRecord(uint64_t position, std::string_view value) { Put(1, Key(position), value); }
  void DeleteRecord(uint64_t position) {
    REQUIRE(db_->Delete(Sync(), handles_[1], Key(position)).ok());
  }
  // The head marker: position, then its hash.
  void PutHead(uint64_t position, const Hash256& hash) {
    std::string value = Key(position);
    value.append(reinterpret_cast<const char*>(hash.data()), hash.size());
    Put(0, "head", value);
  }

 private:
  static std::string Key(uint64_t position) {
    std::string key;
    AppendBigEndian64(key, position);
    return key;
  }
  static rocksdb::WriteOptions Sync() {
    rocksdb::WriteOptions options;
    options.sync = true;
    return options;
  }
  std::string Get(size_t family, std::string_view key) {
    std::string value;
    const rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), handles_[family], key, &value);
    INFO(status.ToString());
    REQUIRE(status.ok());
    return value;
  }
  void Put(size_t family, std::string_view key, std::string_view value) {
    REQUIRE(db_->Put(Sync(), handles_[family], key, value).ok());
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

// The lines of `text`, without their newlines.
inline std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream input(text);
  std::string line;
  while (std::getline(input, line)) lines.push_back(line);
  return lines;
}

inline std::string JoinLines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

}  // namespace ledger::audit_testing
