#include "projections/projection_runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <functional>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "eventstore/event_codec.h"

namespace ledger::projections {

namespace {

using eventstore::ErrorCode;
using Clock = std::chrono::steady_clock;

std::string ProjectionPrefix(std::string_view name) { return fmt::format("proj/{}/", name); }
std::string ActiveKey(std::string_view name) { return ProjectionPrefix(name) + "active"; }
std::string GenerationsBegin(std::string_view name) { return ProjectionPrefix(name) + "g/"; }
// One past every generation key: '0' follows '/'.
std::string GenerationsEnd(std::string_view name) { return ProjectionPrefix(name) + "g0"; }
std::string GenerationPrefix(std::string_view name, uint64_t generation) {
  return fmt::format("{}g/{:016x}/", ProjectionPrefix(name), generation);
}
// One past every key of a generation.
std::string GenerationEnd(std::string_view name, uint64_t generation) {
  return fmt::format("{}g/{:016x}0", ProjectionPrefix(name), generation);
}

// Generation numbers grow by one per rebuild; one this large is a damaged marker (and the
// next generation's number must not wrap).
constexpr uint64_t kGenerationsMax = uint64_t{1} << 48;

// Whether any key lies in [begin, end).
StoreResult<bool> HoldsKeys(eventstore::StateStore& state, std::string_view begin,
                            std::string_view end) {
  bool found = false;
  auto scanned = state.Scan(begin, end, false, [&](std::string_view, std::string_view) {
    found = true;
    return false;
  });
  if (!scanned) return Unexpected(std::move(scanned).error());
  return found;
}

std::string EncodePosition(uint64_t position) {
  std::string bytes;
  AppendBigEndian64(bytes, position);
  return bytes;
}

StoreResult<uint64_t> DecodePosition(const std::optional<std::string>& bytes,
                                     std::string_view what) {
  if (!bytes) return uint64_t{0};
  if (bytes->size() != 8) {
    return Unexpected(CorruptionError(fmt::format("{} is damaged", what)));
  }
  return ReadBigEndian64(bytes->data());
}

// Scans positions [from, to] of the log and hands each record with its decoded payload to
// `visit` until it returns false. A record that does not decode, a failed scan, or `stop()`
// turning true ends the walk with the reason in `failure` (left empty when `visit` stopped it).
template <typename Stop, typename Visit>
void ScanDecoded(eventstore::EventStore& store, uint64_t from_position, uint64_t to_position,
                 const eventstore::ScanOptions& options, const Stop& stop,
                 std::optional<Error>& failure, Visit&& visit) {
  auto scanned = store.ScanAll(
      from_position, to_position,
      [&](const RecordedEvent& record) {
        if (stop()) {
          failure = Error{.code = ErrorCode::kClosed,
                          .message = "the projection runner is stopping",
                          .current_version = std::nullopt,
                          .position = 0};
          return false;
        }
        auto event = eventstore::DecodeEvent(record);
        if (!event) {
          failure = std::move(event).error();
          return false;
        }
        return visit(record, std::move(*event));
      },
      options);
  if (!scanned && !failure) failure = std::move(scanned).error();
}

// One event as the scanning thread hands it to the applying thread: the record and its decoded
// payload.
struct DecodedEvent {
  RecordedEvent record;
  domain::Event event;
};

// Scans positions [from, to] of the log and decodes each payload on a thread of its own, handing
// the events over in order, in chunks, through a ring of kChunks: decoding then overlaps applying,
// and a rebuild takes the longer of the two instead of their sum. At most kChunks x
// kChunkEventsMax events are held at once, however long the log.
//
// Thread safety: Next() and Release() are called by one thread (the applying one).
class DecodePipeline {
 public:
  static constexpr size_t kChunks = 4;
  static constexpr size_t kChunkEventsMax = 1024;

  struct Chunk {
    // Slots reused from one pass of the ring to the next, so their strings keep their capacity.
    std::vector<DecodedEvent> events;
    size_t count = 0;
    // The last chunk says so, and why the walk ended early, if it did: a record that does not
    // decode (after the events before it), a failed scan, or the runner stopping.
    bool last = false;
    std::optional<Error> failure;
  };

  DecodePipeline(eventstore::EventStore& store, uint64_t from_position, uint64_t to_position,
                 eventstore::ScanOptions options, std::function<bool()> stop)
      : thread_(
            [this, &store, from_position, to_position, options = std::move(options),
             stop = std::move(stop)] { Run(store, from_position, to_position, options, stop); }) {}

  // Abandons the walk if it is still running (the applying thread failed) and joins the thread.
  ~DecodePipeline() {
    {
      std::lock_guard lock(mutex_);
      abandoned_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  DecodePipeline(const DecodePipeline&) = delete;
  DecodePipeline& operator=(const DecodePipeline&) = delete;

  // The next chunk in log order, once it is ready. Not to be called after the last chunk.
  Chunk& Next() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return produced_ > consumed_; });
    return chunks_[consumed_ % kChunks];
  }
  // Gives the chunk Next() returned back to the scanning thread.
  void Release() {
    {
      std::lock_guard lock(mutex_);
      ++consumed_;
    }
    changed_.notify_all();
  }

 private:
  // A free chunk to fill, or nullptr once the walk is abandoned.
  Chunk* Acquire() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return abandoned_ || produced_ - consumed_ < kChunks; });
    if (abandoned_) return nullptr;
    Chunk& chunk = chunks_[produced_ % kChunks];
    chunk.count = 0;
    chunk.last = false;
    chunk.failure.reset();
    return &chunk;
  }
  void Publish() {
    {
      std::lock_guard lock(mutex_);
      ++produced_;
    }
    changed_.notify_all();
  }

  void Run(eventstore::EventStore& store, uint64_t from_position, uint64_t to_position,
           const eventstore::ScanOptions& options, const std::function<bool()>& stop) {
    Chunk* chunk = Acquire();
    if (chunk == nullptr) return;
    std::optional<Error> failure;
    ScanDecoded(store, from_position, to_position, options, stop, failure,
                [&](const RecordedEvent& record, domain::Event&& event) {
                  if (chunk->count == chunk->events.size()) chunk->events.emplace_back();
                  DecodedEvent& slot = chunk->events[chunk->count];
                  slot.record = record;
                  slot.event = std::move(event);
                  if (++chunk->count < kChunkEventsMax) return true;
                  Publish();
                  chunk = Acquire();
                  return chunk != nullptr;
                });
    if (chunk == nullptr) return;  // Abandoned.
    chunk->last = true;
    chunk->failure = std::move(failure);
    Publish();
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::array<Chunk, kChunks> chunks_;
  uint64_t produced_ = 0;  // Chunks handed over.
  uint64_t consumed_ = 0;  // Chunks given back.
  bool abandoned_ = false;
  std::thread thread_;  // Last: it starts once everything above is built.
};

// Commits a projection's sealed batches (Projection::SealBatch) on a thread of its own, one at a
// time and in order, while the applying thread goes on with the next batch: a build then takes
// about the longer of applying and writing instead of their sum. Each commit is still one atomic
// write of rows and checkpoint.
//
// Thread safety: Start and Wait are called by one thread (the applying one).
class BatchWriter {
 public:
  // Writes the sealed batch that ends at the position given, with its checkpoint.
  using Commit = std::function<StoreResult<void>(uint64_t last_position)>;

  explicit BatchWriter(Commit commit) : commit_(std::move(commit)), thread_([this] { Run(); }) {}
  // Finishes the batch in flight, if any, and joins the thread.
  ~BatchWriter() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  // Starts committing the batch that ends at `last_position`. The previous one must have been
  // waited for.
  void Start(uint64_t last_position) {
    {
      std::lock_guard lock(mutex_);
      LEDGER_ASSERT(!in_flight_, "a batch is committed while another one is in flight");
      job_ = last_position;
      in_flight_ = true;
    }
    changed_.notify_all();
  }

  // Waits until the batch started last is committed (or failed): its result, or nullopt when no
  // batch was in flight.
  std::optional<StoreResult<void>> Wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !in_flight_; });
    return std::exchange(result_, std::nullopt);
  }

 private:
  void Run() {
    std::unique_lock lock(mutex_);
    while (true) {
      changed_.wait(lock, [&] { return stopping_ || job_.has_value(); });
      if (!job_) return;
      const uint64_t last_position = *job_;
      job_.reset();
      lock.unlock();
      StoreResult<void> committed = commit_(last_position);
      lock.lock();
      result_ = std::move(committed);
      in_flight_ = false;
      changed_.notify_all();
    }
  }

  Commit commit_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<uint64_t> job_;  // A batch to commit, not yet taken by the thread.
  bool in_flight_ = false;       // From Start until its result is set.
  std::optional<StoreResult<void>> result_;
  bool stopping_ = false;
  std::thread thread_;  // Last: it starts once everything above is built.
};

}  // namespace

StoreResult<std::optional<std::string>> RowBatch::Get(std::string_view key) {
  return batch_.Get(FullKey(key));
}
void RowBatch::Put(std::string_view key, std::string_view value) {
  batch_.Put(FullKey(key), value);
}
void RowBatch::Delete(std::string_view key) { batch_.Delete(FullKey(key)); }
const std::string& RowBatch::FullKey(std::string_view key) {
  key_.assign(prefix_);
  key_.append(key);
  return key_;
}

StoreResult<std::optional<std::string>> ProjectionView::Get(std::string_view key) const {
  return view_->Get(prefix_ + std::string(key));
}

StoreResult<void> ProjectionView::Scan(
    std::string_view begin, std::string_view end, bool reverse,
    const std::function<bool(std::string_view, std::string_view)>& visitor) const {
  const std::string full_begin = prefix_ + std::string(begin);
  // The generation's rows end where its prefix's last byte ('/') would be '0'.
  std::string full_end =
      end.empty() ? prefix_.substr(0, prefix_.size() - 1) + "0" : prefix_ + std::string(end);
  const size_t prefix_size = prefix_.size();
  return view_->Scan(full_begin, full_end, reverse,
                     [&](std::string_view key, std::string_view value) {
                       return visitor(key.substr(prefix_size), value);
                     });
}

ProjectionRunner::ProjectionRunner(eventstore::EventStore& store, eventstore::StateStore& state,
                                   ProjectionFactory factory, RunnerOptions options,
                                   std::string name)
    : store_(store),
      state_(state),
      factory_(std::move(factory)),
      options_(options),
      name_(std::move(name)) {}

StoreResult<std::unique_ptr<ProjectionRunner>> ProjectionRunner::Open(eventstore::EventStore& store,
                                                                      eventstore::StateStore& state,
                                                                      ProjectionFactory factory,
                                                                      RunnerOptions options) {
  const std::string name(factory()->name());
  std::unique_ptr<ProjectionRunner> runner(
      new ProjectionRunner(store, state, std::move(factory), options, name));

  auto active_bytes = state.Get(ActiveKey(name));
  if (!active_bytes) return Unexpected(std::move(active_bytes).error());
  auto active = DecodePosition(*active_bytes, "the active generation marker");
  if (!active) return Unexpected(std::move(active).error());
  uint64_t number = *active;
  // Before anything is deleted: the marker must name a generation that is there, or none may
  // be. A marker that lost its value or names another number would otherwise have the real
  // rows deleted below as garbage, and the projection silently rebuilt from nothing.
  auto any_generation = HoldsKeys(state, GenerationsBegin(name), GenerationsEnd(name));
  if (!any_generation) return Unexpected(std::move(any_generation).error());
  const auto marker_problem =
      [&](std::string what) -> StoreResult<std::unique_ptr<ProjectionRunner>> {
    return Unexpected(
        CorruptionError(fmt::format("projection {}: {}; its rows are left as they are. Move the "
                                    "state directory aside to rebuild it from the log",
                                    name, what)));
  };
  if (number >= kGenerationsMax) {
    return marker_problem(fmt::format("the active generation marker says {}", number));
  }
  if (number == 0) {
    if (*any_generation) return marker_problem("the active generation marker is missing");
    number = 1;
    // The new generation holds its checkpoint from the start, so that it is never mistaken
    // for an empty one (see above).
    eventstore::StateBatch batch = state.NewBatch();
    batch.Put(ActiveKey(name), EncodePosition(number));
    batch.Put(GenerationPrefix(name, number) + "checkpoint", EncodePosition(0));
    if (auto written = state.Write(batch, /*sync=*/true); !written) {
      return Unexpected(std::move(written).error());
    }
  } else if (*any_generation) {
    auto held = HoldsKeys(state, GenerationPrefix(name, number), GenerationEnd(name, number));
    if (!held) return Unexpected(std::move(held).error());
    if (!*held) {
      return marker_problem(fmt::format(
          "the active generation marker names generation {}, which holds nothing, while other "
          "generations hold rows",
          number));
    }
  }
  // Whatever an interrupted rebuild left beside the active generation is garbage.
  if (auto deleted = state.DeleteRange(GenerationsBegin(name), GenerationPrefix(name, number));
      !deleted) {
    return Unexpected(std::move(deleted).error());
  }
  if (auto deleted = state.DeleteRange(GenerationEnd(name, number), GenerationsEnd(name));
      !deleted) {
    return Unexpected(std::move(deleted).error());
  }
  auto generation = runner->OpenGeneration(number);
  if (!generation) return Unexpected(std::move(generation).error());
  // Events are applied only once they are durable in the log, so a checkpoint past the head
  // means the log is not the one this state was built from: resuming would skip the events
  // that take the missing positions next and serve rows of events that are not in it.
  if (const uint64_t head = store.HeadPosition(); generation->checkpoint > head) {
    return Unexpected(CorruptionError(
        fmt::format("projection {} has applied the log up to position {}, but the log ends at "
                    "position {}: the log is older than the state directory (restored from an "
                    "older backup, or its end lost by the disk) or another ledger's. Restore the "
                    "log that goes with this state. Moving the state directory aside rebuilds it "
                    "from this log, and accepts that events {}..{} are gone: new events would "
                    "take their positions",
                    name, generation->checkpoint, head, head + 1, generation->checkpoint)));
  }
  runner->active_ = std::move(*generation);
  runner->checkpoint_.store(runner->active_.checkpoint, std::memory_order_release);
  return runner;
}

ProjectionRunner::~ProjectionRunner() { Stop(); }

StoreResult<ProjectionRunner::Generation> ProjectionRunner::OpenGeneration(uint64_t number) {
  Generation generation;
  generation.number = number;
  generation.rows_prefix = GenerationPrefix(name_, number) + "r/";
  generation.checkpoint_key = GenerationPrefix(name_, number) + "checkpoint";
  generation.projection = factory_();
  auto checkpoint_bytes = state_.Get(generation.checkpoint_key);
  if (!checkpoint_bytes) return Unexpected(std::move(checkpoint_bytes).error());
  auto checkpoint = DecodePosition(*checkpoint_bytes, "the projection checkpoint");
  if (!checkpoint) return Unexpected(std::move(checkpoint).error());
  generation.checkpoint = *checkpoint;
  return generation;
}

StoreResult<void> ProjectionRunner::ApplyBatch(Generation& generation,
                                               std::span<const RecordedEvent> events) {
  if (events.empty()) return {};
  eventstore::StateBatch batch = state_.NewBatch();
  RowBatch rows(batch, generation.rows_prefix);
  auto fail = [&](Error error) -> StoreResult<void> {
    generation.projection->Reset();
    return Unexpected(std::move(error));
  };
  for (const RecordedEvent& record : events) {
    LEDGER_ASSERT(record.position == generation.checkpoint + 1 || &record != &events.front(),
                  "a projection batch must start right after the checkpoint");
    auto event = eventstore::DecodeEvent(record);
    if (!event) return fail(std::move(event).error());
    if (auto applied = generation.projection->Apply(record, *event, rows); !applied) {
      return fail(std::move(applied).error());
    }
  }
  if (auto flushed = generation.projection->Flush(rows); !flushed) {
    return fail(std::move(flushed).error());
  }
  batch.Put(generation.checkpoint_key, EncodePosition(events.back().position));
  if (auto written = state_.Write(batch); !written) return fail(std::move(written).error());
  generation.checkpoint = events.back().position;
  return {};
}

size_t DefaultRebuildPartitions() {
  return std::max<size_t>(1, std::thread::hardware_concurrency() / 2);
}

StoreResult<void> ProjectionRunner::BuildUpTo(Generation& generation, uint64_t to_position,
                                              BuildMode mode,
                                              const eventstore::ProgressCallback& progress) {
  if (generation.checkpoint >= to_position) return {};
  const uint64_t start = generation.checkpoint;
  const uint64_t total = to_position - start;
  size_t partitions = 1;
  if (mode == BuildMode::kUnlogged && generation.projection->PartitionedByStream()) {
    partitions =
        options_.rebuild_partitions != 0 ? options_.rebuild_partitions : DefaultRebuildPartitions();
  }
  if (partitions == 1) {
    return Walk(generation, *generation.projection, to_position, mode, {},
                /*write_checkpoint=*/true, nullptr, [&](uint64_t position) {
                  generation.checkpoint = position;
                  if (progress) progress(position - start, total);
                });
  }

  // One walk per partition, each on its own thread (the first on this one) and with its own
  // instance of the projection, applying the streams that hash to it. They write no checkpoint:
  // the generation is not consistent at any position until every walk is done, and it is not
  // active, so a crash before then leaves garbage. A failed walk stops the others.
  std::vector<std::unique_ptr<Projection>> instances;
  for (size_t i = 1; i < partitions; ++i) instances.push_back(factory_());
  std::atomic<bool> abort{false};
  std::mutex progress_mutex;
  std::vector<uint64_t> reached(partitions, start);  // Under progress_mutex.
  std::vector<StoreResult<void>> results(partitions);
  auto walk = [&](size_t index) {
    Projection& projection = index == 0 ? *generation.projection : *instances[index - 1];
    auto mine = [index, partitions](std::string_view stream) {
      return std::hash<std::string_view>{}(stream) % partitions == index;
    };
    results[index] =
        Walk(generation, projection, to_position, mode, mine, /*write_checkpoint=*/false, &abort,
             [&](uint64_t position) {
               std::lock_guard lock(progress_mutex);
               reached[index] = position;
               if (progress) {
                 progress(*std::min_element(reached.begin(), reached.end()) - start, total);
               }
             });
    if (!results[index]) abort.store(true);
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < partitions; ++i) threads.emplace_back(walk, i);
  walk(0);
  for (std::thread& thread : threads) thread.join();
  // The walk that failed first says why; the others only stopped because it did.
  const StoreResult<void>* failed = nullptr;
  for (const StoreResult<void>& result : results) {
    if (result) continue;
    if (failed == nullptr || (*failed).error().code == ErrorCode::kClosed) failed = &result;
  }
  if (failed != nullptr) return *failed;

  eventstore::StateBatch batch = state_.NewBatch();
  batch.Put(generation.checkpoint_key, EncodePosition(to_position));
  auto written = mode == BuildMode::kUnlogged ? state_.WriteUnlogged(batch) : state_.Write(batch);
  if (!written) return written;
  generation.checkpoint = to_position;
  if (progress) progress(total, total);
  return {};
}

StoreResult<void> ProjectionRunner::Walk(const Generation& generation, Projection& projection,
                                         uint64_t to_position, BuildMode mode,
                                         std::function<bool(std::string_view)> stream_filter,
                                         bool write_checkpoint, const std::atomic<bool>* abort,
                                         const std::function<void(uint64_t)>& committed) {
  eventstore::StateBatch batch = state_.NewBatch();
  RowBatch rows(batch, generation.rows_prefix);
  uint64_t in_batch = 0;
  uint64_t last_position = generation.checkpoint;
  std::optional<Error> failure;
  auto write = [&](eventstore::StateBatch& to_write) {
    return mode == BuildMode::kUnlogged ? state_.WriteUnlogged(to_write) : state_.Write(to_write);
  };
  auto stop = [this, abort] {
    return stopping_.load(std::memory_order_relaxed) ||
           (abort != nullptr && abort->load(std::memory_order_relaxed));
  };

  // With a projection that supports it, batches are written on a second thread (BatchWriter)
  // while the next one is applied.
  eventstore::StateBatch sealed_batch = state_.NewBatch();
  RowBatch sealed_rows(sealed_batch, generation.rows_prefix);
  std::optional<BatchWriter> writer;
  uint64_t in_flight_position = 0;  // The last position of the batch in flight.
  if (projection.CanFlushConcurrently()) {
    writer.emplace([&](uint64_t position) -> StoreResult<void> {
      if (auto flushed = projection.FlushSealed(sealed_rows); !flushed) return flushed;
      if (write_checkpoint) {
        sealed_batch.Put(generation.checkpoint_key, EncodePosition(position));
      }
      return write(sealed_batch);
    });
  }
  // Waits for the batch in flight; false when it failed (`failure` says why, unless it said
  // something already).
  auto finish_in_flight = [&]() -> bool {
    std::optional<StoreResult<void>> written = writer->Wait();
    if (!written) return true;
    projection.ReleaseSealed();
    if (!*written) {
      if (!failure) failure = std::move(*written).error();
      return false;
    }
    committed(in_flight_position);
    return true;
  };

  auto commit = [&]() -> bool {
    if (in_batch == 0) return true;
    if (writer) {
      if (!finish_in_flight()) return false;
      projection.SealBatch();
      in_flight_position = last_position;
      writer->Start(last_position);
      in_batch = 0;
      return true;
    }
    if (auto flushed = projection.Flush(rows); !flushed) {
      failure = std::move(flushed).error();
      return false;
    }
    if (write_checkpoint) batch.Put(generation.checkpoint_key, EncodePosition(last_position));
    if (auto written = write(batch); !written) {
      failure = std::move(written).error();
      return false;
    }
    in_batch = 0;
    committed(last_position);
    return true;
  };
  // Applies one decoded event; false when the build must stop (`failure` says why).
  auto apply = [&](const RecordedEvent& record, const domain::Event& event) -> bool {
    if (auto applied = projection.Apply(record, event, rows); !applied) {
      failure = std::move(applied).error();
      return false;
    }
    last_position = record.position;
    if (++in_batch >= options_.batch_events_max) return commit();
    return true;
  };
  const eventstore::ScanOptions scan_options{.verify_hashes = options_.verify_hashes,
                                             .stream_filter = std::move(stream_filter)};

  if (options_.decode_thread) {
    DecodePipeline pipeline(store_, generation.checkpoint + 1, to_position, scan_options, stop);
    for (bool last = false; !last && !failure;) {
      DecodePipeline::Chunk& chunk = pipeline.Next();
      for (size_t i = 0; i < chunk.count; ++i) {
        if (!apply(chunk.events[i].record, chunk.events[i].event)) break;
      }
      last = chunk.last;
      if (last && !failure) failure = std::move(chunk.failure);
      pipeline.Release();
    }
  } else {
    ScanDecoded(store_, generation.checkpoint + 1, to_position, scan_options, stop, failure,
                [&](const RecordedEvent& record, const domain::Event& event) {
                  return apply(record, event);
                });
  }
  if (!failure) commit();
  // The writing thread reads the sealed batch until it is done: wait for it before any Reset.
  if (writer) finish_in_flight();
  if (failure) {
    projection.Reset();
    return Unexpected(std::move(*failure));
  }
  return {};
}

StoreResult<uint64_t> ProjectionRunner::CatchUp(const eventstore::ProgressCallback& progress) {
  LEDGER_ASSERT(!live_thread_.joinable(), "CatchUp while the live thread runs");
  const uint64_t before = active_.checkpoint;
  if (auto built = BuildUpTo(active_, store_.HeadPosition(), BuildMode::kLogged, progress);
      !built) {
    PublishCheckpoint(active_.checkpoint);
    return Unexpected(std::move(built).error());
  }
  PublishCheckpoint(active_.checkpoint);
  return active_.checkpoint - before;
}

void ProjectionRunner::PublishCheckpoint(uint64_t position) {
  {
    std::lock_guard lock(mutex_);
    checkpoint_.store(position, std::memory_order_release);
  }
  checkpoint_advanced_.notify_all();
}

uint64_t ProjectionRunner::lag() const {
  const uint64_t head = store_.HeadPosition();
  const uint64_t done = checkpoint();
  return head > done ? head - done : 0;
}

uint64_t ProjectionRunner::generation() const {
  std::lock_guard lock(mutex_);
  return active_.number;
}

std::optional<Error> ProjectionRunner::failure() const {
  std::lock_guard lock(mutex_);
  return failure_;
}

bool ProjectionRunner::WaitFor(uint64_t position, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return checkpoint_advanced_.wait_for(
      lock, timeout, [&] { return checkpoint_.load(std::memory_order_acquire) >= position; });
}

ProjectionView ProjectionRunner::View() {
  // The snapshot is taken under the lock that the switch of generations also takes, and the old
  // generation is deleted only after the switch: a view sees one whole generation, never a mix.
  std::lock_guard lock(mutex_);
  std::shared_ptr<eventstore::StateView> snapshot = state_.Snapshot();
  uint64_t position = 0;
  if (auto bytes = snapshot->Get(active_.checkpoint_key); bytes) {
    if (auto decoded = DecodePosition(*bytes, "the projection checkpoint"); decoded) {
      position = *decoded;
    }
  }
  return ProjectionView(std::move(snapshot), active_.rows_prefix, position);
}

void ProjectionRunner::Start() {
  if (live_thread_.joinable()) return;
  stopping_.store(false);
  {
    std::lock_guard lock(mutex_);
    subscription_ = store_.SubscribeToAll(active_.checkpoint);
  }
  live_thread_ = std::thread([this] { RunLive(); });
}

void ProjectionRunner::Stop() {
  stopping_.store(true);
  {
    std::lock_guard lock(mutex_);
    if (subscription_) subscription_->Close();
  }
  if (rebuild_thread_.joinable()) rebuild_thread_.join();
  if (live_thread_.joinable()) live_thread_.join();
  std::lock_guard lock(mutex_);
  subscription_.reset();
  // Stopped, not closed: CatchUp, RebuildNow and Start work again.
  stopping_.store(false);
}

void ProjectionRunner::RunLive() {
  auto record_failure = [this](std::optional<Error> error) {
    std::lock_guard lock(mutex_);
    failure_ = std::move(error);
  };
  while (!stopping_.load()) {
    std::optional<Generation> rebuilt;
    {
      std::lock_guard lock(mutex_);
      if (rebuilt_) {
        rebuilt = std::move(rebuilt_);
        rebuilt_.reset();
      }
    }
    if (rebuilt) {
      if (auto switched = SwitchTo(std::move(*rebuilt)); !switched) {
        std::lock_guard lock(mutex_);
        rebuild_.running = false;
        rebuild_.failure = switched.error();
      }
    }
    eventstore::Subscription* subscription;
    {
      std::lock_guard lock(mutex_);
      subscription = subscription_.get();
    }
    auto events = subscription->Next(options_.batch_events_max, options_.idle_wait);
    if (!events) {
      // The subscription stays before the record it cannot read; try again later, loudly.
      record_failure(std::move(events).error());
      std::this_thread::sleep_for(options_.idle_wait);
      continue;
    }
    if (events->empty()) continue;
    if (auto applied = ApplyBatch(active_, *events); !applied) {
      record_failure(std::move(applied).error());
      // The subscription moved past events that were not committed: go back to the checkpoint.
      std::lock_guard lock(mutex_);
      subscription_ = store_.SubscribeToAll(active_.checkpoint);
      continue;
    }
    record_failure(std::nullopt);
    PublishCheckpoint(active_.checkpoint);
  }
}

StoreResult<void> ProjectionRunner::SwitchTo(Generation rebuilt) {
  // Bring the new generation to where the active one is (it stopped at the head it saw when
  // its rebuild began, or later).
  while (rebuilt.checkpoint < active_.checkpoint) {
    auto page = store_.ReadAll(
        rebuilt.checkpoint + 1,
        std::min<uint64_t>(options_.batch_events_max, active_.checkpoint - rebuilt.checkpoint));
    if (!page) return Unexpected(std::move(page).error());
    if (auto applied = ApplyBatch(rebuilt, page->events); !applied) return applied;
  }
  eventstore::StateBatch batch = state_.NewBatch();
  batch.Put(ActiveKey(name_), EncodePosition(rebuilt.number));
  // Its checkpoint again, with the marker: an active generation always holds a key, even one
  // rebuilt from an empty log (Open tells a marker that names nothing from one that is lost).
  batch.Put(rebuilt.checkpoint_key, EncodePosition(rebuilt.checkpoint));
  if (auto written = state_.Write(batch, /*sync=*/true); !written) return written;

  const uint64_t old_number = active_.number;
  const bool moved_forward = rebuilt.checkpoint > active_.checkpoint;
  {
    std::lock_guard lock(mutex_);
    active_ = std::move(rebuilt);
    rebuild_.running = false;
    if (moved_forward && live_thread_.joinable()) {
      subscription_ = store_.SubscribeToAll(active_.checkpoint);
    }
  }
  PublishCheckpoint(active_.checkpoint);
  // Views taken before the switch hold snapshots and still read the old rows.
  return state_.DeleteRange(GenerationPrefix(name_, old_number), GenerationEnd(name_, old_number));
}

StoreResult<void> ProjectionRunner::StartRebuild() {
  std::lock_guard lock(mutex_);
  if (!live_thread_.joinable()) {
    return Unexpected(
        InvalidArgumentError("an online rebuild needs the live runner; use RebuildNow"));
  }
  if (rebuild_.running || rebuilt_) {
    return Unexpected(
        InvalidArgumentError(fmt::format("a rebuild of {} is already running", name_)));
  }
  if (rebuild_thread_.joinable()) rebuild_thread_.join();
  rebuild_ = RebuildStatus{.running = true,
                           .generation = active_.number + 1,
                           .events_done = 0,
                           .events_total = store_.HeadPosition(),
                           .events_per_second = 0,
                           .seconds_left = 0,
                           .failure = std::nullopt};
  const uint64_t number = active_.number + 1;
  rebuild_thread_ = std::thread([this, number] { RunRebuild(number); });
  return {};
}

RebuildStatus ProjectionRunner::rebuild_status() const {
  std::lock_guard lock(mutex_);
  return rebuild_;
}

void ProjectionRunner::RunRebuild(uint64_t generation_number) {
  const auto started = Clock::now();
  auto fail = [this](Error error) {
    std::lock_guard lock(mutex_);
    rebuild_.running = false;
    rebuild_.failure = std::move(error);
  };
  if (auto cleared = state_.DeleteRange(GenerationPrefix(name_, generation_number),
                                        GenerationEnd(name_, generation_number));
      !cleared) {
    return fail(cleared.error());
  }
  auto generation = OpenGeneration(generation_number);
  if (!generation) return fail(generation.error());
  const uint64_t head = store_.HeadPosition();
  auto built =
      BuildUpTo(*generation, head, BuildMode::kUnlogged, [&](uint64_t done, uint64_t total) {
        const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
        std::lock_guard lock(mutex_);
        rebuild_.events_done = done;
        rebuild_.events_total = total;
        rebuild_.events_per_second = seconds > 0 ? static_cast<double>(done) / seconds : 0;
        rebuild_.seconds_left = rebuild_.events_per_second > 0
                                    ? static_cast<double>(total - done) / rebuild_.events_per_second
                                    : 0;
      });
  if (!built) return fail(built.error());
  // The rows were written without the WAL: durable before the live thread may switch to them.
  if (auto persisted = state_.Persist(); !persisted) return fail(persisted.error());
  std::lock_guard lock(mutex_);
  rebuild_.events_done = rebuild_.events_total = head;
  rebuild_.seconds_left = 0;
  rebuilt_ = std::move(*generation);  // The live thread switches to it.
}

StoreResult<void> ProjectionRunner::RebuildNow(const eventstore::ProgressCallback& progress) {
  LEDGER_ASSERT(!live_thread_.joinable(), "RebuildNow while the live thread runs");
  const uint64_t number = active_.number + 1;
  if (auto cleared =
          state_.DeleteRange(GenerationPrefix(name_, number), GenerationEnd(name_, number));
      !cleared) {
    return cleared;
  }
  auto generation = OpenGeneration(number);
  if (!generation) return Unexpected(std::move(generation).error());
  if (auto built = BuildUpTo(*generation, store_.HeadPosition(), BuildMode::kUnlogged, progress);
      !built) {
    return built;
  }
  // The rows were written without the WAL: durable before the switch makes them the answer.
  if (auto persisted = state_.Persist(); !persisted) return persisted;
  return SwitchTo(std::move(*generation));
}

}  // namespace ledger::projections
