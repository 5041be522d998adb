// StateStore: a key-value space for state derived from the log: projection rows, checkpoints of
// subscribers (projections, the fulfillment process manager).
//
// Derived state can always be rebuilt from the log, so writes are not synced by default; what
// matters is that one batch is applied all or nothing, also across a crash (RocksDB's write-ahead
// log with point-in-time recovery), so that rows and the checkpoint written with them never
// disagree: after a crash a projection resumes from a checkpoint that matches its rows exactly.
//
// Keys are ordered bytewise. Each user of the store keeps to its own key prefix.
//
// Thread safety: StateStore methods may be called from any thread. A StateBatch belongs to one
// thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "eventstore/event_store.h"

namespace ledger::eventstore {

class StateStore;

// A set of writes applied atomically by StateStore::Write. Reads through the batch see its own
// writes first, then the store (read your writes within a batch).
class StateBatch {
 public:
  ~StateBatch();
  StateBatch(StateBatch&&) noexcept;
  StateBatch& operator=(StateBatch&&) noexcept;

  void Put(std::string_view key, std::string_view value);
  void Delete(std::string_view key);
  // The value as this batch would leave it: its own write if any, else the store's.
  StoreResult<std::optional<std::string>> Get(std::string_view key);
  size_t write_count() const { return write_count_; }
  bool empty() const { return write_count_ == 0; }

 private:
  friend class RocksDbStateStore;
  struct Impl;
  explicit StateBatch(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  size_t write_count_ = 0;
};

// A consistent, read-only view of the whole store as it was when the view was taken: writes
// committed later (and deletions) are invisible to it. Cheap to take; hold it only as long as a
// query lasts, since it keeps old data alive.
class StateView {
 public:
  virtual ~StateView() = default;
  virtual StoreResult<std::optional<std::string>> Get(std::string_view key) = 0;
  // As StateStore::Scan, within the view.
  virtual StoreResult<void> Scan(
      std::string_view begin, std::string_view end, bool reverse,
      const std::function<bool(std::string_view key, std::string_view value)>& visitor) = 0;
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  virtual std::unique_ptr<StateView> Snapshot() = 0;

  virtual StoreResult<std::optional<std::string>> Get(std::string_view key) = 0;

  // Calls `visitor` with each key in [begin, end) in order (backward when `reverse`), until it
  // returns false. An empty `end` means no upper bound.
  virtual StoreResult<void> Scan(
      std::string_view begin, std::string_view end, bool reverse,
      const std::function<bool(std::string_view key, std::string_view value)>& visitor) = 0;

  virtual StateBatch NewBatch() = 0;

  // Applies `batch` atomically; with `sync`, durably before returning.
  virtual StoreResult<void> Write(StateBatch& batch, bool sync = false) = 0;

  // Applies `batch` atomically but without the write-ahead log: cheaper, and lost in a crash
  // until a later Persist() returns (a crash keeps a prefix of such batches, in order, or none).
  // Only for keys nothing relies on until then, such as a projection generation being rebuilt
  // (which an interrupted rebuild leaves as garbage anyway); never mix them with logged writes
  // to the same keys before Persist.
  virtual StoreResult<void> WriteUnlogged(StateBatch& batch) = 0;

  // Makes every write applied so far durable, WriteUnlogged's included (RocksDB: flushes the
  // memtables into synced table files).
  virtual StoreResult<void> Persist() = 0;

  // Deletes every key in [begin, end) atomically (used to drop a projection's old copy).
  virtual StoreResult<void> DeleteRange(std::string_view begin, std::string_view end) = 0;
};

// Opens (or creates) a state store in directory `path`.
StoreResult<std::unique_ptr<StateStore>> OpenRocksDbStateStore(const std::string& path);

}  // namespace ledger::eventstore
