// Projection: a read model folded from the whole log, kept in the StateStore.
//
// A projection applies events in log order and writes rows; the runner (projection_runner.h)
// commits the rows together with the projection's checkpoint (the position of the last event
// applied) in one atomic batch, so a crash can neither skip an event nor apply one twice.
//
// Rows live in *generations*: a rebuild writes a new generation beside the active one and the
// runner switches to it atomically, so readers never see a half-built projection. Keys given to
// RowBatch and ProjectionView are relative to the generation; the prefix is added for them.
//
// Thread safety: a Projection is driven by one thread at a time (its runner's). RowBatch belongs
// to the thread building the batch. A ProjectionView may be read from any one thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "domain/events.h"
#include "eventstore/event_store.h"
#include "eventstore/state_store.h"

namespace ledger::projections {

using eventstore::Error;
using eventstore::RecordedEvent;
using eventstore::StoreResult;

// The rows of one generation, as the batch being built sees them (its own writes first).
class RowBatch {
 public:
  RowBatch(eventstore::StateBatch& batch, std::string prefix)
      : batch_(batch), prefix_(std::move(prefix)) {}

  StoreResult<std::optional<std::string>> Get(std::string_view key);
  void Put(std::string_view key, std::string_view value);
  void Delete(std::string_view key);

 private:
  const std::string& FullKey(std::string_view key);
  eventstore::StateBatch& batch_;
  std::string prefix_;
  std::string key_;  // Reused buffer for prefix + key.
};

// A consistent, read-only view of one generation at one checkpoint: every read through it sees
// the projection exactly as it was after applying the event at position().
class ProjectionView {
 public:
  ProjectionView(std::shared_ptr<eventstore::StateView> view, std::string prefix, uint64_t position)
      : view_(std::move(view)), prefix_(std::move(prefix)), position_(position) {}

  // The position of the last event the view reflects (0: none yet).
  uint64_t position() const { return position_; }

  StoreResult<std::optional<std::string>> Get(std::string_view key) const;
  // Rows with keys in [begin, end) (end empty: to the end of the generation), in key order or
  // reversed, until the visitor returns false. Keys passed to the visitor are relative.
  StoreResult<void> Scan(
      std::string_view begin, std::string_view end, bool reverse,
      const std::function<bool(std::string_view key, std::string_view value)>& visitor) const;

 private:
  std::shared_ptr<eventstore::StateView> view_;
  std::string prefix_;
  uint64_t position_;
};

class Projection {
 public:
  virtual ~Projection() = default;

  // Names the projection in keys, metrics and the API: lowercase words and underscores.
  virtual std::string_view name() const = 0;

  // Applies one event of the log (`event` is its decoded payload). It may read rows through
  // `rows` and keep what it changed in memory until Flush. An error stops the runner; the
  // batch is then discarded and Reset() called.
  virtual StoreResult<void> Apply(const RecordedEvent& record, const domain::Event& event,
                                  RowBatch& rows) = 0;

  // Writes what Apply kept in memory into `rows`. Called before every commit.
  virtual StoreResult<void> Flush(RowBatch& /*rows*/) { return {}; }

  // Forgets anything kept in memory (after a commit failed).
  virtual void Reset() {}

  // Optional: writing one batch's rows on another thread while the next batch is applied. A
  // projection that returns true lets the runner, instead of calling Flush, call for each batch:
  //   SealBatch()         on the applying thread: what Apply kept becomes the sealed batch;
  //   FlushSealed(rows)   on a writing thread, while Apply goes on with the next batch: writes
  //                       the sealed batch into `rows` (which it must not read back);
  //   ReleaseSealed()     on the applying thread, once that batch is committed: forgets it.
  // Between SealBatch and ReleaseSealed, Apply must take a row the sealed batch holds from it
  // (read-only: the writing thread reads it too), since the store may not have it yet.
  virtual bool CanFlushConcurrently() const { return false; }

  // Optional: whether a rebuild may split the log between several instances by stream, each
  // applying the events of its own streams, in order, on a thread of its own. A projection that
  // returns true promises that every row it writes belongs to one stream, that applying an
  // event reads only rows of the event's stream, and that it keeps nothing in memory after a
  // commit (Flush, or ReleaseSealed) that another instance would need.
  virtual bool PartitionedByStream() const { return false; }
  virtual void SealBatch() {}
  virtual StoreResult<void> FlushSealed(RowBatch& /*rows*/) { return {}; }
  virtual void ReleaseSealed() {}
};

using ProjectionFactory = std::function<std::unique_ptr<Projection>()>;

// The errors projections report: stored data that makes no sense (kCorruption, naming the log
// position when there is one), and a query that cannot be answered (kInvalidArgument).
Error CorruptionError(std::string message, uint64_t position = 0);
using eventstore::InvalidArgumentError;
// An event `projection` cannot apply, as kCorruption at the event's position.
Error CannotApplyError(std::string_view projection, const RecordedEvent& record,
                       std::string_view order_number, std::string_view problem);
// For projections with a row per order that are PartitionedByStream: an event outside its
// order's stream ("order-<order number>") would reach another partition's instance, so it is
// CannotApplyError.
StoreResult<void> CheckInOrderStream(std::string_view projection, const RecordedEvent& record,
                                     std::string_view order_number);

}  // namespace ledger::projections
