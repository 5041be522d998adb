// ProcessManager: fulfills orders by reacting to the log.
//
// It follows the log from its checkpoint. A PostCheckout or a FulfillmentRetryRequested puts the
// order on a work queue; a worker takes the order's state, hands the lines that need an attempt
// to their modules (router.h), and records each outcome (LineFulfilled or FulfillmentFailed, with
// the next automatic retry time) through the command service, all lines of one order in one
// append. When the queue is longer than the idle workers, a worker takes several orders per run
// and records all their appends in one store call (EventStore::AppendMany: one sync for all).
//
// The order's state: the dispatcher folds every event it reads into a bounded cache of orders
// whose streams it has seen from version 0, so a worker usually takes the fold instead of
// reading the stream again. The fold may be stale (another writer appended since); it only
// decides which lines to attempt, and the append that records the outcomes expects its stream
// version, so a stale fold costs a conflict, a fresh read and a second decision, never a wrong
// outcome (module calls carry idempotency keys, as for a crash). A worker reads the stream when
// the cache has no fold of the order, or when the fold says there is nothing to do.
//
// Never twice: a line is attempted only while it is fulfillable and either never attempted or
// asked to be retried, so a Complete line is never fulfilled again. Every external call carries
// an Idempotency-Key derived from (order, line, operation), so a crash between the call and the
// append that records it repeats the call on restart and the partner answers it without a
// second effect.
//
// Durable: the checkpoint never passes an event whose work is not done, and the schedule of
// automatic retries is derived from the log (FulfillmentFailed.next_retry_at_us and
// RevocationFailed.next_retry_at_us) into the state store with the checkpoint. After a restart,
// replaying from the checkpoint redoes what was in flight; nothing lives only in memory. A due
// retry is recorded as an automatic FulfillmentRetryRequested, or for a failed revocation as a
// RevocationRequested with the same refund reference (ids derived from the due time, so a
// repeat is idempotent), which the manager then reacts to like one from ops. Revocations back
// off by the same schedule as fulfillments.
//
// State keys: pm/checkpoint; pm/retry/<due 16 hex>/<order>/<line>; pm/due/<order>/<line> (the
// due time; for a revocation retry also 'r' and the refund reference).
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "domain/commands.h"
#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "eventstore/state_store.h"
#include "fulfillment/router.h"

namespace ledger::fulfillment {

struct ProcessManagerOptions {
  // Workers, each running one or more orders at a time: it holds them through their module calls
  // (one order after another) and one synced store call that records all their outcomes. Module
  // calls that wait on the network (the LMS) want workers enough for the orders in flight; an
  // idle worker costs a parked thread.
  size_t workers = 32;
  // The most orders one worker takes per run. A worker takes its share of the queue (the queue
  // over the idle workers), so orders are spread over the workers first and only a backlog
  // makes runs longer; a longer run means fewer store calls and syncs per order, but its last
  // order waits for the module calls of the ones before it (a synchronous placement among
  // them waits too, up to its timeout).
  size_t orders_per_run_max = 64;
  // Orders whose folded state the dispatcher keeps for the workers (see above); about 1-2 KB
  // each. An order leaves when a worker takes it, or once this many orders have started after it
  // (its worker then reads the stream). 0: workers always read the stream.
  size_t cached_orders_max = 4096;
  // How long the dispatcher waits for new events before looking at due retries again.
  std::chrono::milliseconds idle_wait{50};
  // Now, in microseconds since the Unix epoch; the system clock when empty.
  std::function<int64_t()> clock_us;
  // When automatic retries happen.
  domain::RetrySchedule retry{};
  // Recorded as the actor of the events the manager writes.
  std::string actor = "process-manager";
  // Called by Stop once the manager takes no more work, to cut short the module calls in flight
  // (ledgerd passes HttpClient::Shutdown) instead of waiting out a partner's timeout. A failure
  // a call reports after Stop began is not recorded: its line is attempted again at the next
  // start, with the same Idempotency-Key. A manager whose calls it cut for good (as Shutdown
  // does) is not started again.
  std::function<void()> interrupt_calls{};
};

struct ProcessManagerStats {
  uint64_t checkpoint = 0;
  uint64_t orders_in_flight = 0;
  uint64_t retries_pending = 0;  // Automatic retries scheduled and not yet due or issued.
  uint64_t attempts = 0;         // Lines handed to modules since start.
  uint64_t lines_fulfilled = 0;
  uint64_t lines_failed = 0;
  uint64_t lines_revoked = 0;  // LineRevoked recorded by the workers since start.
  uint64_t revocations_failed = 0;
  // FulfillmentRetryRequested and RevocationRequested written by the manager's backoff.
  uint64_t automatic_retries = 0;
  uint64_t orders_from_cache = 0;  // Orders a worker ran from the dispatcher's fold.
  uint64_t orders_loaded = 0;      // Orders a worker ran after reading and folding the stream.
  uint64_t recording_appends = 0;  // Store calls that recorded outcomes (one per worker run).
  std::optional<eventstore::Error> failure;  // The last error that stopped progress, if any.
  // How long ago it happened. Work that keeps failing records its error again at each try
  // (every idle_wait or sooner), so an old one means the manager has got past it.
  std::chrono::milliseconds failure_age{0};
};

class ProcessManager {
 public:
  // Opens the manager's checkpoint and retry schedule. Does not start its threads.
  static eventstore::StoreResult<std::unique_ptr<ProcessManager>> Open(
      eventstore::EventStore& store, eventstore::StateStore& state, const Router& router,
      ProcessManagerOptions options = {});
  ~ProcessManager();
  ProcessManager(const ProcessManager&) = delete;
  ProcessManager& operator=(const ProcessManager&) = delete;

  void Start();
  // Stops taking work, cuts short the module calls in flight (options.interrupt_calls), records
  // what the workers' calls achieved, and persists the checkpoint; the rest of a worker's run,
  // and every line whose call failed or was cut short, is redone on the next start. Callers
  // waiting for an outcome (WaitForOutcome, Revoke) get what the log says at once.
  void Stop();

  ProcessManagerStats stats() const;

  // Waits until no line of the order awaits an attempt (each has an outcome for its latest
  // request), or the timeout passes. The synchronous mode of placement. Returns the order as
  // the log then says; check `settled`.
  struct Outcome {
    eventstore::LoadedOrder order;
    bool settled = false;
  };
  eventstore::StoreResult<Outcome> WaitForOutcome(std::string_view order_number,
                                                  std::chrono::milliseconds timeout);

  // Ops' manual retry: asks to fulfill again every fulfillable line (failed or not yet done);
  // Complete, Revoked and Revocation Error lines are never touched. Rejected with
  // kNothingToFulfill when there is none, kOrderNotFound for an unknown order.
  // `actor` is recorded in the event's metadata (who called; requested_by when empty).
  eventstore::CommandResult RequestRetry(std::string_view order_number,
                                         std::string_view requested_by, std::string_view reason,
                                         std::string_view actor = {});

  // Ops' revocation of a fulfilled line (on refund): records RevocationRequested, which a
  // worker carries out (the module's revoke, then LineRevoked or RevocationFailed), and waits up
  // to `timeout` for that outcome. The answer's order is the log's after the wait: the line is
  // Revoked or Revocation Error, or still has its revocation pending (the manager is busy or not
  // running; it finishes the revocation when it runs, after a restart too). A Revoked line, or
  // one whose revocation is pending, is a repeat (nothing is asked twice); a line never fulfilled
  // is rejected before anything is recorded.
  eventstore::CommandResult Revoke(std::string_view order_number, std::string_view line_id,
                                   std::string_view refund_reference,
                                   std::string_view requested_by = "ops",
                                   std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                   std::string_view actor = {});

  // Whether the order has no line awaiting an attempt.
  static bool IsSettled(const domain::OrderState& state);

 private:
  struct Due {
    int64_t due_us;
    std::string order_number;
    std::string line_id;
    friend auto operator<=>(const Due&, const Due&) = default;
  };

  ProcessManager(eventstore::EventStore& store, eventstore::StateStore& state, const Router& router,
                 ProcessManagerOptions options);

  int64_t Now() const;
  eventstore::StoreResult<void> LoadSchedule();
  void RunDispatcher();
  void RunWorker();
  // Applies one batch of events: queues work, updates the retry schedule, saves the checkpoint.
  eventstore::StoreResult<void> Dispatch(const std::vector<eventstore::RecordedEvent>& events);
  // Records the automatic retries that are due: a FulfillmentRetryRequested per order for failed
  // fulfillments, a RevocationRequested per line for failed revocations.
  void IssueDueRetries();
  void IssueRevocationRetry(const Due& due, std::string_view refund_reference);
  // Drops the order's lines from the schedule, in memory and in the state store.
  void UnscheduleLocked(const std::string& order_number, const std::vector<std::string>& lines);
  void Enqueue(const std::string& order_number, uint64_t position);
  // Fulfills what each order needs now, recording all outcomes in one store call; for each
  // order, false when the store failed (its work is retried).
  std::vector<bool> FulfillOrders(const std::vector<std::string>& order_numbers);
  // Records an order's outcomes one command at a time, after the append of all of them was
  // refused; an outcome refused for what it holds is recorded as a failure instead. False when
  // the store failed.
  bool RecordOneByOne(const std::vector<domain::Command>& commands);
  // Calls the module's revoke for each line of the order whose revocation is pending, and
  // records each outcome in a store call of its own. False when the store failed.
  bool CarryOutRevocations(const std::string& order_number, uint64_t& revoked, uint64_t& failed);
  uint64_t CheckpointLocked() const;
  eventstore::StoreResult<void> SaveCheckpoint();
  void RecordFailure(std::optional<eventstore::Error> error);
  void RecordFailureLocked(std::optional<eventstore::Error> error);

  eventstore::EventStore& store_;
  eventstore::StateStore& state_;
  const Router& router_;
  const ProcessManagerOptions options_;
  eventstore::OrderCommandService service_;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable order_done_;
  // Orders waiting for a worker, and the log positions of the events that asked for their work.
  std::deque<std::string> queue_;
  std::map<std::string, std::vector<uint64_t>> queued_;
  std::set<std::string> running_;
  size_t idle_workers_ = 0;  // Workers waiting for work.
  // Positions of events whose work is not done yet; the checkpoint stays below the smallest.
  std::multiset<uint64_t> in_flight_;
  uint64_t dispatched_ = 0;  // The last position the dispatcher handled.
  uint64_t saved_checkpoint_ = 0;
  std::set<Due> schedule_;        // Automatic retries, soonest first.
  std::set<std::string> issued_;  // "order/line" whose due retry was written, not yet seen.
  ProcessManagerStats counters_;
  std::chrono::steady_clock::time_point failed_at_{};  // When counters_.failure was recorded.

  // Orders as the dispatcher folded them from the events it read; a worker takes its order out.
  eventstore::OrderStateCache folded_;

  std::atomic<bool> stopping_{false};
  std::unique_ptr<eventstore::Subscription> subscription_;
  std::thread dispatcher_;
  std::vector<std::thread> workers_;
};

}  // namespace ledger::fulfillment
