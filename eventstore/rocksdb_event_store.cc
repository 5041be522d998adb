// The RocksDB implementation of EventStore. Key layout and the reasons for it: FORMAT.md.
//
// Writes go through one group-commit queue in the manner of LevelDB's DBImpl::Write: each
// appender queues itself; the appender at the front becomes the leader, takes every request
// queued behind it (up to a bound), decides each one (idempotency, expected version), assigns
// positions and hashes, writes them all in one synced WriteBatch, and hands every request its
// result. Only the leader touches the write state (next position, last hash), so positions are
// gapless and the hash chain is linear without further locking.
#include <fmt/format.h>
#include <linux/futex.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "base/bytes.h"
#include "eventstore/event_store.h"
#include "eventstore/record_codec.h"

namespace ledger::eventstore {

namespace {

// Column family names: stored on disk, never rename.
constexpr char kLogFamily[] = "log";
constexpr char kStreamIndexFamily[] = "stream_index";
constexpr char kStreamHeadFamily[] = "stream_heads";
constexpr char kEventIdFamily[] = "event_ids";
constexpr char kFormatKey[] = "format";
constexpr char kFormatValue[] = "orderledger-log-2";  // 2: one stream index entry per append.
// The last committed position (8 bytes big-endian) and its hash (32 bytes), written in the same
// batch as the records: on open, the log must end exactly there (see FORMAT.md).
constexpr char kHeadKey[] = "head";

constexpr size_t kScanProgressEvery = 1 << 16;

std::string PositionKey(uint64_t position) {
  std::string key;
  AppendBigEndian64(key, position);
  return key;
}

// stream bytes, one 0x00 byte, then the version as 8 big-endian bytes. Stream names never hold
// 0x00, so one stream's keys are contiguous and sorted by version.
std::string StreamIndexKey(std::string_view stream, uint64_t version) {
  std::string key;
  key.reserve(stream.size() + 9);
  key.append(stream);
  key.push_back('\0');
  AppendBigEndian64(key, version);
  return key;
}

Error MakeError(ErrorCode code, std::string message) {
  return Error{.code = code, .message = std::move(message), .current_version = {}, .position = 0};
}

Error IoError(const rocksdb::Status& status, std::string_view context) {
  return MakeError(ErrorCode::kIoError, fmt::format("{}: {}", context, status.ToString()));
}

Error CorruptionAt(uint64_t position, std::string message) {
  Error error = MakeError(ErrorCode::kCorruption, std::move(message));
  error.position = position;
  return error;
}

std::optional<Error> CheckName(std::string_view what, std::string_view name, size_t bytes_max) {
  if (name.empty()) return MakeError(ErrorCode::kInvalidArgument, fmt::format("{} is empty", what));
  if (name.size() > bytes_max) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("{} is {} bytes; at most {} are allowed", what, name.size(), bytes_max));
  }
  if (name.find('\0') != std::string_view::npos || !IsValidUtf8(name)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} must be UTF-8 text without NUL characters", what));
  }
  return std::nullopt;
}

std::optional<Error> CheckAppend(std::string_view stream, std::span<const NewEvent> events) {
  if (auto error = CheckName("stream name", stream, EventStore::kStreamNameBytesMax)) return error;
  if (events.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "an append needs at least one event");
  }
  if (events.size() > EventStore::kEventsPerAppendMax) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} events in one append; at most {} are allowed", events.size(),
                                 EventStore::kEventsPerAppendMax));
  }
  std::unordered_set<EventId, EventIdHash> ids;
  for (const NewEvent& event : events) {
    if (event.event_id.IsNil()) {
      return MakeError(ErrorCode::kInvalidArgument, "an event id must not be nil");
    }
    if (!ids.insert(event.event_id).second) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          fmt::format("event id {} appears twice in one append", event.event_id.ToString()));
    }
    if (auto error = CheckName("event type", event.event_type, EventStore::kEventTypeBytesMax)) {
      return error;
    }
    if (event.actor.size() > EventStore::kActorBytesMax || !IsValidUtf8(event.actor)) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          fmt::format("actor must be UTF-8 text of at most {} bytes", EventStore::kActorBytesMax));
    }
    if (event.payload.size() > EventStore::kPayloadBytesMax) {
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("payload is {} bytes; at most {} are allowed",
                                   event.payload.size(), EventStore::kPayloadBytesMax));
    }
  }
  return std::nullopt;
}

int64_t SystemClockUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class RocksDbEventStore;

class RocksDbSubscription final : public Subscription {
 public:
  RocksDbSubscription(RocksDbEventStore* store, uint64_t after_position)
      : store_(store), last_position_(after_position) {}

  StoreResult<std::vector<RecordedEvent>> Next(size_t max_count,
                                               std::chrono::milliseconds timeout) override;
  uint64_t last_position() const override { return last_position_; }
  void Close() override;
  bool closed() const { return closed_.load(std::memory_order_acquire); }

 private:
  RocksDbEventStore* store_;
  uint64_t last_position_;
  std::atomic<bool> closed_{false};
};

class RocksDbEventStore final : public EventStore {
 public:
  static StoreResult<std::unique_ptr<EventStore>> Open(const std::string& path,
                                                       const RocksDbOptions& options);
  ~RocksDbEventStore() override;

  StoreResult<AppendResult> Append(std::string_view stream, ExpectedVersion expected,
                                   std::span<const NewEvent> events) override;
  std::vector<StoreResult<AppendResult>> AppendMany(
      std::span<const AppendRequest> requests) override;
  StoreResult<std::vector<RecordedEvent>> ReadStream(std::string_view stream, Direction direction,
                                                     uint64_t from_version,
                                                     size_t max_count) override;
  StoreResult<LogPage> ReadAll(uint64_t from_position, size_t max_count) override;
  StoreResult<uint64_t> ScanAll(uint64_t from_position, uint64_t to_position,
                                const std::function<bool(const RecordedEvent&)>& visitor,
                                const ScanOptions& options) override;
  StoreResult<std::optional<RecordedEvent>> ReadEvent(const EventId& event_id) override;
  StoreResult<std::optional<uint64_t>> StreamVersion(std::string_view stream) override;
  uint64_t HeadPosition() const override { return head_position_.load(std::memory_order_acquire); }
  StoreResult<VerifyReport> Verify(uint64_t from_position, uint64_t to_position,
                                   const ProgressCallback& progress) override;
  std::unique_ptr<Subscription> SubscribeToAll(uint64_t after_position) override;
  uint64_t AddCommitListener(std::function<void(uint64_t)> listener) override;
  void RemoveCommitListener(uint64_t listener_id) override;
  StoreStats stats() const override;

  // For subscriptions: up to max_count committed events from `from_position`, served from the
  // in-memory tail when it still holds them, else from disk.
  StoreResult<std::vector<RecordedEvent>> ReadCommitted(uint64_t from_position, size_t max_count);
  // Blocks until the head passes `position`, the deadline passes, or `subscription` closes.
  void WaitForHeadAfter(uint64_t position, std::chrono::steady_clock::time_point deadline,
                        const RocksDbSubscription& subscription);
  void WakeWaiters();

 private:
  // One queued call (an Append, or an AppendMany with its requests). Lives on its caller's stack
  // until it is told `kDone`. Each writer waits on a futex of its own, so that handing results
  // back to a group does not make every woken writer queue again on the queue mutex behind the
  // others (a convoy of context switches). A bare futex rather than a mutex and condition
  // variable: those made each hand-off a signal while the leader held the writer's mutex, which
  // the woken writer then blocked on again (two sleeps and two wakes per event instead of one).
  struct Writer {
    enum class Turn : uint32_t { kWait, kLead, kDone };
    // `results` holds, for each request, its answer already (an invalid request) or nullopt.
    Writer(std::span<const AppendRequest> requests_in,
           std::vector<std::optional<StoreResult<AppendResult>>> results_in, size_t events_in)
        : requests(requests_in), results(std::move(results_in)), events(events_in) {
      refused_before.reserve(results.size());
      for (const auto& result : results) refused_before.push_back(result.has_value());
    }
    // Called by the leader. The writer may return (and this object end) as soon as it sees the
    // new turn, before the wake-up below: a FUTEX_WAKE on an address that no longer holds this
    // writer is harmless (it wakes nothing, or a futex waiter there early, and every futex
    // waiter checks its word again), which is why this is a bare futex and not a condition
    // variable, whose notify would touch a destroyed object.
    void Tell(Turn next) {
      turn.store(static_cast<uint32_t>(next), std::memory_order_release);
      ::syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }
    Turn AwaitTurn() {
      while (true) {
        const uint32_t now = turn.load(std::memory_order_acquire);
        if (now != static_cast<uint32_t>(Turn::kWait)) return static_cast<Turn>(now);
        // Returns at once when the word is no longer kWait (the wake came first), on a wake,
        // or spuriously (EINTR): each case checks the word again.
        ::syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, static_cast<uint32_t>(Turn::kWait), nullptr,
                  nullptr, 0);
      }
    }
    // Sets every result to `error` but those of requests refused before they were queued: a
    // conflict or a replay decided against the group's unwritten state means nothing now.
    void FailAll(const Error& error) {
      for (size_t i = 0; i < results.size(); ++i) {
        if (!refused_before[i]) results[i] = Unexpected(error);
      }
    }
    std::span<const AppendRequest> requests;
    std::vector<std::optional<StoreResult<AppendResult>>> results;
    std::vector<bool> refused_before;  // Answered before queueing (invalid requests).
    size_t events = 0;                 // In all requests.
    // The futex word: a Turn. std::atomic<uint32_t> has the size and alignment of the 32-bit
    // word the kernel compares.
    std::atomic<uint32_t> turn{static_cast<uint32_t>(Turn::kWait)};
    static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  };

  // Where an event of the current group went, for idempotency checks within the group.
  struct PendingEvent {
    size_t record_index;
  };

  // Everything one group commit builds before its single write.
  struct Group {
    uint64_t next_position = 0;
    Hash256 last_hash{};
    int64_t recorded_at_us = 0;
    std::unordered_map<std::string, uint64_t> stream_heads;  // Last version after the group.
    std::unordered_map<EventId, PendingEvent, EventIdHash> pending;
    std::vector<RecordedEvent> records;
    rocksdb::WriteBatch batch;
  };

  RocksDbEventStore(const RocksDbOptions& options, rocksdb::DB* db,
                    std::vector<rocksdb::ColumnFamilyHandle*> handles);

  StoreResult<void> RecoverTail();
  // Queues `writer` and returns once its group is committed (leading the group if it is first).
  void Submit(Writer& writer);
  void CommitGroup(const std::vector<Writer*>& group);
  StoreResult<AppendResult> Decide(const AppendRequest& request, Group& group);
  // The idempotency answer for `request`: nullopt when none of its ids is known (a new append),
  // else the original result or the error that its ids call for.
  std::optional<StoreResult<AppendResult>> CheckIdempotency(const AppendRequest& request,
                                                            const Group& group);
  StoreResult<std::optional<uint64_t>> CurrentVersion(std::string_view stream, const Group& group);
  void Publish(std::vector<RecordedEvent>&& records, uint64_t head);
  StoreResult<RecordedEvent> ReadAt(uint64_t position, bool verify_hash);
  // The records at `wanted` (version, position) pairs, checked to be those versions of `stream`.
  StoreResult<std::vector<RecordedEvent>> ReadPositions(
      std::string_view stream, const std::vector<std::pair<uint64_t, uint64_t>>& wanted);

  rocksdb::ColumnFamilyHandle* log() const { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* stream_index() const { return handles_[2]; }
  rocksdb::ColumnFamilyHandle* stream_heads() const { return handles_[3]; }
  rocksdb::ColumnFamilyHandle* event_ids() const { return handles_[4]; }

  const RocksDbOptions options_;
  rocksdb::DB* db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, log, index, heads, ids.

  // The group-commit queue.
  std::mutex queue_mutex_;
  std::deque<Writer*> writers_;
  size_t last_group_writers_ = 0;  // Writers in the latest group.
  size_t gather_target_ = 0;       // While a leader gathers: the queue length it waits for.
  std::condition_variable group_gathered_;

  // Write state, touched only by the current leader.
  uint64_t next_position_ = 1;
  Hash256 last_hash_{};
  int64_t last_recorded_at_us_ = 0;
  bool failed_ = false;  // A write failed: appends are refused until the store is reopened.

  // The committed tail, kept for live subscribers, and the head they wait on.
  std::atomic<uint64_t> head_position_{0};
  mutable std::mutex tail_mutex_;
  std::condition_variable head_advanced_;
  std::deque<RecordedEvent> tail_;  // Positions [head - tail_.size() + 1, head].

  // Counters for stats(); relaxed atomics, written by the leader of each group.
  std::atomic<uint64_t> appends_{0};
  std::atomic<uint64_t> events_appended_{0};
  std::atomic<uint64_t> appends_replayed_{0};
  std::atomic<uint64_t> appends_rejected_{0};
  std::atomic<uint64_t> group_commits_{0};
  Histogram group_events_{Histogram::ExponentialBounds(1, 2, 12)};           // 1 .. 2048
  Histogram write_seconds_{Histogram::ExponentialBounds(0.0000625, 2, 16)};  // 62.5 us .. 2 s

  std::mutex listeners_mutex_;
  uint64_t next_listener_id_ = 1;
  std::vector<std::pair<uint64_t, std::function<void(uint64_t)>>> listeners_;
};

// How a family is read, which decides its filters and its memtable.
enum class FamilyUse {
  kScans,         // log, stream_index: ranges in key order.
  kPointLookups,  // default: a few keys, read by Get.
  // event_ids, stream_heads: a key or more per event, in no order, only ever read by Get.
  kHashedLookups,
};

rocksdb::ColumnFamilyOptions FamilyOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                           FamilyUse use, size_t block_bytes) {
  const bool point_lookups = use != FamilyUse::kScans;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.block_size = block_bytes;
  table.format_version = 5;
  if (point_lookups) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.cache_index_and_filter_blocks = true;
    table.pin_l0_filter_and_index_blocks_in_cache = true;
  }
  rocksdb::ColumnFamilyOptions family;
  family.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  family.compression = rocksdb::kLZ4Compression;
  if (point_lookups) {
    // A bloom filter over the memtable too: most lookups (fresh event ids) miss.
    family.memtable_prefix_bloom_size_ratio = 0.05;
    family.memtable_whole_key_filtering = true;
  }
  if (use == FamilyUse::kHashedLookups) {
    // A memtable of hash buckets instead of one skip list: the group's leader inserts these
    // random keys one after the other while every appender of the group waits, and a search
    // from the top of a skip list of a million entries costs a dozen cache misses per key, a
    // bucket one or two. The sorting moves to the flush, which builds a skip list of the whole
    // memtable on a background thread; a small memtable (16 MiB, about 200,000 entries) keeps
    // that list in the caches, where the default 64 MiB made each flush take seconds of CPU and
    // slowed 1000-event appends by a third. The bucket array (2 MiB) comes out of the
    // memtable's budget. Such a memtable needs a prefix extractor: the whole key is the prefix,
    // so Get and the bloom filters work as before, and no iterator ever reads these families.
    family.write_buffer_size = 16 << 20;
    family.prefix_extractor.reset(rocksdb::NewNoopTransform());
    family.memtable_factory.reset(rocksdb::NewHashLinkListRepFactory(1 << 18));
  }
  return family;
}

StoreResult<std::unique_ptr<EventStore>> RocksDbEventStore::Open(const std::string& path,
                                                                 const RocksDbOptions& options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = options.create_if_missing;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  // Required by the hashed memtables; RocksDB writes one batch at a time here anyway (the group
  // commit hands it one batch per group).
  db_options.allow_concurrent_memtable_write = false;
  // A record cut short at the end of a write-ahead log file (the process died inside the write)
  // was never acknowledged, and is dropped. Any other damage to the log refuses the open, with
  // the files left as they are: point-in-time recovery would stop at the damaged record and drop
  // every synced, acknowledged event after it, and then delete the file that held them.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;

  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, FamilyOptions(cache, FamilyUse::kPointLookups, 4096)},
      {kLogFamily, FamilyOptions(cache, FamilyUse::kScans, 32 * 1024)},
      {kStreamIndexFamily, FamilyOptions(cache, FamilyUse::kScans, 8192)},
      {kStreamHeadFamily, FamilyOptions(cache, FamilyUse::kHashedLookups, 4096)},
      {kEventIdFamily, FamilyOptions(cache, FamilyUse::kHashedLookups, 4096)},
  };
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status status = rocksdb::DB::Open(db_options, path, families, &handles, &db);
  if (status.IsCorruption()) {
    // Left for ops to decide (see wal_recovery_mode above): nothing was written or removed.
    return Unexpected(MakeError(
        ErrorCode::kCorruption,
        fmt::format("cannot open {}: its files are damaged ({}); nothing was changed. If the "
                    "damage is in the write-ahead log (a .log file), opening past it would lose "
                    "the synced events after it, so the store does not: restore the directory "
                    "from a backup, and keep this copy for investigation",
                    path, status.ToString())));
  }
  if (!status.ok()) return Unexpected(IoError(status, fmt::format("cannot open {}", path)));

  std::unique_ptr<RocksDbEventStore> store(new RocksDbEventStore(options, db, std::move(handles)));
  std::string format;
  status = db->Get(rocksdb::ReadOptions(), kFormatKey, &format);
  if (status.IsNotFound()) {
    rocksdb::WriteOptions write_options;
    write_options.sync = true;
    status = db->Put(write_options, kFormatKey, kFormatValue);
    if (!status.ok()) return Unexpected(IoError(status, "cannot write the format marker"));
  } else if (!status.ok()) {
    return Unexpected(IoError(status, "cannot read the format marker"));
  } else if (format != kFormatValue) {
    return Unexpected(MakeError(
        ErrorCode::kCorruption,
        fmt::format("{} holds format '{}', this build reads '{}'", path, format, kFormatValue)));
  }
  if (auto recovered = store->RecoverTail(); !recovered) {
    return Unexpected(std::move(recovered).error());
  }
  return std::unique_ptr<EventStore>(std::move(store));
}

RocksDbEventStore::RocksDbEventStore(const RocksDbOptions& options, rocksdb::DB* db,
                                     std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : options_(options), db_(db), handles_(std::move(handles)) {
  LEDGER_ASSERT(handles_.size() == 5, "one handle per column family");
}

RocksDbEventStore::~RocksDbEventStore() {
  {
    std::lock_guard lock(queue_mutex_);
    LEDGER_ASSERT(writers_.empty(), "store destroyed while appends are in flight");
  }
  for (auto* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  // Closing flushes nothing that matters for durability (the WAL is synced on every write),
  // but a clean close saves recovery work on the next open.
  db_->Close().PermitUncheckedError();
  delete db_;
}

StoreResult<void> RocksDbEventStore::RecoverTail() {
  std::string marker;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), kHeadKey, &marker);
  if (!status.ok() && !status.IsNotFound()) {
    return Unexpected(IoError(status, "cannot read the head marker"));
  }
  const bool has_marker = status.ok();
  if (has_marker && marker.size() != 8 + sizeof(Hash256)) {
    return Unexpected(CorruptionAt(0, "the head marker is damaged"));
  }
  const uint64_t marked_head = has_marker ? ReadBigEndian64(marker.data()) : 0;

  std::unique_ptr<rocksdb::Iterator> iterator(db_->NewIterator(rocksdb::ReadOptions(), log()));
  iterator->SeekToLast();
  if (!iterator->status().ok()) return Unexpected(IoError(iterator->status(), "cannot read log"));
  uint64_t last_position = 0;
  if (iterator->Valid()) {
    if (iterator->key().size() != 8) {
      return Unexpected(CorruptionAt(0, "the last key of the log is not a position"));
    }
    last_position = ReadBigEndian64(iterator->key().data());
  }
  // Every commit writes its records and the marker in one batch, so they can only disagree when
  // something outside the store changed the log. Appending on would reuse a lost position.
  if (last_position < marked_head) {
    return Unexpected(CorruptionAt(
        last_position + 1, fmt::format("the log ends at position {} but position {} was committed; "
                                       "position {} is missing",
                                       last_position, marked_head, last_position + 1)));
  }
  if (last_position > marked_head) {
    return Unexpected(CorruptionAt(
        marked_head + 1, fmt::format("the log holds position {} beyond the committed head {}",
                                     marked_head + 1, marked_head)));
  }
  if (last_position == 0) return {};  // An empty log.

  RecordedEvent last;
  auto decoded = internal::DecodeRecord(iterator->value().ToStringView(), last_position, last);
  if (!decoded) return Unexpected(std::move(decoded).error());
  if (!internal::HasValidHash(last) ||
      std::memcmp(marker.data() + 8, last.hash.data(), last.hash.size()) != 0) {
    return Unexpected(CorruptionAt(
        last_position,
        fmt::format("the last record (position {}) does not match its hash", last_position)));
  }
  next_position_ = last_position + 1;
  last_hash_ = last.hash;
  last_recorded_at_us_ = last.recorded_at_us;
  head_position_.store(last_position, std::memory_order_release);
  return {};
}

StoreResult<AppendResult> RocksDbEventStore::Append(std::string_view stream,
                                                    ExpectedVersion expected,
                                                    std::span<const NewEvent> events) {
  if (auto error = CheckAppend(stream, events)) return Unexpected(std::move(*error));
  const AppendRequest request{.stream = stream, .expected = expected, .events = events};
  std::vector<std::optional<StoreResult<AppendResult>>> results(1);
  Writer self(std::span(&request, 1), std::move(results), events.size());
  Submit(self);
  return std::move(*self.results.front());
}

std::vector<StoreResult<AppendResult>> RocksDbEventStore::AppendMany(
    std::span<const AppendRequest> requests) {
  std::vector<std::optional<StoreResult<AppendResult>>> results(requests.size());
  size_t events = 0;
  bool any_valid = false;
  for (size_t i = 0; i < requests.size(); ++i) {
    events += requests[i].events.size();
    if (auto error = CheckAppend(requests[i].stream, requests[i].events)) {
      results[i] = Unexpected(std::move(*error));
    } else {
      any_valid = true;
    }
  }
  if (events > kEventsPerAppendMax) {
    const Error error = InvalidArgumentError(
        fmt::format("an AppendMany call carries {} events in all; at most {} are allowed", events,
                    kEventsPerAppendMax));
    for (auto& result : results) result = Unexpected(error);
    any_valid = false;
  }
  Writer self(requests, std::move(results), events);
  if (any_valid) Submit(self);
  std::vector<StoreResult<AppendResult>> answers;
  answers.reserve(requests.size());
  for (auto& result : self.results) answers.push_back(std::move(*result));
  return answers;
}

void RocksDbEventStore::Submit(Writer& self) {
  std::unique_lock lock(queue_mutex_);
  writers_.push_back(&self);
  const bool leads = writers_.size() == 1;
  if (!leads && writers_.size() == gather_target_) group_gathered_.notify_one();
  lock.unlock();
  if (!leads && self.AwaitTurn() == Writer::Turn::kDone) return;

  // This thread leads: let the group gather (see RocksDbOptions::group_commit_gather), then take
  // the requests queued, up to the group bound. Only the leader pops the queue, so the front
  // stays this thread's until it does.
  std::vector<Writer*> group;
  size_t group_events = 0;
  lock.lock();
  if (last_group_writers_ > 1 && writers_.size() < last_group_writers_ &&
      options_.group_commit_gather.count() > 0) {
    gather_target_ = last_group_writers_;
    group_gathered_.wait_for(lock, options_.group_commit_gather,
                             [&] { return writers_.size() >= gather_target_; });
    gather_target_ = 0;
  }
  for (Writer* writer : writers_) {
    if (!group.empty() && group_events + writer->events > options_.group_commit_events_max) break;
    group.push_back(writer);
    group_events += writer->events;
  }
  last_group_writers_ = group.size();
  lock.unlock();
  CommitGroup(group);

  lock.lock();
  for (Writer* writer : group) {
    LEDGER_ASSERT(writers_.front() == writer, "group commit queue out of order");
    writers_.pop_front();
  }
  Writer* next_leader = writers_.empty() ? nullptr : writers_.front();
  lock.unlock();
  // The next group first: its commit overlaps with waking this one.
  if (next_leader != nullptr) next_leader->Tell(Writer::Turn::kLead);
  for (Writer* writer : group) {
    if (writer != &self) writer->Tell(Writer::Turn::kDone);
  }
}

void RocksDbEventStore::CommitGroup(const std::vector<Writer*>& group) {
  if (failed_) {
    const Error error =
        MakeError(ErrorCode::kIoError, "an earlier write failed; reopen the store to recover");
    for (Writer* writer : group) writer->FailAll(error);
    return;
  }
  const int64_t now_us = options_.clock_us ? options_.clock_us() : SystemClockUs();
  Group state;
  state.next_position = next_position_;
  state.last_hash = last_hash_;
  state.recorded_at_us = std::max(now_us, last_recorded_at_us_);
  uint64_t writing = 0;
  for (Writer* writer : group) {
    for (size_t i = 0; i < writer->requests.size(); ++i) {
      if (writer->refused_before[i]) continue;  // Answered as Append answers an invalid call.
      auto& result = writer->results[i];
      result = Decide(writer->requests[i], state);
      if (!result->has_value()) {
        appends_rejected_.fetch_add(1, std::memory_order_relaxed);
      } else if ((*result)->idempotent_replay) {
        appends_replayed_.fetch_add(1, std::memory_order_relaxed);
      } else {
        ++writing;
      }
    }
  }
  if (state.records.empty()) return;  // Only rejections and idempotent replays.

  for (const auto& [stream, version] : state.stream_heads) {
    std::string value;
    AppendBigEndian64(value, version);
    state.batch.Put(stream_heads(), stream, value);
  }
  std::string head_marker;
  AppendBigEndian64(head_marker, state.next_position - 1);
  head_marker.append(reinterpret_cast<const char*>(state.last_hash.data()), state.last_hash.size());
  state.batch.Put(handles_[0], kHeadKey, head_marker);
  rocksdb::WriteOptions write_options;
  write_options.sync = options_.sync;
  const auto write_started = std::chrono::steady_clock::now();
  rocksdb::Status status =
      options_.before_write && !options_.before_write()
          ? rocksdb::Status::IOError("the write was refused by RocksDbOptions::before_write")
          : db_->Write(write_options, &state.batch);
  write_seconds_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - write_started).count());
  if (!status.ok()) {
    // What reached the disk is now for recovery to decide; nothing more is written by this
    // process, so no acknowledged position can be reused.
    failed_ = true;
    for (Writer* writer : group) writer->FailAll(IoError(status, "append"));
    return;
  }
  next_position_ = state.next_position;
  last_hash_ = state.last_hash;
  last_recorded_at_us_ = state.recorded_at_us;
  appends_.fetch_add(writing, std::memory_order_relaxed);
  events_appended_.fetch_add(state.records.size(), std::memory_order_relaxed);
  group_commits_.fetch_add(1, std::memory_order_relaxed);
  group_events_.Observe(static_cast<double>(state.records.size()));
  Publish(std::move(state.records), state.next_position - 1);
}

StoreResult<AppendResult> RocksDbEventStore::Decide(const AppendRequest& request, Group& group) {
  if (auto replay = CheckIdempotency(request, group)) return std::move(*replay);

  auto current = CurrentVersion(request.stream, group);
  if (!current) return Unexpected(std::move(current).error());
  if (!request.expected.IsSatisfiedBy(*current)) {
    Error error = MakeError(
        ErrorCode::kWrongExpectedVersion,
        fmt::format("stream {} is at {}, the append expected {}", request.stream,
                    current->has_value() ? fmt::format("version {}", **current) : "no stream",
                    request.expected.ToString()));
    error.current_version = *current;
    return Unexpected(std::move(error));
  }

  uint64_t version = current->has_value() ? **current + 1 : 0;
  AppendResult result{.first_position = group.next_position,
                      .last_position = 0,
                      .stream_version = 0,
                      .idempotent_replay = false};
  std::string position_value;
  for (const NewEvent& event : request.events) {
    RecordedEvent record{.position = group.next_position++,
                         .stream = std::string(request.stream),
                         .version = version++,
                         .event_id = event.event_id,
                         .event_type = event.event_type,
                         .recorded_at_us = group.recorded_at_us,
                         .correlation_id = event.correlation_id,
                         .causation_id = event.causation_id,
                         .actor = event.actor,
                         .schema_version = event.schema_version,
                         .payload = event.payload,
                         .previous_hash = group.last_hash,
                         .hash = {}};
    record.hash = internal::ComputeRecordHash(record);
    group.last_hash = record.hash;

    const std::string position_key = PositionKey(record.position);
    group.batch.Put(log(), position_key, internal::EncodeRecord(record));
    group.batch.Put(event_ids(), record.event_id.AsBytes(), position_key);
    group.pending.emplace(record.event_id, PendingEvent{.record_index = group.records.size()});
    result.last_position = record.position;
    result.stream_version = record.version;
    group.records.push_back(std::move(record));
  }
  // One stream index entry per append: the run of versions it wrote, at consecutive positions.
  std::string run;
  AppendBigEndian64(run, result.first_position);
  AppendBigEndian32(run, static_cast<uint32_t>(request.events.size()));
  group.batch.Put(stream_index(),
                  StreamIndexKey(request.stream, result.stream_version + 1 - request.events.size()),
                  run);
  group.stream_heads[std::string(request.stream)] = result.stream_version;
  return result;
}

std::optional<StoreResult<AppendResult>> RocksDbEventStore::CheckIdempotency(
    const AppendRequest& request, const Group& group) {
  const size_t count = request.events.size();
  std::vector<rocksdb::Slice> keys;
  keys.reserve(count);
  for (const NewEvent& event : request.events) {
    keys.emplace_back(event.event_id.AsBytes().data(), EventId::kSize);
  }
  std::vector<rocksdb::PinnableSlice> values(count);
  std::vector<rocksdb::Status> statuses(count);
  db_->MultiGet(rocksdb::ReadOptions(), event_ids(), count, keys.data(), values.data(),
                statuses.data());

  // For each event, the stored (or pending) record that holds its id, if any.
  std::vector<std::optional<RecordedEvent>> originals(count);
  size_t found = 0;
  for (size_t i = 0; i < count; ++i) {
    const NewEvent& event = request.events[i];
    if (auto pending = group.pending.find(event.event_id); pending != group.pending.end()) {
      originals[i] = group.records[pending->second.record_index];
    } else if (statuses[i].ok()) {
      if (values[i].size() != 8) {
        return Unexpected(MakeError(
            ErrorCode::kCorruption,
            fmt::format("the index entry of event id {} is damaged", event.event_id.ToString())));
      }
      auto stored = ReadAt(ReadBigEndian64(values[i].data()), /*verify_hash=*/true);
      if (!stored) return Unexpected(std::move(stored).error());
      originals[i] = std::move(*stored);
    } else if (!statuses[i].IsNotFound()) {
      return Unexpected(IoError(statuses[i], "event id lookup"));
    } else {
      continue;
    }
    ++found;
    if (!originals[i]->HasSameContent(request.stream, event)) {
      return Unexpected(
          MakeError(ErrorCode::kEventIdReused,
                    fmt::format("event id {} is already at position {} with other content",
                                event.event_id.ToString(), originals[i]->position)));
    }
  }
  if (found == 0) return std::nullopt;
  if (found < count) {
    return Unexpected(MakeError(ErrorCode::kPartialDuplicate,
                                fmt::format("{} of the {} event ids are already in the log; an "
                                            "append must be wholly new or wholly a retry",
                                            found, count)));
  }
  for (size_t i = 1; i < count; ++i) {
    if (originals[i]->version != originals[i - 1]->version + 1) {
      return Unexpected(MakeError(ErrorCode::kPartialDuplicate,
                                  "the event ids are in the log, but not as one run of the "
                                  "stream in this order"));
    }
  }
  return StoreResult<AppendResult>(AppendResult{.first_position = originals.front()->position,
                                                .last_position = originals.back()->position,
                                                .stream_version = originals.back()->version,
                                                .idempotent_replay = true});
}

StoreResult<std::optional<uint64_t>> RocksDbEventStore::CurrentVersion(std::string_view stream,
                                                                       const Group& group) {
  if (auto head = group.stream_heads.find(std::string(stream)); head != group.stream_heads.end()) {
    return std::optional<uint64_t>(head->second);
  }
  return StreamVersion(stream);
}

void RocksDbEventStore::Publish(std::vector<RecordedEvent>&& records, uint64_t head) {
  {
    std::lock_guard lock(tail_mutex_);
    for (RecordedEvent& record : records) tail_.push_back(std::move(record));
    while (tail_.size() > options_.recent_events_kept) tail_.pop_front();
    head_position_.store(head, std::memory_order_release);
  }
  head_advanced_.notify_all();
  std::lock_guard lock(listeners_mutex_);
  for (const auto& [id, listener] : listeners_) listener(head);
}

StoreResult<std::optional<uint64_t>> RocksDbEventStore::StreamVersion(std::string_view stream) {
  if (auto error = CheckName("stream name", stream, kStreamNameBytesMax)) {
    return Unexpected(std::move(*error));
  }
  std::string value;
  rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), stream_heads(), rocksdb::Slice(stream), &value);
  if (status.IsNotFound()) return std::optional<uint64_t>();
  if (!status.ok()) return Unexpected(IoError(status, "stream head lookup"));
  if (value.size() != 8) {
    return Unexpected(MakeError(ErrorCode::kCorruption,
                                fmt::format("the head entry of stream {} is damaged", stream)));
  }
  return std::optional<uint64_t>(ReadBigEndian64(value.data()));
}

StoreResult<RecordedEvent> RocksDbEventStore::ReadAt(uint64_t position, bool verify_hash) {
  rocksdb::PinnableSlice value;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), log(), PositionKey(position), &value);
  if (status.IsNotFound()) {
    return Unexpected(CorruptionAt(position, fmt::format("position {} is missing from the log, "
                                                         "but an index points at it",
                                                         position)));
  }
  if (!status.ok()) return Unexpected(IoError(status, "log read"));
  RecordedEvent record;
  auto decoded = internal::DecodeRecord(value.ToStringView(), position, record);
  if (!decoded) return Unexpected(std::move(decoded).error());
  if (verify_hash && !internal::HasValidHash(record)) {
    return Unexpected(CorruptionAt(
        position, fmt::format("record at position {} does not match its hash", position)));
  }
  return record;
}

StoreResult<std::vector<RecordedEvent>> RocksDbEventStore::ReadPositions(
    std::string_view stream, const std::vector<std::pair<uint64_t, uint64_t>>& wanted) {
  std::vector<RecordedEvent> events;
  events.reserve(wanted.size());
  for (const auto& [version, position] : wanted) {
    auto record = ReadAt(position, /*verify_hash=*/true);
    if (!record) return Unexpected(std::move(record).error());
    if (record->stream != stream || record->version != version) {
      return Unexpected(CorruptionAt(
          position, fmt::format("the index of stream {} puts version {} at position {}, which "
                                "holds version {} of stream {}",
                                stream, version, position, record->version, record->stream)));
    }
    events.push_back(std::move(*record));
  }
  return events;
}

StoreResult<std::vector<RecordedEvent>> RocksDbEventStore::ReadStream(std::string_view stream,
                                                                      Direction direction,
                                                                      uint64_t from_version,
                                                                      size_t max_count) {
  if (auto error = CheckName("stream name", stream, kStreamNameBytesMax)) {
    return Unexpected(std::move(*error));
  }
  max_count = std::min(max_count, kReadCountMax);
  std::string lower(stream);
  lower.push_back('\0');
  std::string upper(stream);
  upper.push_back('\1');
  rocksdb::Slice lower_bound(lower), upper_bound(upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_lower_bound = &lower_bound;
  read_options.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> iterator(db_->NewIterator(read_options, stream_index()));

  // Each entry is a run: versions [first, first + count) at positions [position, position +
  // count). The run holding `from_version` is the last one starting at or before it.
  struct Run {
    uint64_t first_version, first_position, count;
  };
  auto read_run = [&]() -> std::optional<Run> {
    const rocksdb::Slice key = iterator->key();
    const rocksdb::Slice value = iterator->value();
    if (key.size() != lower.size() + 8 || value.size() != 12) return std::nullopt;
    const uint64_t count = ReadBigEndian32(value.data() + 8);
    if (count == 0) return std::nullopt;
    return Run{.first_version = ReadBigEndian64(key.data() + lower.size()),
               .first_position = ReadBigEndian64(value.data()),
               .count = count};
  };
  auto damaged = [&] {
    return Unexpected(MakeError(ErrorCode::kCorruption,
                                fmt::format("the index of stream {} is damaged", stream)));
  };

  std::vector<std::pair<uint64_t, uint64_t>> wanted;  // (version, position)
  iterator->SeekForPrev(StreamIndexKey(stream, from_version));
  if (direction == Direction::kForward) {
    if (!iterator->Valid()) iterator->Seek(lower);
    std::optional<uint64_t> next_version;
    for (; iterator->Valid() && wanted.size() < max_count; iterator->Next()) {
      const auto run = read_run();
      if (!run) return damaged();
      if (next_version && run->first_version != *next_version) return damaged();
      for (uint64_t v = std::max(from_version, run->first_version);
           v < run->first_version + run->count && wanted.size() < max_count; ++v) {
        wanted.emplace_back(v, run->first_position + (v - run->first_version));
      }
      next_version = run->first_version + run->count;
    }
  } else {
    std::optional<uint64_t> previous_first;
    for (; iterator->Valid() && wanted.size() < max_count; iterator->Prev()) {
      const auto run = read_run();
      if (!run) return damaged();
      if (previous_first && run->first_version + run->count != *previous_first) return damaged();
      const uint64_t top = std::min(from_version, run->first_version + run->count - 1);
      for (uint64_t v = top + 1; v-- > run->first_version && wanted.size() < max_count;) {
        wanted.emplace_back(v, run->first_position + (v - run->first_version));
      }
      previous_first = run->first_version;
    }
  }
  if (!iterator->status().ok()) return Unexpected(IoError(iterator->status(), "stream read"));
  return ReadPositions(stream, wanted);
}

StoreResult<uint64_t> RocksDbEventStore::ScanAll(
    uint64_t from_position, uint64_t to_position,
    const std::function<bool(const RecordedEvent&)>& visitor, const ScanOptions& options) {
  from_position = std::max<uint64_t>(from_position, 1);
  if (to_position < from_position) return uint64_t{0};
  rocksdb::ReadOptions read_options;
  read_options.readahead_size = 2 << 20;
  read_options.fill_cache = false;  // A replay must not evict what live reads need.
  std::unique_ptr<rocksdb::Iterator> iterator(db_->NewIterator(read_options, log()));
  RecordedEvent record;
  uint64_t visited = 0;
  uint64_t expected = from_position;
  for (iterator->Seek(PositionKey(from_position)); iterator->Valid() && expected <= to_position;
       iterator->Next(), ++expected) {
    const rocksdb::Slice key = iterator->key();
    if (key.size() != 8 || ReadBigEndian64(key.data()) != expected) {
      return Unexpected(
          CorruptionAt(expected, fmt::format("position {} is missing from the log", expected)));
    }
    auto decoded = internal::DecodeRecordIf(iterator->value().ToStringView(), expected,
                                            options.stream_filter, record);
    if (!decoded) return Unexpected(std::move(decoded).error());
    if (!*decoded) continue;  // Another pass's stream.
    if (options.verify_hashes && !internal::HasValidHash(record)) {
      return Unexpected(CorruptionAt(
          expected, fmt::format("record at position {} does not match its hash", expected)));
    }
    ++visited;
    if (!visitor(record)) return visited;
  }
  if (!iterator->status().ok()) return Unexpected(IoError(iterator->status(), "log scan"));
  return visited;
}

StoreResult<LogPage> RocksDbEventStore::ReadAll(uint64_t from_position, size_t max_count) {
  from_position = std::max<uint64_t>(from_position, 1);
  max_count = std::min(max_count, kReadCountMax);
  LogPage page;
  page.head_position = HeadPosition();
  page.next_position = from_position;
  if (max_count == 0) return page;
  auto scanned = ScanAll(
      from_position, from_position + max_count - 1,
      [&page](const RecordedEvent& event) {
        page.events.push_back(event);
        return true;
      },
      ScanOptions{});
  // A bad record ends the page before it; only a page that would start with it is an error, so
  // a reader gets every good event and then learns exactly where the damage is.
  if (!scanned && page.events.empty()) return Unexpected(std::move(scanned).error());
  page.next_position = from_position + page.events.size();
  if (!page.events.empty()) {
    page.head_position = std::max(page.head_position, page.events.back().position);
  }
  return page;
}

StoreResult<std::optional<RecordedEvent>> RocksDbEventStore::ReadEvent(const EventId& event_id) {
  std::string value;
  rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), event_ids(), event_id.AsBytes(), &value);
  if (status.IsNotFound()) return std::optional<RecordedEvent>();
  if (!status.ok()) return Unexpected(IoError(status, "event id lookup"));
  if (value.size() != 8) {
    return Unexpected(
        MakeError(ErrorCode::kCorruption,
                  fmt::format("the index entry of event id {} is damaged", event_id.ToString())));
  }
  auto record = ReadAt(ReadBigEndian64(value.data()), /*verify_hash=*/true);
  if (!record) return Unexpected(std::move(record).error());
  return std::optional<RecordedEvent>(std::move(*record));
}

StoreResult<VerifyReport> RocksDbEventStore::Verify(uint64_t from_position, uint64_t to_position,
                                                    const ProgressCallback& progress) {
  VerifyReport report;
  report.from_position = std::max<uint64_t>(from_position, 1);
  const uint64_t head = HeadPosition();
  const uint64_t last = std::min(to_position, head);
  report.to_position = report.from_position - 1;
  if (last < report.from_position) return report;

  auto fail = [&report](uint64_t position, std::string problem) {
    report.ok = false;
    report.first_bad_position = position;
    report.problem = std::move(problem);
  };
  Hash256 previous{};
  if (report.from_position > 1) {
    // Anchor on the record before the range: its own hash must hold for the link to mean much.
    auto anchor = ReadAt(report.from_position - 1, /*verify_hash=*/true);
    if (!anchor) {
      if (anchor.error().code != ErrorCode::kCorruption) return Unexpected(anchor.error());
      fail(report.from_position - 1, anchor.error().message);
      return report;
    }
    previous = anchor->hash;
  }
  const uint64_t total = last - report.from_position + 1;
  auto scanned = ScanAll(
      report.from_position, last,
      [&](const RecordedEvent& record) {
        if (record.previous_hash != previous) {
          fail(record.position, fmt::format("record at position {} does not link to the hash of "
                                            "position {}",
                                            record.position, record.position - 1));
          return false;
        }
        if (!internal::HasValidHash(record)) {
          fail(record.position,
               fmt::format("record at position {} does not match its hash", record.position));
          return false;
        }
        previous = record.hash;
        report.last_hash = record.hash;
        report.to_position = record.position;
        ++report.events_checked;
        if (progress && report.events_checked % kScanProgressEvery == 0) {
          progress(report.events_checked, total);
        }
        return true;
      },
      ScanOptions{.verify_hashes = false});  // Checked above, after the link.
  if (!scanned) {
    if (scanned.error().code != ErrorCode::kCorruption) return Unexpected(scanned.error());
    fail(scanned.error().position, scanned.error().message);
    return report;
  }
  if (report.ok && report.to_position < last) {
    fail(report.to_position + 1,
         fmt::format("position {} is missing from the log", report.to_position + 1));
  }
  if (progress) progress(report.events_checked, total);
  return report;
}

StoreResult<std::vector<RecordedEvent>> RocksDbEventStore::ReadCommitted(uint64_t from_position,
                                                                         size_t max_count) {
  {
    std::lock_guard lock(tail_mutex_);
    const uint64_t head = head_position_.load(std::memory_order_relaxed);
    const uint64_t tail_first = head - tail_.size() + 1;
    if (!tail_.empty() && from_position >= tail_first && from_position <= head) {
      const size_t offset = from_position - tail_first;
      const size_t count = std::min<size_t>(max_count, tail_.size() - offset);
      const auto begin = tail_.begin() + static_cast<std::ptrdiff_t>(offset);
      return std::vector<RecordedEvent>(begin, begin + static_cast<std::ptrdiff_t>(count));
    }
  }
  // Fallen behind the in-memory tail (or the store was just opened): read the log.
  auto page = ReadAll(from_position, max_count);
  if (!page) return Unexpected(std::move(page).error());
  return std::move(page->events);
}

void RocksDbEventStore::WaitForHeadAfter(uint64_t position,
                                         std::chrono::steady_clock::time_point deadline,
                                         const RocksDbSubscription& subscription) {
  std::unique_lock lock(tail_mutex_);
  head_advanced_.wait_until(lock, deadline, [&] {
    return head_position_.load(std::memory_order_relaxed) > position || subscription.closed();
  });
}

void RocksDbEventStore::WakeWaiters() {
  // Taking the lock orders this wake-up after any waiter's check of its predicate.
  { std::lock_guard lock(tail_mutex_); }
  head_advanced_.notify_all();
}

std::unique_ptr<Subscription> RocksDbEventStore::SubscribeToAll(uint64_t after_position) {
  return std::make_unique<RocksDbSubscription>(this, after_position);
}

uint64_t RocksDbEventStore::AddCommitListener(std::function<void(uint64_t)> listener) {
  std::lock_guard lock(listeners_mutex_);
  listeners_.emplace_back(next_listener_id_, std::move(listener));
  return next_listener_id_++;
}

StoreStats RocksDbEventStore::stats() const {
  return {.appends = appends_.load(std::memory_order_relaxed),
          .events_appended = events_appended_.load(std::memory_order_relaxed),
          .appends_replayed = appends_replayed_.load(std::memory_order_relaxed),
          .appends_rejected = appends_rejected_.load(std::memory_order_relaxed),
          .group_commits = group_commits_.load(std::memory_order_relaxed),
          .group_events = group_events_.Read(),
          .write_seconds = write_seconds_.Read()};
}

void RocksDbEventStore::RemoveCommitListener(uint64_t listener_id) {
  std::lock_guard lock(listeners_mutex_);
  std::erase_if(listeners_, [&](const auto& entry) { return entry.first == listener_id; });
}

StoreResult<std::vector<RecordedEvent>> RocksDbSubscription::Next(
    size_t max_count, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (max_count == 0) return std::vector<RecordedEvent>();
  max_count = std::min(max_count, EventStore::kReadCountMax);
  while (!closed()) {
    if (store_->HeadPosition() > last_position_) {
      auto events = store_->ReadCommitted(last_position_ + 1, max_count);
      if (!events) return Unexpected(std::move(events).error());
      if (!events->empty()) {
        LEDGER_ASSERT(events->front().position == last_position_ + 1,
                      "subscription would skip or repeat an event");
        last_position_ = events->back().position;
        return events;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    store_->WaitForHeadAfter(last_position_, deadline, *this);
  }
  return std::vector<RecordedEvent>();
}

void RocksDbSubscription::Close() {
  closed_.store(true, std::memory_order_release);
  store_->WakeWaiters();
}

}  // namespace

StoreResult<std::unique_ptr<EventStore>> OpenRocksDbEventStore(const std::string& path,
                                                               const RocksDbOptions& options) {
  return RocksDbEventStore::Open(path, options);
}

}  // namespace ledger::eventstore
