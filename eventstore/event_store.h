// EventStore: the ledger's append-only log of events.
//
// Every event lives at a *position* in the global log (gapless, strictly increasing from 1) and
// at a *version* inside its stream (gapless from 0). Events are appended to one stream at a
// time, all of one call or none, and each is identified by a writer-chosen 128-bit event id that
// makes appends idempotent forever: the log never holds two events with one id.
//
// Every record carries the SHA-256 hash of its predecessor and its own hash, so the log is a
// hash chain that Verify() walks (eventstore/FORMAT.md gives the exact bytes hashed).
//
// Durability: Append returns only after the write-ahead log has been synced. Concurrent appends
// share one sync (group commit); AppendMany lets one caller hand over many at once.
//
// Thread safety: every method may be called from any thread at once. A Subscription is used by
// one thread at a time, except Close(), which may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/event_id.h"
#include "base/histogram.h"
#include "base/result.h"
#include "base/sha256.h"

namespace ledger::eventstore {

// Stable numeric codes: they appear in logs, metrics and API answers. Never renumber.
enum class ErrorCode : uint16_t {
  // The stream's version is not what the caller expected. Error::current_version says what it is.
  kWrongExpectedVersion = 1,
  // An event id the log holds was sent again with different content.
  kEventIdReused = 2,
  // Some, not all, of a call's event ids are already in the log (or they are in the log but not
  // as one run of that stream).
  kPartialDuplicate = 3,
  // The call is malformed: empty stream name, nil event id, a limit exceeded, ...
  kInvalidArgument = 4,
  // A stored record cannot be decoded, fails its hash, or is missing. Error::position names it.
  kCorruption = 5,
  // The storage engine failed (disk full, I/O error). After a failed write the store refuses
  // further appends until it is reopened: what reached the disk is decided by recovery.
  kIoError = 6,
  // The store or the subscription has been closed.
  kClosed = 7,
};

std::string_view ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInvalidArgument;
  std::string message;
  // kWrongExpectedVersion: the stream's current version, nullopt when the stream does not exist.
  std::optional<uint64_t> current_version;
  // kCorruption: the position of the first record found bad.
  uint64_t position = 0;

  std::string ToString() const;
};

// A kInvalidArgument error that says `message`.
Error InvalidArgumentError(std::string message);

template <typename T>
using StoreResult = Result<T, Error>;

// What the caller believes about the stream before its append.
class ExpectedVersion {
 public:
  enum class Kind : uint8_t { kAny, kNoStream, kStreamExists, kExact };

  static ExpectedVersion Any() { return ExpectedVersion(Kind::kAny, 0); }
  static ExpectedVersion NoStream() { return ExpectedVersion(Kind::kNoStream, 0); }
  static ExpectedVersion StreamExists() { return ExpectedVersion(Kind::kStreamExists, 0); }
  // The stream's last event has exactly this version.
  static ExpectedVersion Exactly(uint64_t version) {
    return ExpectedVersion(Kind::kExact, version);
  }

  Kind kind() const { return kind_; }
  uint64_t version() const { return version_; }
  // Whether a stream whose last version is `current` (nullopt: no stream) satisfies this.
  bool IsSatisfiedBy(std::optional<uint64_t> current) const;
  std::string ToString() const;

 private:
  ExpectedVersion(Kind kind, uint64_t version) : kind_(kind), version_(version) {}
  Kind kind_;
  uint64_t version_;
};

// An event as a writer hands it to Append.
struct NewEvent {
  EventId event_id;
  std::string event_type;
  // The encoded event (Cap'n Proto bytes for the ledger's own events); opaque to the store.
  std::string payload;
  EventId correlation_id;  // Nil when there is none.
  EventId causation_id;    // Nil when there is none.
  std::string actor;       // Who caused it: a user, a service, "process-manager".
  uint32_t schema_version = 1;
};

// An event as the log holds it.
struct RecordedEvent {
  uint64_t position = 0;
  std::string stream;
  uint64_t version = 0;
  EventId event_id;
  std::string event_type;
  // When the store committed it, in microseconds since the Unix epoch. Never decreases along
  // the log, so "as of a time" has one answer.
  int64_t recorded_at_us = 0;
  EventId correlation_id;
  EventId causation_id;
  std::string actor;
  uint32_t schema_version = 1;
  std::string payload;
  Hash256 previous_hash{};  // All zero for position 1.
  Hash256 hash{};

  // Whether the writer-chosen content (everything but where and when it was stored) equals.
  bool HasSameContent(std::string_view other_stream, const NewEvent& other) const;
};

// One stream's part of an AppendMany call.
struct AppendRequest {
  std::string_view stream;
  ExpectedVersion expected;
  std::span<const NewEvent> events;
};

struct AppendResult {
  uint64_t first_position = 0;
  uint64_t last_position = 0;
  // The stream's version after the append: the version of its last event.
  uint64_t stream_version = 0;
  // True when every event was already in the log: nothing was written, and the positions and
  // version are those of the original append.
  bool idempotent_replay = false;
};

enum class Direction : uint8_t { kForward, kBackward };

// Reading backward from kEndOfStream starts at the stream's last event.
inline constexpr uint64_t kEndOfStream = UINT64_MAX;

struct LogPage {
  std::vector<RecordedEvent> events;
  // Where the next page starts (one past the last event returned).
  uint64_t next_position = 1;
  // The head when the page was read.
  uint64_t head_position = 0;
};

struct VerifyReport {
  uint64_t from_position = 0;
  uint64_t to_position = 0;  // The last position checked.
  uint64_t events_checked = 0;
  bool ok = true;
  // When !ok: the first position that does not match, and what is wrong with it.
  uint64_t first_bad_position = 0;
  std::string problem;
  Hash256 last_hash{};  // The hash of the last record checked.
};

struct ScanOptions {
  // Check each record against its own hash (a flipped byte anywhere is kCorruption). Turning it
  // off saves a SHA-256 per event, for replays of a log that Verify has just walked; records
  // that do not decode are reported either way.
  bool verify_hashes = true;
  // Only the records of streams this accepts reach the visitor (empty: every record). It sees
  // each record's stream before the rest is decoded or hashed, so that passes which split the
  // log between them by stream (parallel projection rebuilds) each pay only for their own
  // records. Records it turns away are still checked to be at their position and to decode
  // that far, but not against their hash: the pass that accepts them checks that.
  std::function<bool(std::string_view stream)> stream_filter;
};

// What the store has done since it was opened, for metrics.
struct StoreStats {
  uint64_t appends = 0;  // Append calls that wrote events.
  uint64_t events_appended = 0;
  uint64_t appends_replayed = 0;    // Idempotent repeats answered without writing.
  uint64_t appends_rejected = 0;    // Refused when decided: wrong version, reused ids, ...
  uint64_t group_commits = 0;       // Synced writes, each carrying one or more appends.
  HistogramSnapshot group_events;   // Events per group commit.
  HistogramSnapshot write_seconds;  // Time of each group's write, the fsync included.
};

// Progress of a long walk of the log: (events done, events in all).
using ProgressCallback = std::function<void(uint64_t done, uint64_t total)>;

// A subscription delivers every event after a position, once and in order: first what the log
// already holds (catch-up), then events as they are committed (live), with no gap or duplicate
// at the switch. A subscriber that falls behind reads from the log; nothing is dropped and
// nothing is buffered for it without bound.
class Subscription {
 public:
  virtual ~Subscription() = default;

  // Waits up to `timeout` for events after the last one delivered and returns at most
  // `max_count` of them in position order. Empty when the timeout passed, after Close(), or
  // when max_count is 0. The events before a record that cannot be read are delivered first;
  // the next call then gives kCorruption naming it, and the subscription stays before it.
  virtual StoreResult<std::vector<RecordedEvent>> Next(size_t max_count,
                                                       std::chrono::milliseconds timeout) = 0;
  // The position of the last event delivered (the starting point before the first one).
  virtual uint64_t last_position() const = 0;
  // Ends the subscription and wakes a Next() that is waiting. Thread-safe; idempotent.
  virtual void Close() = 0;
};

class EventStore {
 public:
  // Limits on what one call may carry; larger requests are rejected as kInvalidArgument.
  static constexpr size_t kStreamNameBytesMax = 256;
  static constexpr size_t kEventTypeBytesMax = 128;
  static constexpr size_t kActorBytesMax = 256;
  static constexpr size_t kPayloadBytesMax = 1 << 20;
  static constexpr size_t kEventsPerAppendMax = 10'000;
  static constexpr size_t kReadCountMax = 100'000;

  virtual ~EventStore() = default;

  // Appends `events` to `stream` if its version satisfies `expected`: all of them or none, at
  // consecutive positions and versions. Returns once they are durable.
  //
  // Idempotent forever: if every event id is already in the log, with the same content, as one
  // run of this stream, nothing is written and the original result comes back (whatever
  // `expected` says). An id held with other content gives kEventIdReused; a call with only some
  // ids already held gives kPartialDuplicate. A wrong version gives kWrongExpectedVersion with
  // the stream's current version.
  virtual StoreResult<AppendResult> Append(std::string_view stream, ExpectedVersion expected,
                                           std::span<const NewEvent> events) = 0;

  // Several appends in one call, for a writer with many small ones (the process manager
  // recording the outcomes of many orders). Each request is decided on its own, exactly as
  // Append would decide it, in order: its own expected version, idempotency and result, all of
  // its events or none; one request's conflict or error does not stop the others, and a later
  // request sees what an earlier one wrote. What they share is the write: the requests that
  // write are in one synced batch, at consecutive positions in request order, so the call costs
  // one wait and one sync. Returns one result per request, in order. At most
  // kEventsPerAppendMax events in all (else every request is kInvalidArgument).
  virtual std::vector<StoreResult<AppendResult>> AppendMany(
      std::span<const AppendRequest> requests) = 0;

  // Up to `max_count` events of `stream`, starting at `from_version` (inclusive), forward or
  // backward. Empty when the stream does not exist or has nothing there.
  virtual StoreResult<std::vector<RecordedEvent>> ReadStream(std::string_view stream,
                                                             Direction direction,
                                                             uint64_t from_version,
                                                             size_t max_count) = 0;

  // Up to `max_count` events of the whole log from `from_position` (inclusive). When a record
  // cannot be read (it fails to decode or its hash), the page ends before it; a page that would
  // start with it is kCorruption naming its position.
  virtual StoreResult<LogPage> ReadAll(uint64_t from_position, size_t max_count) = 0;

  // Calls `visitor` for each event at positions [from_position, to_position] in order, without
  // building a page: the fast path for replays. The event passed is valid only during the call;
  // returning false stops the walk. Returns the number of events visited. A record that cannot
  // be read ends the walk with kCorruption after the events before it were visited.
  virtual StoreResult<uint64_t> ScanAll(uint64_t from_position, uint64_t to_position,
                                        const std::function<bool(const RecordedEvent&)>& visitor,
                                        const ScanOptions& options = {}) = 0;

  // The event with this id, nullopt when the log has none.
  virtual StoreResult<std::optional<RecordedEvent>> ReadEvent(const EventId& event_id) = 0;

  // The stream's last version, nullopt when the stream does not exist.
  virtual StoreResult<std::optional<uint64_t>> StreamVersion(std::string_view stream) = 0;

  // The position of the last committed event; 0 for an empty log.
  virtual uint64_t HeadPosition() const = 0;

  // Walks positions [from_position, to_position] (clamped to the head), checking that each
  // record decodes, sits at its own position, links to its predecessor's hash and matches its
  // own hash. The report names the first position that fails.
  virtual StoreResult<VerifyReport> Verify(uint64_t from_position, uint64_t to_position,
                                           const ProgressCallback& progress = {}) = 0;

  // A subscription to the whole log delivering events with positions > after_position
  // (0: from the beginning).
  virtual std::unique_ptr<Subscription> SubscribeToAll(uint64_t after_position) = 0;

  // Calls `listener` (on the committing thread: keep it short, never call back into the store)
  // with the new head position after each commit. Used by servers to wake their subscribers.
  // Returns an id for RemoveCommitListener.
  virtual uint64_t AddCommitListener(std::function<void(uint64_t head_position)> listener) = 0;
  virtual void RemoveCommitListener(uint64_t listener_id) = 0;

  virtual StoreStats stats() const = 0;
};

// Settings of the RocksDB store.
struct RocksDbOptions {
  bool create_if_missing = true;
  // Sync the write-ahead log before Append returns. Turning it off trades durability for speed
  // and exists only for measurements that want to see the cost of the sync.
  bool sync = true;
  // Bound on events written in one group commit.
  size_t group_commit_events_max = 50'000;
  // How long a new leader may wait for the group to gather before it writes: when the previous
  // group had several writers and fewer are queued now, it waits until as many are queued or
  // this time passes (the idea of PostgreSQL's commit_delay, sized by the load itself). Writers
  // woken by one commit thus share the next sync instead of splitting into two alternating
  // halves, each paying a sync of its own. A lone appender never waits; zero turns it off.
  std::chrono::microseconds group_commit_gather{200};
  // Committed events kept in memory for live subscribers; older ones are read from disk.
  size_t recent_events_kept = 1 << 16;
  // RocksDB's block cache.
  size_t block_cache_bytes = 256ull << 20;
  // The clock for recorded_at (microseconds since the Unix epoch); the system clock when empty.
  std::function<int64_t()> clock_us;
  // Called on the writing thread just before each group commit's write, for tests of what the
  // appends queued behind a write see (one held up; one that fails). Returning false fails the
  // write as an I/O error would. Empty in the ledger.
  std::function<bool()> before_write;
};

// Opens (or creates) the store in directory `path`. Fails with kIoError when the directory
// cannot be used (or is locked by another process), kCorruption when the tail of the log
// cannot be read.
StoreResult<std::unique_ptr<EventStore>> OpenRocksDbEventStore(const std::string& path,
                                                               const RocksDbOptions& options = {});

}  // namespace ledger::eventstore
