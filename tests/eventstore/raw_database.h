// The event store's RocksDB database opened directly, for tests that damage what it holds (a
// flipped byte, a deleted or rewritten record, a broken index entry) and check that the store
// and the audit tools report it.
#pragma once

#include <catch2/catch.hpp>

#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/sha256.h"

namespace ledger::eventstore::testing {

// The store's RocksDB database opened directly, with its five column families (FORMAT.md).
class RawDatabase {
 public:
  enum Family : size_t {
    kDefault = 0,
    kLog = 1,
    kStreamIndex = 2,
    kStreamHeads = 3,
    kEventIds = 4
  };

  explicit RawDatabase(const std::string& path) {
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

  ~RawDatabase() {
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
    db_->Close().PermitUncheckedError();
  }

  RawDatabase(const RawDatabase&) = delete;
  RawDatabase& operator=(const RawDatabase&) = delete;

  std::string Get(Family family, std::string_view key) {
    std::string value;
    const rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), handles_[family], key, &value);
    INFO(status.ToString());
    REQUIRE(status.ok());
    return value;
  }
  void Put(Family family, std::string_view key, std::string_view value) {
    REQUIRE(db_->Put(SyncWrite(), handles_[family], key, value).ok());
  }
  void Delete(Family family, std::string_view key) {
    REQUIRE(db_->Delete(SyncWrite(), handles_[family], key).ok());
  }

  std::string GetRecord(uint64_t position) { return Get(kLog, PositionKey(position)); }
  void PutRecord(uint64_t position, std::string_view value) {
    Put(kLog, PositionKey(position), value);
  }
  void DeleteRecord(uint64_t position) { Delete(kLog, PositionKey(position)); }
  // The head marker: the last position, then its hash.
  void PutHead(uint64_t position, const Hash256& hash) {
    std::string value = PositionKey(position);
    value.append(reinterpret_cast<const char*>(hash.data()), hash.size());
    Put(kDefault, "head", value);
  }

  static std::string PositionKey(uint64_t position) {
    std::string key;
    AppendBigEndian64(key, position);
    return key;
  }

 private:
  static rocksdb::WriteOptions SyncWrite() {
    rocksdb::WriteOptions options;
    options.sync = true;
    return options;
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace ledger::eventstore::testing
