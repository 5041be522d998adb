// The RocksDB StateStore. One database with the default column family; a batch is a RocksDB
// WriteBatch that becomes a WriteBatchWithIndex when it is read, so that it reads its own writes.
#include <fmt/format.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/write_batch_with_index.h>

#include "base/assert.h"
#include "eventstore/state_store.h"

namespace ledger::eventstore {

namespace {
Error StateIoError(const rocksdb::Status& status, std::string_view context) {
  return Error{.code = ErrorCode::kIoError,
               .message = fmt::format("state store {}: {}", context, status.ToString()),
               .current_version = std::nullopt,
               .position = 0};
}
// The memtable's insert hints: RocksDB keeps, per prefix this returns, where the last key with
// that prefix went, and starts the next insert's search there instead of at the skip list's top.
// The prefix is a key's first six path segments: for a projection row, its generation and kind
// (proj/<name>/g/<generation>/r/<kind>/), so that each kind of row (an order, each index) is
// inserted near the previous one of its kind even when a batch interleaves kinds. A rebuild's
// batches, written in key order, then cost far fewer key comparisons. Keys with fewer segments
// get no hint.
class RowKindPrefix final : public rocksdb::SliceTransform {
 public:
  static constexpr int kSegments = 6;

  const char* Name() const override { return "ledger.RowKindPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), PrefixSize(key));
  }
  bool InDomain(const rocksdb::Slice& key) const override { return PrefixSize(key) != 0; }

 private:
  // The size of the key up to and including its kSegments-th '/'; 0 when it has fewer.
  static size_t PrefixSize(const rocksdb::Slice& key) {
    int slashes = 0;
    for (size_t i = 0; i < key.size(); ++i) {
      if (key[i] == '/' && ++slashes == kSegments) return i + 1;
    }
    return 0;
  }
};

}  // namespace

// A batch starts as a plain WriteBatch and gains its index only when it is first read while it
// holds writes: maintaining a WriteBatchWithIndex costs a skip-list insert (and a lookup, for
// overwrite_key) per write, which a batch that is only written (a projection that reads before it
// writes, as order status does) never needs.
struct StateBatch::Impl {
  rocksdb::DB* db;
  rocksdb::WriteBatch plain;
  std::unique_ptr<rocksdb::WriteBatchWithIndex> indexed;  // Once read while holding writes.

  rocksdb::WriteBatch* batch() { return indexed ? indexed->GetWriteBatch() : &plain; }
  void Index();
  void Clear() {
    plain.Clear();
    indexed.reset();
  }
};

// Moves the plain batch's writes, in order, into a new indexed batch.
void StateBatch::Impl::Index() {
  class Replay final : public rocksdb::WriteBatch::Handler {
   public:
    explicit Replay(rocksdb::WriteBatchWithIndex& out) : out_(out) {}
    void Put(const rocksdb::Slice& key, const rocksdb::Slice& value) override {
      out_.Put(key, value).PermitUncheckedError();
    }
    void Delete(const rocksdb::Slice& key) override { out_.Delete(key).PermitUncheckedError(); }

   private:
    rocksdb::WriteBatchWithIndex& out_;
  };
  indexed = std::make_unique<rocksdb::WriteBatchWithIndex>(rocksdb::BytewiseComparator(), 0,
                                                           /*overwrite_key=*/true);
  Replay replay(*indexed);
  // Only Put and Delete on the default column family ever enter a StateBatch.
  const rocksdb::Status replayed = plain.Iterate(&replay);
  LEDGER_ASSERT(replayed.ok(), "a state batch holds an unexpected record");
  plain.Clear();
}

StateBatch::StateBatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StateBatch::~StateBatch() = default;
StateBatch::StateBatch(StateBatch&&) noexcept = default;
StateBatch& StateBatch::operator=(StateBatch&&) noexcept = default;

void StateBatch::Put(std::string_view key, std::string_view value) {
  if (impl_->indexed) {
    impl_->indexed->Put(rocksdb::Slice(key), rocksdb::Slice(value)).PermitUncheckedError();
  } else {
    impl_->plain.Put(rocksdb::Slice(key), rocksdb::Slice(value)).PermitUncheckedError();
  }
  ++write_count_;
}

void StateBatch::Delete(std::string_view key) {
  if (impl_->indexed) {
    impl_->indexed->Delete(rocksdb::Slice(key)).PermitUncheckedError();
  } else {
    impl_->plain.Delete(rocksdb::Slice(key)).PermitUncheckedError();
  }
  ++write_count_;
}

StoreResult<std::optional<std::string>> StateBatch::Get(std::string_view key) {
  std::string value;
  rocksdb::Status status;
  if (!impl_->indexed && impl_->plain.Count() == 0) {
    status = impl_->db->Get(rocksdb::ReadOptions(), rocksdb::Slice(key), &value);
  } else {
    if (!impl_->indexed) impl_->Index();
    status = impl_->indexed->GetFromBatchAndDB(impl_->db, rocksdb::ReadOptions(),
                                               rocksdb::Slice(key), &value);
  }
  if (status.IsNotFound()) return std::optional<std::string>();
  if (!status.ok()) return Unexpected(StateIoError(status, "read"));
  return std::optional<std::string>(std::move(value));
}

// Scans [begin, end) of `db` (end empty: unbounded) with `options`, forward or backward.
StoreResult<void> ScanRange(
    rocksdb::DB* db, rocksdb::ReadOptions options, std::string_view begin, std::string_view end,
    bool reverse, const std::function<bool(std::string_view, std::string_view)>& visitor) {
  rocksdb::Slice lower(begin), upper(end);
  options.iterate_lower_bound = &lower;
  if (!end.empty()) options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> iterator(db->NewIterator(options));
  if (reverse) {
    if (end.empty()) {
      iterator->SeekToLast();
    } else {
      iterator->SeekForPrev(upper);
      // SeekForPrev lands on `end` itself when it exists; the range excludes it.
      if (iterator->Valid() && iterator->key() == upper) iterator->Prev();
    }
  } else {
    iterator->Seek(lower);
  }
  for (; iterator->Valid(); reverse ? iterator->Prev() : iterator->Next()) {
    if (!visitor(iterator->key().ToStringView(), iterator->value().ToStringView())) break;
  }
  if (!iterator->status().ok()) return Unexpected(StateIoError(iterator->status(), "scan"));
  return {};
}

StoreResult<std::optional<std::string>> GetKey(rocksdb::DB* db, const rocksdb::ReadOptions& options,
                                               std::string_view key) {
  std::string value;
  rocksdb::Status status = db->Get(options, rocksdb::Slice(key), &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (!status.ok()) return Unexpected(StateIoError(status, "read"));
  return std::optional<std::string>(std::move(value));
}

class RocksDbStateView final : public StateView {
 public:
  explicit RocksDbStateView(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {
    options_.snapshot = snapshot_;
  }
  ~RocksDbStateView() override { db_->ReleaseSnapshot(snapshot_); }

  StoreResult<std::optional<std::string>> Get(std::string_view key) override {
    return GetKey(db_, options_, key);
  }
  StoreResult<void> Scan(
      std::string_view begin, std::string_view end, bool reverse,
      const std::function<bool(std::string_view, std::string_view)>& visitor) override {
    return ScanRange(db_, options_, begin, end, reverse, visitor);
  }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
  rocksdb::ReadOptions options_;
};

class RocksDbStateStore final : public StateStore {
 public:
  explicit RocksDbStateStore(rocksdb::DB* db) : db_(db) {}
  ~RocksDbStateStore() override {
    db_->Close().PermitUncheckedError();
    delete db_;
  }

  std::unique_ptr<StateView> Snapshot() override { return std::make_unique<RocksDbStateView>(db_); }

  StoreResult<std::optional<std::string>> Get(std::string_view key) override {
    return GetKey(db_, rocksdb::ReadOptions(), key);
  }

  StoreResult<void> Scan(
      std::string_view begin, std::string_view end, bool reverse,
      const std::function<bool(std::string_view, std::string_view)>& visitor) override {
    return ScanRange(db_, rocksdb::ReadOptions(), begin, end, reverse, visitor);
  }

  StateBatch NewBatch() override {
    auto impl = std::make_unique<StateBatch::Impl>();
    impl->db = db_;
    return StateBatch(std::move(impl));
  }

  StoreResult<void> Write(StateBatch& batch, bool sync) override {
    rocksdb::WriteOptions options;
    options.sync = sync;
    return WriteWith(options, batch);
  }

  StoreResult<void> WriteUnlogged(StateBatch& batch) override {
    rocksdb::WriteOptions options;
    options.disableWAL = true;
    return WriteWith(options, batch);
  }

  StoreResult<void> Persist() override {
    // A flush writes the memtables (unlogged writes included) into table files and syncs them
    // and the MANIFEST before it returns; whatever else is in the WAL is synced with it.
    rocksdb::FlushOptions options;
    options.wait = true;
    rocksdb::Status status = db_->Flush(options);
    if (status.ok()) status = db_->SyncWAL();
    if (!status.ok()) return Unexpected(StateIoError(status, "persist"));
    return {};
  }

  StoreResult<void> DeleteRange(std::string_view begin, std::string_view end) override {
    rocksdb::WriteOptions options;
    rocksdb::Status status = db_->DeleteRange(options, db_->DefaultColumnFamily(),
                                              rocksdb::Slice(begin), rocksdb::Slice(end));
    if (!status.ok()) return Unexpected(StateIoError(status, "delete range"));
    return {};
  }

 private:
  StoreResult<void> WriteWith(const rocksdb::WriteOptions& options, StateBatch& batch) {
    rocksdb::Status status = db_->Write(options, batch.impl_->batch());
    if (!status.ok()) return Unexpected(StateIoError(status, "write"));
    batch.impl_->Clear();
    batch.write_count_ = 0;
    return {};
  }

  rocksdb::DB* db_;
};

StoreResult<std::unique_ptr<StateStore>> OpenRocksDbStateStore(const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.max_background_jobs = 2;
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  options.compression = rocksdb::kLZ4Compression;
  // A Bloom filter over each memtable's keys: a projection looks up every order it has not seen
  // in the batch, and during a rebuild most of them are new, so most lookups are misses that
  // would otherwise search the memtables' skip lists (about 5% of a rebuild's CPU). 2% of the
  // memtable's size (1.3 MB per 64 MB memtable) is tens of bits per key for our rows.
  options.memtable_prefix_bloom_size_ratio = 0.02;
  options.memtable_whole_key_filtering = true;
  options.memtable_insert_with_hint_prefix_extractor = std::make_shared<RowKindPrefix>();
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = rocksdb::NewLRUCache(128ull << 20);
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* db = nullptr;
  rocksdb::Status status = rocksdb::DB::Open(options, path, &db);
  if (!status.ok()) return Unexpected(StateIoError(status, fmt::format("cannot open {}", path)));
  return std::unique_ptr<StateStore>(std::make_unique<RocksDbStateStore>(db));
}

}  // namespace ledger::eventstore
