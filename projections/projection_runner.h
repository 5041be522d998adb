// ProjectionRunner: keeps one projection up to date with the log, inside the ledger process.
//
// Live: a thread follows the log from the projection's checkpoint (a subscription: catch-up, then
// live) and commits each batch of events with the new checkpoint atomically. Readers take a
// consistent view of the active generation and can wait until it has reached a position (read
// your writes).
//
// Rebuild: a new generation is built beside the active one from position 1, while the active
// one keeps answering; once the new one has caught up, the live thread switches to it in one
// atomic write and drops the old one. An interrupted rebuild leaves only garbage that the next
// open deletes. A rebuild writes its generation without the WAL (StateStore::WriteUnlogged) and
// persists it before the switch.
//
// The walks of the log by CatchUp and rebuilds commit each batch on a second thread while the
// next one is applied, for projections that allow it (Projection::CanFlushConcurrently); still
// one batch at a time, in order, each rows and checkpoint together.
//
// State keys (in the StateStore), for projection P:
//   proj/P/active              the active generation, 8 bytes big-endian
//   proj/P/g/<gen>/checkpoint  the generation's checkpoint (last position applied), 8 bytes
//   proj/P/g/<gen>/r/<row>     the generation's rows
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "eventstore/event_store.h"
#include "eventstore/state_store.h"
#include "projections/projection.h"

namespace ledger::projections {

struct RunnerOptions {
  // Events applied per committed batch.
  size_t batch_events_max = 10'000;
  // How long the live thread waits for new events before looking at rebuild requests again.
  std::chrono::milliseconds idle_wait{100};
  // Whether the walks of the log by CatchUp and rebuilds check every record against its hash
  // (eventstore::ScanOptions). Turning it off saves a SHA-256 per event, for a rebuild of a log
  // that Verify has just walked; records that do not decode are reported either way. The live
  // subscription always checks.
  bool verify_hashes = true;
  // Whether those walks read and decode the log on a thread of their own while the calling
  // thread applies the events (a bounded hand-off of a few thousand events). Off by default:
  // on the shared 2-core machine it shortened the applying thread's work by about 15% but cost
  // about 35% more CPU in all, and no wall time (benchmarks/README.md, projection_bench).
  bool decode_thread = false;
  // How many walks of the log a rebuild runs in parallel for a projection that allows it
  // (Projection::PartitionedByStream): each walk reads the whole log but decodes, checks and
  // applies only the events of the streams that hash to it, on its own thread. A walk keeps two
  // threads busy (applying, and writing for projections that CanFlushConcurrently), so 0, the
  // default, means one walk per two cores (std::thread::hardware_concurrency() / 2, at least
  // one). Each extra walk reads the log once more: on the 2-core machine one walk is faster
  // (benchmarks/README.md). CatchUp and the live thread always walk once.
  size_t rebuild_partitions = 0;
};

// RunnerOptions::rebuild_partitions when it is 0: one per two cores, at least one.
size_t DefaultRebuildPartitions();

struct RebuildStatus {
  bool running = false;
  uint64_t generation = 0;  // The generation being built (0 when none has run).
  uint64_t events_done = 0;
  uint64_t events_total = 0;  // The head when the rebuild started.
  double events_per_second = 0;
  double seconds_left = 0;
  std::optional<Error> failure;
};

class ProjectionRunner {
 public:
  // Opens `projection`'s active generation (creating generation 1 on first use) and deletes
  // generations left by an interrupted rebuild. Does not start the live thread.
  static StoreResult<std::unique_ptr<ProjectionRunner>> Open(eventstore::EventStore& store,
                                                             eventstore::StateStore& state,
                                                             ProjectionFactory factory,
                                                             RunnerOptions options = {});
  ~ProjectionRunner();
  ProjectionRunner(const ProjectionRunner&) = delete;
  ProjectionRunner& operator=(const ProjectionRunner&) = delete;

  const std::string& name() const { return name_; }

  // Starts / stops the live thread. Stop waits for the batch in flight to commit.
  void Start();
  void Stop();

  // Applies every event up to the current head on the calling thread. For tools and tests that
  // run without the live thread; must not be called while it runs.
  StoreResult<uint64_t> CatchUp(const eventstore::ProgressCallback& progress = {});

  // The position of the last event the active generation reflects.
  uint64_t checkpoint() const { return checkpoint_.load(std::memory_order_acquire); }
  // Head position minus checkpoint.
  uint64_t lag() const;
  uint64_t generation() const;
  // The error that stopped the live thread, if one did.
  std::optional<Error> failure() const;

  // Waits until the checkpoint is at least `position`; false on timeout or failure.
  bool WaitFor(uint64_t position, std::chrono::milliseconds timeout);

  // A consistent view of the active generation.
  ProjectionView View();

  // Starts an online rebuild on its own thread. kInvalidArgument when one is already running.
  StoreResult<void> StartRebuild();
  RebuildStatus rebuild_status() const;
  // Rebuilds on the calling thread and switches at once: for tools, with the live thread
  // stopped. `progress` is called as events are applied.
  StoreResult<void> RebuildNow(const eventstore::ProgressCallback& progress = {});

 private:
  struct Generation {
    uint64_t number = 0;
    std::string rows_prefix;
    std::string checkpoint_key;
    std::unique_ptr<Projection> projection;
    uint64_t checkpoint = 0;
  };

  ProjectionRunner(eventstore::EventStore& store, eventstore::StateStore& state,
                   ProjectionFactory factory, RunnerOptions options, std::string name);

  StoreResult<Generation> OpenGeneration(uint64_t number);
  StoreResult<void> ApplyBatch(Generation& generation, std::span<const RecordedEvent> events);
  // How BuildUpTo commits its batches. kUnlogged (StateStore::WriteUnlogged) only for a
  // generation that is not active yet, and then Persist() before switching to it: a crash before
  // that loses some of its batches, but it was garbage to the next Open anyway.
  enum class BuildMode { kLogged, kUnlogged };

  // Builds `generation` from its checkpoint up to `to_position` with ScanAll: one walk of the
  // log, or, for a rebuild (kUnlogged) of a projection partitioned by stream, one walk per
  // partition in parallel (RunnerOptions::rebuild_partitions).
  StoreResult<void> BuildUpTo(Generation& generation, uint64_t to_position, BuildMode mode,
                              const eventstore::ProgressCallback& progress);
  // One walk for BuildUpTo: applies the events after `generation`'s checkpoint up to
  // `to_position` whose streams `stream_filter` accepts (every stream when empty) to
  // `projection`, committing them in batches into `generation`'s rows, each batch with the
  // checkpoint if `write_checkpoint`. Calls `committed(last position)` after each commit. Stops
  // early, with kClosed, when the runner stops or `*abort` turns true.
  StoreResult<void> Walk(const Generation& generation, Projection& projection, uint64_t to_position,
                         BuildMode mode, std::function<bool(std::string_view)> stream_filter,
                         bool write_checkpoint, const std::atomic<bool>* abort,
                         const std::function<void(uint64_t)>& committed);
  // Makes `rebuilt` the active generation (it must have reached the active checkpoint).
  StoreResult<void> SwitchTo(Generation rebuilt);
  void RunLive();
  void RunRebuild(uint64_t generation_number);
  void PublishCheckpoint(uint64_t position);

  eventstore::EventStore& store_;
  eventstore::StateStore& state_;
  ProjectionFactory factory_;
  const RunnerOptions options_;
  const std::string name_;

  // The active generation: touched by the live thread (or by CatchUp/RebuildNow callers when
  // it is stopped); its number and prefix are also read by View() under mutex_.
  Generation active_;
  std::atomic<uint64_t> checkpoint_{0};

  mutable std::mutex mutex_;
  std::condition_variable checkpoint_advanced_;
  std::optional<Error> failure_;
  RebuildStatus rebuild_;
  std::optional<Generation> rebuilt_;  // A finished rebuild waiting for the live thread.

  std::atomic<bool> stopping_{false};
  std::thread live_thread_;
  std::thread rebuild_thread_;
  std::unique_ptr<eventstore::Subscription> subscription_;
};

}  // namespace ledger::projections
