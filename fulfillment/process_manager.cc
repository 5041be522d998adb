#include "fulfillment/process_manager.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/bytes.h"
#include "domain/status.h"
#include "eventstore/event_codec.h"

namespace ledger::fulfillment {

namespace {

using eventstore::Error;
using eventstore::ErrorCode;
using eventstore::StoreResult;

constexpr char kCheckpointKey[] = "pm/checkpoint";
constexpr std::string_view kRetryPrefix = "pm/retry/";
constexpr std::string_view kDuePrefix = "pm/due/";
constexpr size_t kDispatchEventsMax = 1000;

std::string RetryKey(int64_t due_us, std::string_view order_number, std::string_view line_id) {
  return fmt::format("{}{:016x}/{}/{}", kRetryPrefix, static_cast<uint64_t>(due_us), order_number,
                     line_id);
}
std::string DueKey(std::string_view order_number, std::string_view line_id) {
  return fmt::format("{}{}/{}", kDuePrefix, order_number, line_id);
}
std::string LineName(std::string_view order_number, std::string_view line_id) {
  return fmt::format("{}/{}", order_number, line_id);
}

// A due entry's value: the due time (8 bytes, big-endian), then for a revocation retry this mark
// and the refund reference to ask again for; nothing more for a fulfillment retry.
constexpr char kRevocationMark = 'r';

std::string EncodeU64(uint64_t value) {
  std::string bytes;
  AppendBigEndian64(bytes, value);
  return bytes;
}

Error Damaged(std::string what) {
  return Error{.code = ErrorCode::kCorruption,
               .message = fmt::format("process manager state: {}", what),
               .current_version = std::nullopt,
               .position = 0};
}

bool NeedsAttempt(const domain::LineState& line) {
  return domain::IsFulfillable(line.status) && (line.attempts == 0 || line.retry_requested);
}

// A revocation was requested and its outcome is not recorded yet.
bool NeedsRevocation(const domain::LineState& line) {
  return line.revocation_requested && domain::IsRevocable(line.status);
}

}  // namespace

ProcessManager::ProcessManager(eventstore::EventStore& store, eventstore::StateStore& state,
                               const Router& router, ProcessManagerOptions options)
    : store_(store),
      state_(state),
      router_(router),
      options_(std::move(options)),
      // The manager decides against its own folds (folded_); the service keeps none.
      service_(store, 0),
      folded_(options_.cached_orders_max) {}

ProcessManager::~ProcessManager() { Stop(); }

int64_t ProcessManager::Now() const {
  if (options_.clock_us) return options_.clock_us();
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool ProcessManager::IsSettled(const domain::OrderState& state) {
  if (!state.placed()) return false;
  for (const domain::LineState& line : state.lines) {
    if (NeedsAttempt(line)) return false;
  }
  return true;
}

StoreResult<std::unique_ptr<ProcessManager>> ProcessManager::Open(eventstore::EventStore& store,
                                                                  eventstore::StateStore& state,
                                                                  const Router& router,
                                                                  ProcessManagerOptions options) {
  std::unique_ptr<ProcessManager> manager(
      new ProcessManager(store, state, router, std::move(options)));
  auto checkpoint = state.Get(kCheckpointKey);
  if (!checkpoint) return Unexpected(std::move(checkpoint).error());
  if (*checkpoint) {
    if ((*checkpoint)->size() != 8) return Unexpected(Damaged("the checkpoint is damaged"));
    manager->saved_checkpoint_ = ReadBigEndian64((*checkpoint)->data());
  }
  // The manager saves only positions it has read from the log; past the head, the log is not
  // the one it worked on, and resuming would leave the orders at the missing positions alone.
  if (const uint64_t head = store.HeadPosition(); manager->saved_checkpoint_ > head) {
    return Unexpected(Damaged(
        fmt::format("it has handled the log up to position {}, but the log "
                    "ends at position {}: the log is older than the state directory (restored "
                    "from an older backup, or its end lost by the disk) or another ledger's. "
                    "Restore the log that goes with this state. Moving the state directory "
                    "aside makes the manager read the log from the start (lines already "
                    "fulfilled are not fulfilled again), and accepts that events {}..{} are "
                    "gone: new events would take their positions",
                    manager->saved_checkpoint_, head, head + 1, manager->saved_checkpoint_)));
  }
  manager->dispatched_ = manager->saved_checkpoint_;
  if (auto loaded = manager->LoadSchedule(); !loaded) return Unexpected(loaded.error());
  manager->counters_.checkpoint = manager->saved_checkpoint_;
  return manager;
}

StoreResult<void> ProcessManager::LoadSchedule() {
  std::optional<Error> problem;
  auto scanned = state_.Scan(
      std::string(kRetryPrefix), "pm/retry0", false, [&](std::string_view key, std::string_view) {
        // pm/retry/<16 hex>/<order>/<line>; order numbers hold no '/', line ids may.
        const std::string_view rest = key.substr(kRetryPrefix.size());
        const size_t order_end = rest.find('/', 17);
        if (rest.size() < 18 || rest[16] != '/' || order_end == std::string_view::npos) {
          problem = Damaged(fmt::format("a retry key is damaged: {}", key));
          return false;
        }
        const auto due = FromHex(rest.substr(0, 16));
        if (!due) {
          problem = Damaged(fmt::format("a retry key is damaged: {}", key));
          return false;
        }
        schedule_.insert(Due{.due_us = static_cast<int64_t>(ReadBigEndian64(due->data())),
                             .order_number = std::string(rest.substr(17, order_end - 17)),
                             .line_id = std::string(rest.substr(order_end + 1))});
        return true;
      });
  if (!scanned) return Unexpected(std::move(scanned).error());
  if (problem) return Unexpected(std::move(*problem));
  return {};
}

void ProcessManager::Start() {
  if (dispatcher_.joinable()) return;
  stopping_.store(false);
  {
    std::lock_guard lock(mutex_);
    subscription_ = store_.SubscribeToAll(saved_checkpoint_);
    dispatched_ = saved_checkpoint_;
  }
  for (size_t i = 0; i < std::max<size_t>(options_.workers, 1); ++i) {
    workers_.emplace_back([this] { RunWorker(); });
  }
  dispatcher_ = std::thread([this] { RunDispatcher(); });
}

void ProcessManager::Stop() {
  stopping_.store(true);
  {
    std::lock_guard lock(mutex_);
    if (subscription_) subscription_->Close();
  }
  work_ready_.notify_all();
  order_done_.notify_all();
  // After stopping_ is set: a worker whose call this cuts short sees it, and records no failure.
  if (options_.interrupt_calls) options_.interrupt_calls();
  if (dispatcher_.joinable()) dispatcher_.join();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
  if (auto saved = SaveCheckpoint(); !saved) RecordFailure(saved.error());
  std::lock_guard lock(mutex_);
  subscription_.reset();
  // Work that was queued but not done is redone from the checkpoint on the next start. The
  // manager now stands at its saved checkpoint: a second Stop (the destructor's, after the
  // owner's) must not save the dispatcher's position, past that work.
  queue_.clear();
  queued_.clear();
  in_flight_.clear();
  dispatched_ = saved_checkpoint_;
}

void ProcessManager::RecordFailure(std::optional<Error> error) {
  std::lock_guard lock(mutex_);
  RecordFailureLocked(std::move(error));
}

void ProcessManager::RecordFailureLocked(std::optional<Error> error) {
  counters_.failure = std::move(error);
  failed_at_ = std::chrono::steady_clock::now();
}

uint64_t ProcessManager::CheckpointLocked() const {
  if (in_flight_.empty()) return dispatched_;
  return *in_flight_.begin() - 1;
}

StoreResult<void> ProcessManager::SaveCheckpoint() {
  uint64_t checkpoint;
  {
    std::lock_guard lock(mutex_);
    checkpoint = CheckpointLocked();
    if (checkpoint == saved_checkpoint_) return {};
  }
  eventstore::StateBatch batch = state_.NewBatch();
  batch.Put(kCheckpointKey, EncodeU64(checkpoint));
  if (auto written = state_.Write(batch); !written) return written;
  std::lock_guard lock(mutex_);
  saved_checkpoint_ = std::max(saved_checkpoint_, checkpoint);
  counters_.checkpoint = saved_checkpoint_;
  return {};
}

ProcessManagerStats ProcessManager::stats() const {
  std::lock_guard lock(mutex_);
  ProcessManagerStats stats = counters_;
  stats.orders_in_flight = queued_.size() + running_.size();
  stats.retries_pending = schedule_.size() - std::min(schedule_.size(), issued_.size());
  if (stats.failure) {
    stats.failure_age = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - failed_at_);
  }
  return stats;
}

void ProcessManager::Enqueue(const std::string& order_number, uint64_t position) {
  // Called with mutex_ held.
  in_flight_.insert(position);
  auto [entry, inserted] = queued_.try_emplace(order_number);
  entry->second.push_back(position);
  if (inserted) queue_.push_back(order_number);
  work_ready_.notify_one();
}

void ProcessManager::RunDispatcher() {
  while (!stopping_.load()) {
    IssueDueRetries();
    if (auto saved = SaveCheckpoint(); !saved) RecordFailure(saved.error());
    std::chrono::milliseconds wait = options_.idle_wait;
    {
      std::lock_guard lock(mutex_);
      if (!schedule_.empty()) {
        const int64_t until_due_us = schedule_.begin()->due_us - Now();
        wait = std::clamp(std::chrono::milliseconds(until_due_us / 1000),
                          std::chrono::milliseconds(1), options_.idle_wait);
      }
    }
    auto events = subscription_->Next(kDispatchEventsMax, wait);
    if (!events) {
      RecordFailure(events.error());
      std::this_thread::sleep_for(options_.idle_wait);
      continue;
    }
    if (events->empty()) continue;
    if (auto dispatched = Dispatch(*events); !dispatched) {
      // The schedule and the queue may lag the events: start again from the saved checkpoint.
      RecordFailure(dispatched.error());
      std::lock_guard lock(mutex_);
      subscription_ = store_.SubscribeToAll(saved_checkpoint_);
      dispatched_ = std::max(dispatched_, saved_checkpoint_);
      std::this_thread::sleep_for(options_.idle_wait);
    }
  }
}

StoreResult<void> ProcessManager::Dispatch(const std::vector<eventstore::RecordedEvent>& events) {
  eventstore::StateBatch batch = state_.NewBatch();
  // Changes to the in-memory schedule, in event order (true: add), applied once the batch is
  // written.
  std::vector<std::pair<bool, Due>> changes;
  // Unschedules the line's pending retry, if it has one.
  auto clear_due = [&](const std::string& order_number,
                       const std::string& line_id) -> StoreResult<void> {
    auto due = batch.Get(DueKey(order_number, line_id));
    if (!due) return Unexpected(std::move(due).error());
    if (!*due) return {};
    if ((*due)->size() < 8 || ((*due)->size() > 8 && (**due)[8] != kRevocationMark)) {
      return Unexpected(Damaged("a due entry is damaged"));
    }
    const auto due_us = static_cast<int64_t>(ReadBigEndian64((*due)->data()));
    batch.Delete(DueKey(order_number, line_id));
    batch.Delete(RetryKey(due_us, order_number, line_id));
    changes.emplace_back(false,
                         Due{.due_us = due_us, .order_number = order_number, .line_id = line_id});
    return {};
  };
  std::vector<std::pair<std::string, uint64_t>> work;
  std::vector<std::string> seen_lines;

  for (const eventstore::RecordedEvent& record : events) {
    auto event = eventstore::DecodeEvent(record);
    if (!event) return Unexpected(std::move(event).error());
    // Before the work is queued, so that a worker finds the order folded up to this event.
    folded_.Fold(record, *event);
    StoreResult<void> cleared;
    if (const auto* checkout = std::get_if<domain::PostCheckout>(&*event)) {
      work.emplace_back(checkout->order_number, record.position);
    } else if (const auto* revocation = std::get_if<domain::RevocationRequested>(&*event)) {
      work.emplace_back(revocation->order_number, record.position);
      if (cleared = clear_due(revocation->order_number, revocation->line_id); !cleared) {
        return cleared;
      }
      seen_lines.push_back(LineName(revocation->order_number, revocation->line_id));
    } else if (const auto* retry = std::get_if<domain::FulfillmentRetryRequested>(&*event)) {
      work.emplace_back(retry->order_number, record.position);
      for (const std::string& line_id : retry->line_ids) {
        if (cleared = clear_due(retry->order_number, line_id); !cleared) return cleared;
        seen_lines.push_back(LineName(retry->order_number, line_id));
      }
    } else if (const auto* failed = std::get_if<domain::FulfillmentFailed>(&*event)) {
      if (cleared = clear_due(failed->order_number, failed->line_id); !cleared) return cleared;
      if (failed->next_retry_at_us > 0) {
        batch.Put(DueKey(failed->order_number, failed->line_id),
                  EncodeU64(static_cast<uint64_t>(failed->next_retry_at_us)));
        batch.Put(RetryKey(failed->next_retry_at_us, failed->order_number, failed->line_id), "");
        changes.emplace_back(true, Due{.due_us = failed->next_retry_at_us,
                                       .order_number = failed->order_number,
                                       .line_id = failed->line_id});
      }
    } else if (const auto* failed_revocation = std::get_if<domain::RevocationFailed>(&*event)) {
      const domain::RevocationFailed& e = *failed_revocation;
      if (cleared = clear_due(e.order_number, e.line_id); !cleared) return cleared;
      if (e.next_retry_at_us > 0) {
        std::string due = EncodeU64(static_cast<uint64_t>(e.next_retry_at_us));
        due += kRevocationMark;
        due += e.refund_reference;
        batch.Put(DueKey(e.order_number, e.line_id), due);
        batch.Put(RetryKey(e.next_retry_at_us, e.order_number, e.line_id), "");
        changes.emplace_back(true, Due{.due_us = e.next_retry_at_us,
                                       .order_number = e.order_number,
                                       .line_id = e.line_id});
      }
    } else if (const auto* fulfilled = std::get_if<domain::LineFulfilled>(&*event)) {
      if (cleared = clear_due(fulfilled->order_number, fulfilled->line_id); !cleared) {
        return cleared;
      }
    } else if (const auto* revoked = std::get_if<domain::LineRevoked>(&*event)) {
      if (cleared = clear_due(revoked->order_number, revoked->line_id); !cleared) return cleared;
    }
  }
  std::lock_guard lock(mutex_);
  // The schedule keys are derived from the events, so writing them before the work is done is
  // safe: a replay from the checkpoint writes the same keys again.
  if (!batch.empty()) {
    if (auto written = state_.Write(batch); !written) return written;
  }
  for (auto& [add, due] : changes) {
    if (add) {
      schedule_.insert(std::move(due));
    } else {
      schedule_.erase(due);
    }
  }
  for (const std::string& line : seen_lines) issued_.erase(line);
  for (auto& [order_number, position] : work) Enqueue(order_number, position);
  dispatched_ = events.back().position;
  return {};
}

void ProcessManager::IssueDueRetries() {
  std::vector<Due> due_lines;
  {
    std::lock_guard lock(mutex_);
    const int64_t now = Now();
    for (const Due& due : schedule_) {
      if (due.due_us > now) break;
      if (!issued_.contains(LineName(due.order_number, due.line_id))) due_lines.push_back(due);
    }
  }
  // Fulfillment retries grouped by order: one FulfillmentRetryRequested per order. A revocation
  // retry is a RevocationRequested of its own.
  std::map<std::string, std::pair<int64_t, std::vector<std::string>>> due_by_order;
  for (const Due& due : due_lines) {
    // The due entry says which retry it is; only this thread changes it.
    auto entry = state_.Get(DueKey(due.order_number, due.line_id));
    if (!entry) {
      RecordFailure(entry.error());
      return;
    }
    if (*entry && (*entry)->size() > 8) {
      IssueRevocationRetry(due, std::string_view(**entry).substr(9));
      continue;
    }
    auto& [latest_due, lines] = due_by_order[due.order_number];
    latest_due = std::max(latest_due, due.due_us);
    lines.push_back(due.line_id);
  }
  for (auto& [order_number, due] : due_by_order) {
    auto& [due_us, lines] = due;
    const domain::RequestFulfillmentRetry request{
        .order_number = order_number,
        .requested_by = options_.actor,
        .reason = "automatic retry after a retryable failure",
        .line_ids = lines,
        .automatic = true,
        // The due time, not now: a repeat after a crash carries the same event id.
        .requested_at_us = due_us};
    auto result = service_.Handle(
        request, {.correlation_id = {}, .causation_id = {}, .actor = options_.actor});
    std::lock_guard lock(mutex_);
    if (result) {
      ++counters_.automatic_retries;
      for (const std::string& line_id : lines) issued_.insert(LineName(order_number, line_id));
    } else if (result.error().rejection) {
      // Nothing left to retry (the line completed or was revoked meanwhile).
      UnscheduleLocked(order_number, lines);
    } else {
      RecordFailureLocked(result.error().store_error);
    }
  }
}

void ProcessManager::IssueRevocationRetry(const Due& due, std::string_view refund_reference) {
  const domain::RequestRevocation request{.order_number = due.order_number,
                                          .line_id = due.line_id,
                                          .refund_reference = std::string(refund_reference),
                                          .requested_by = options_.actor,
                                          // As above: a repeat carries the same event id.
                                          .requested_at_us = due.due_us,
                                          .automatic = true};
  auto result =
      service_.Handle(request, {.correlation_id = {}, .causation_id = {}, .actor = options_.actor});
  std::lock_guard lock(mutex_);
  if (result && !result->events.empty()) {
    ++counters_.automatic_retries;
    issued_.insert(LineName(due.order_number, due.line_id));
  } else if (result || result.error().rejection) {
    // Nothing was asked: the line was revoked meanwhile, or its revocation is asked for already
    // (by ops, or by this retry before a restart); the request in the log does the work.
    UnscheduleLocked(due.order_number, {due.line_id});
  } else {
    RecordFailureLocked(result.error().store_error);
  }
}

void ProcessManager::UnscheduleLocked(const std::string& order_number,
                                      const std::vector<std::string>& lines) {
  eventstore::StateBatch batch = state_.NewBatch();
  for (auto it = schedule_.begin(); it != schedule_.end();) {
    if (it->order_number == order_number &&
        std::find(lines.begin(), lines.end(), it->line_id) != lines.end()) {
      batch.Delete(DueKey(it->order_number, it->line_id));
      batch.Delete(RetryKey(it->due_us, it->order_number, it->line_id));
      it = schedule_.erase(it);
    } else {
      ++it;
    }
  }
  if (auto written = state_.Write(batch); !written) RecordFailureLocked(written.error());
}

void ProcessManager::RunWorker() {
  for (;;) {
    // The orders of this run and the log positions of the events that asked for their work.
    std::vector<std::string> orders;
    std::vector<std::vector<uint64_t>> positions;
    {
      std::unique_lock lock(mutex_);
      ++idle_workers_;
      // One worker per order at a time: an order another worker is on waits in the queue.
      auto takeable = [&](const std::string& queued) { return !running_.contains(queued); };
      work_ready_.wait(lock, [&] {
        return stopping_.load() || std::any_of(queue_.begin(), queue_.end(), takeable);
      });
      --idle_workers_;
      if (stopping_.load()) return;
      // The takeable orders, shared with the workers still idle: one each while there are
      // workers enough, more per run (and per append) once the queue is longer than them.
      const auto takeable_count =
          static_cast<size_t>(std::count_if(queue_.begin(), queue_.end(), takeable));
      const size_t share = std::clamp<size_t>(takeable_count / (idle_workers_ + 1), 1,
                                              std::max<size_t>(options_.orders_per_run_max, 1));
      for (auto it = queue_.begin(); it != queue_.end() && orders.size() < share;) {
        if (!takeable(*it)) {
          ++it;
          continue;
        }
        auto entry = queued_.find(*it);
        positions.push_back(std::move(entry->second));
        queued_.erase(entry);
        running_.insert(*it);
        orders.push_back(std::move(*it));
        it = queue_.erase(it);
      }
    }
    const std::vector<bool> done = FulfillOrders(orders);
    size_t queued_again = 0;
    bool failed = false;
    {
      std::lock_guard lock(mutex_);
      for (size_t i = 0; i < orders.size(); ++i) {
        running_.erase(orders[i]);
        if (done[i]) {
          for (uint64_t position : positions[i]) in_flight_.erase(in_flight_.find(position));
        } else {
          // The store failed: try again (the positions stay in flight, so the checkpoint waits).
          failed = true;
          auto [entry, inserted] = queued_.try_emplace(orders[i]);
          entry->second.insert(entry->second.end(), positions[i].begin(), positions[i].end());
          if (inserted) queue_.push_back(orders[i]);
        }
        if (queued_.contains(orders[i])) ++queued_again;
      }
    }
    order_done_.notify_all();
    if (failed) {
      // The store failed: this worker takes the orders again after a pause, rather than waking
      // others to retry them at once.
      if (!stopping_.load()) std::this_thread::sleep_for(options_.idle_wait);
      continue;
    }
    // Only these orders became takeable. Waking every idle worker for them cost more CPU than
    // the rest of the manager (futex wake-ups of 16 threads per order).
    for (size_t i = 0; i < queued_again; ++i) work_ready_.notify_one();
  }
}

std::vector<bool> ProcessManager::FulfillOrders(const std::vector<std::string>& order_numbers) {
  const eventstore::EventMetadata metadata{
      .correlation_id = {}, .causation_id = {}, .actor = options_.actor};
  auto needs_attempt = [](const domain::OrderState& state) {
    std::vector<domain::Line> lines;
    if (!state.placed()) return lines;
    for (const domain::LineState& line : state.lines) {
      if (NeedsAttempt(line)) lines.push_back(line.line);
    }
    return lines;
  };
  auto needs_revocation = [](const domain::OrderState& state) {
    return std::any_of(state.lines.begin(), state.lines.end(), NeedsRevocation);
  };
  std::vector<bool> done(order_numbers.size(), true);
  // The orders with outcomes to record: their commands, and the state the lines were chosen from.
  std::vector<size_t> recording;  // Indexes into order_numbers.
  std::vector<std::vector<domain::Command>> commands;
  std::vector<eventstore::LoadedOrder> states;
  uint64_t from_cache_runs = 0, loaded_runs = 0, attempts = 0, fulfilled = 0;
  uint64_t revoked = 0, revocations_failed = 0;
  for (size_t i = 0; i < order_numbers.size(); ++i) {
    const std::string& order_number = order_numbers[i];
    if (stopping_.load()) {
      // Stop waits for the run: leave the rest of it to the next start (its positions stay in
      // flight, so the checkpoint stays before them).
      done[i] = false;
      continue;
    }
    // The dispatcher's fold when it has one. When that says there is nothing to do, the stream
    // has the last word (cheap insurance: the fold is at least as new as the event that queued
    // this order, so a read should agree).
    // Its events from now on are not folded (no entry, not the stream's first): the next run
    // for the order reads the stream, which then also holds this run's append.
    std::optional<eventstore::LoadedOrder> loaded =
        folded_.Take(domain::OrderStreamName(order_number));
    std::vector<domain::Line> lines;
    bool revoking = false;
    if (loaded) {
      lines = needs_attempt(loaded->state);
      revoking = needs_revocation(loaded->state);
    }
    // Reads the stream afresh; false on a store error (the order is then run again).
    auto reload = [&] {
      auto read = service_.Load(order_number);
      if (!read) {
        RecordFailure(read.error());
        return false;
      }
      loaded = std::move(read).value();
      lines = needs_attempt(loaded->state);
      revoking = needs_revocation(loaded->state);
      return true;
    };
    const bool from_cache = loaded && (!lines.empty() || revoking);
    if (!from_cache && !reload()) {
      done[i] = false;
      continue;
    }
    ++(from_cache ? from_cache_runs : loaded_runs);
    // Revocations first, each on its own (see CarryOutRevocations); the fulfillment part then
    // needs the stream as they left it.
    if (revoking && (!CarryOutRevocations(order_number, revoked, revocations_failed) ||
                     (!lines.empty() && !reload()))) {
      done[i] = false;
      continue;
    }
    if (lines.empty()) continue;
    const domain::OrderCreated order = *domain::PlacedOrder(loaded->state);
    const std::vector<LineOutcome> outcomes = router_.Fulfill(order, lines);
    // A failure that came back while the manager stops may be a call Stop cut short, which says
    // nothing about the partner: not recorded, and the order stays in flight, so that the next
    // start attempts the line again. What succeeded is recorded.
    const bool stopped = stopping_.load();

    std::vector<domain::Command> recorded;
    const int64_t now = Now();
    for (const LineOutcome& outcome : outcomes) {
      if (!outcome.succeeded() && stopped) {
        done[i] = false;
      } else if (outcome.succeeded()) {
        ++fulfilled;
        recorded.push_back(
            domain::RecordLineFulfilled{.order_number = order_number,
                                        .line_id = outcome.line_id,
                                        .module = outcome.module,
                                        .external_reference = outcome.result->external_reference,
                                        .codes = outcome.result->codes,
                                        .fulfilled_at_us = now});
      } else {
        recorded.push_back(domain::RecordFulfillmentFailed{
            .order_number = order_number,
            .line_id = outcome.line_id,
            // The domain wants a module; a line no module supports names the router.
            .module = outcome.module.empty() ? "router" : outcome.module,
            .kind = outcome.result.error().kind,
            .message = outcome.result.error().message,
            .retryable = outcome.result.error().retryable,
            .failed_at_us = now,
            .retry = options_.retry});
      }
    }
    attempts += outcomes.size();
    if (recorded.empty()) continue;
    commands.push_back(std::move(recorded));
    recording.push_back(i);
    states.push_back(std::move(*loaded));
  }
  {
    std::lock_guard lock(mutex_);
    counters_.orders_from_cache += from_cache_runs;
    counters_.orders_loaded += loaded_runs;
    counters_.attempts += attempts;
    counters_.lines_fulfilled += fulfilled;
    counters_.lines_failed += attempts - fulfilled;
    counters_.lines_revoked += revoked;
    counters_.revocations_failed += revocations_failed;
    if (!recording.empty()) ++counters_.recording_appends;
  }
  if (recording.empty()) return done;
  // Decided against the states the lines were chosen from; each append expects its version,
  // and all of them share one store call (one sync).
  std::vector<eventstore::OrderCommands> batch;
  batch.reserve(recording.size());
  for (size_t r = 0; r < recording.size(); ++r) {
    batch.push_back({.commands = commands[r], .known = std::move(states[r])});
  }
  std::vector<eventstore::CommandResult> results = service_.HandleMany(batch, metadata);
  for (size_t r = 0; r < recording.size(); ++r) {
    if (results[r]) continue;
    if (results[r].error().store_error) {
      RecordFailure(results[r].error().store_error);
      done[recording[r]] = false;
    } else if (!RecordOneByOne(commands[r])) {
      done[recording[r]] = false;
    }
  }
  return done;
}

bool ProcessManager::RecordOneByOne(const std::vector<domain::Command>& commands) {
  // Usually the order changed under us (e.g. revoked meanwhile) and the log has the last word:
  // the next event for the order brings it back if anything is left to do. But one outcome the
  // domain refuses for what it holds (a partner's answer beyond the limits) would have kept the
  // others out, and must not leave its line Open with no word: it becomes a failure that says
  // why, not retried (the partner would answer the same).
  const eventstore::EventMetadata metadata{
      .correlation_id = {}, .causation_id = {}, .actor = options_.actor};
  for (const domain::Command& command : commands) {
    auto recorded = service_.Handle(command, metadata);
    if (recorded) continue;
    if (recorded.error().store_error) {
      RecordFailure(recorded.error().store_error);
      return false;
    }
    const auto* fulfilled = std::get_if<domain::RecordLineFulfilled>(&command);
    const domain::RejectionCode code = recorded.error().rejection->code;
    if (fulfilled == nullptr || (code != domain::RejectionCode::kMissingField &&
                                 code != domain::RejectionCode::kInvalidText &&
                                 code != domain::RejectionCode::kLimitExceeded)) {
      continue;
    }
    auto failed = service_.Handle(
        domain::RecordFulfillmentFailed{
            .order_number = fulfilled->order_number,
            .line_id = fulfilled->line_id,
            .module = fulfilled->module,
            .kind = domain::FailureKind::kServer,
            .message = SanitizeMessage(
                fmt::format("{} fulfilled the line, but its answer cannot "
                            "be recorded: {}",
                            fulfilled->module, recorded.error().rejection->ToString()),
                kFailureMessageBytesMax),
            .retryable = false,
            .failed_at_us = fulfilled->fulfilled_at_us,
            .retry = options_.retry},
        metadata);
    if (!failed && failed.error().store_error) {
      RecordFailure(failed.error().store_error);
      return false;
    }
    if (!failed) {
      // Not even the failure can be recorded: said where ops look (stats, /healthz, metrics).
      RecordFailure(Error{.code = ErrorCode::kInvalidArgument,
                          .message = fmt::format("the outcome of line {} of order {} cannot be "
                                                 "recorded, nor its failure: {}",
                                                 fulfilled->line_id, fulfilled->order_number,
                                                 failed.error().ToString()),
                          .current_version = std::nullopt,
                          .position = 0});
    }
  }
  return true;
}

bool ProcessManager::CarryOutRevocations(const std::string& order_number, uint64_t& revoked,
                                         uint64_t& failed) {
  // A fresh read, never a fold that may be behind: a revoke is an effect on the partner, not
  // to be made again on a stale word (the Idempotency-Key makes a repeat harmless only while the
  // partner keeps it).
  auto read = service_.Load(order_number);
  if (!read) {
    RecordFailure(read.error());
    return false;
  }
  const std::optional<domain::OrderCreated> order = domain::PlacedOrder(read->state);
  if (!order) return true;
  const eventstore::EventMetadata metadata{
      .correlation_id = {}, .causation_id = {}, .actor = options_.actor};
  for (const domain::LineState& line : read->state.lines) {
    if (!NeedsRevocation(line)) continue;
    // After a crash between this call and its record, the next start makes it again, with the
    // same Idempotency-Key, and the partner answers it without a second effect.
    const RevokeOutcome outcome = router_.Revoke(*order, line);
    // Cut short by Stop, perhaps (see FulfillOrders): the next start makes the call again.
    if (!outcome.succeeded() && stopping_.load()) return false;
    const std::string module = !outcome.module.empty() ? outcome.module
                               : !line.module.empty()  ? line.module
                                                       : "router";
    const int64_t now = Now();
    domain::Command command;
    if (outcome.succeeded()) {
      command = domain::RecordLineRevoked{.order_number = order_number,
                                          .line_id = line.line.line_id,
                                          .module = module,
                                          .refund_reference = line.refund_reference,
                                          .revoked_at_us = now};
    } else {
      command = domain::RecordRevocationFailed{.order_number = order_number,
                                               .line_id = line.line.line_id,
                                               .module = module,
                                               .kind = outcome.result.error().kind,
                                               .message = outcome.result.error().message,
                                               .refund_reference = line.refund_reference,
                                               .failed_at_us = now,
                                               .retryable = outcome.result.error().retryable,
                                               .retry = options_.retry};
    }
    // Recorded on its own, decided against the stream as it is now: nothing else of the order
    // can have it refused with it.
    auto recorded = service_.Handle(command, metadata);
    if (!recorded) {
      if (recorded.error().store_error) {
        RecordFailure(recorded.error().store_error);
        return false;  // Run again: the request's position stays in flight.
      }
      continue;  // Refused: the line is no longer pending (the log says what became of it).
    }
    if (!recorded->idempotent_repeat) ++(outcome.succeeded() ? revoked : failed);
  }
  return true;
}

StoreResult<ProcessManager::Outcome> ProcessManager::WaitForOutcome(
    std::string_view order_number, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto loaded = service_.Load(order_number);
    if (!loaded) return Unexpected(std::move(loaded).error());
    const bool settled = IsSettled(loaded->state);
    // A stopping manager records nothing more: what the log says now is the answer.
    if (settled || stopping_.load() || std::chrono::steady_clock::now() >= deadline) {
      return Outcome{.order = std::move(*loaded), .settled = settled};
    }
    // Woken when any order's work ends; bounded so that work done by another process counts.
    std::unique_lock lock(mutex_);
    order_done_.wait_until(
        lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(20)));
  }
}

eventstore::CommandResult ProcessManager::RequestRetry(std::string_view order_number,
                                                       std::string_view requested_by,
                                                       std::string_view reason,
                                                       std::string_view actor) {
  return service_.Handle(domain::RequestFulfillmentRetry{.order_number = std::string(order_number),
                                                         .requested_by = std::string(requested_by),
                                                         .reason = std::string(reason),
                                                         .line_ids = {},
                                                         .automatic = false,
                                                         .requested_at_us = Now()},
                         {.correlation_id = {},
                          .causation_id = {},
                          .actor = std::string(actor.empty() ? requested_by : actor)});
}

eventstore::CommandResult ProcessManager::Revoke(
    std::string_view order_number, std::string_view line_id, std::string_view refund_reference,
    std::string_view requested_by, std::chrono::milliseconds timeout, std::string_view actor) {
  // The request first, durably: the call is made by a worker, so a revocation the ledger stops
  // in the middle of is finished after the next start instead of being forgotten.
  auto requested =
      service_.Handle(domain::RequestRevocation{.order_number = std::string(order_number),
                                                .line_id = std::string(line_id),
                                                .refund_reference = std::string(refund_reference),
                                                .requested_by = std::string(requested_by),
                                                .requested_at_us = Now()},
                      {.correlation_id = {},
                       .causation_id = {},
                       .actor = std::string(actor.empty() ? requested_by : actor)});
  if (!requested) return requested;
  const auto pending = [&](const domain::OrderState& state) {
    const domain::LineState* line = state.FindLine(line_id);
    return line != nullptr && NeedsRevocation(*line);
  };
  if (requested->idempotent_repeat && pending(requested->order.state)) {
    // Asked again while pending: the order is run again (its request may have been dropped
    // by a run whose record was refused), without tying the checkpoint to it.
    std::lock_guard lock(mutex_);
    auto [entry, inserted] = queued_.try_emplace(std::string(order_number));
    if (inserted) queue_.push_back(std::string(order_number));
    work_ready_.notify_one();
  }
  // Then its outcome, as the log says it, for as long as the caller waits.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  eventstore::LoadedOrder order = requested->order;
  while (pending(order.state) && !stopping_.load() && std::chrono::steady_clock::now() < deadline) {
    {
      // Woken when any order's work ends; bounded so that work done elsewhere counts too.
      std::unique_lock lock(mutex_);
      order_done_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                          std::chrono::milliseconds(20)));
    }
    auto loaded = service_.Load(order_number);
    if (!loaded) {
      RecordFailure(loaded.error());
      break;  // The request is recorded: answer with what is known of it.
    }
    order = std::move(*loaded);
  }
  requested->order = std::move(order);
  return requested;
}

}  // namespace ledger::fulfillment
