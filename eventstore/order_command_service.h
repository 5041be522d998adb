// OrderCommandService: carries a domain command to the log. It reads the order's stream, folds it
// (domain::TryEvolve), decides (domain::Decide), and appends the decided events with the stream's
// version as the expected version. When another writer got there first it reloads and decides
// again, a bounded number of times.
//
// Every event carries a deterministic id (domain::DeterministicEventId), so a writer that retries
// after a crash or a lost answer gets the original result back instead of a second copy.
//
// It keeps the state of the orders it last wrote (OrderStateCache, bounded), so that the next
// command for an order (a placement after its capture) decides without reading the stream; the
// append's expected version decides whether that state was still the stream's.
//
// Thread safety: Handle and Load may be called from any thread at once; the store's expected
// version check is what keeps concurrent writers of one order consistent.
#pragma once

#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "domain/commands.h"
#include "domain/decide.h"
#include "domain/order_state.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"

namespace ledger::eventstore {

// An order's state as its stream says, and where in the log that is.
struct LoadedOrder {
  domain::OrderState state;
  // The stream's last version; nullopt when the stream does not exist.
  std::optional<uint64_t> stream_version;
  // The position of the stream's last event folded; 0 when none.
  uint64_t position = 0;
};

struct CommandOutcome {
  std::string order_number;
  // The events this command appended, in order. Empty when the log already said what the
  // command asks (an idempotent repeat).
  std::vector<domain::Event> events;
  // Their positions; both 0 when nothing was appended.
  uint64_t first_position = 0;
  uint64_t last_position = 0;
  // The order after the command.
  LoadedOrder order;
  bool idempotent_repeat = false;
};

// Why a command did not go through: a business rejection, or the store failed.
struct CommandFailure {
  std::optional<domain::Rejection> rejection;
  // Set when the store failed (kIoError, kCorruption, ...) or when other writers kept winning
  // the race for the stream until the retries ran out (kWrongExpectedVersion).
  std::optional<Error> store_error;

  std::string ToString() const;
};

using CommandResult = Result<CommandOutcome, CommandFailure>;

// One order's part of a HandleMany call: its commands, and the order as the caller knows it (see
// HandleAll with `known`).
struct OrderCommands {
  std::span<const domain::Command> commands;
  LoadedOrder known;
};

// A bounded set of folded orders, by stream name, for writers that would otherwise read and fold
// again a stream they just wrote or just read. An entry may be stale (another writer appended
// since): use it only where the store's expected-version check has the last word, as HandleAll
// with a known order does. Bounded by the last orders_max entries put or started: an entry
// leaves when taken, or once orders_max entries were put or started after it.
//
// Thread safety: every method may be called from any thread.
class OrderStateCache {
 public:
  // 0: keeps nothing.
  explicit OrderStateCache(size_t orders_max) : orders_max_(orders_max) {}

  bool enabled() const { return orders_max_ > 0; }
  // Takes the order's entry out of the cache, if it has one.
  std::optional<LoadedOrder> Take(const std::string& stream);
  // Keeps `order` as the stream's entry, unless the entry there is of a later version.
  void Put(const std::string& stream, LoadedOrder order);
  // Folds a recorded event into its stream's entry when the entry holds the stream up to the
  // version before it (an event of a version it holds already is skipped); the stream's first
  // event starts an entry. A gap (an event it did not see) or an event that does not apply
  // drops the entry: a fold with a hole would be wrong, not stale.
  void Fold(const RecordedEvent& record, const domain::Event& event);
  size_t size() const;

 private:
  struct Entry {
    LoadedOrder order;
    // Which element of order_ is this entry's own (an element whose generation differs is a
    // leftover of an entry taken or replaced since).
    uint64_t generation = 0;
  };
  // Called with mutex_ held.
  std::unordered_map<std::string, Entry>::iterator InsertLocked(const std::string& stream,
                                                                LoadedOrder order);

  const size_t orders_max_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  // (stream, generation), oldest first; at most orders_max_ elements.
  std::deque<std::pair<std::string, uint64_t>> order_;
  uint64_t generation_ = 0;
};

class OrderCommandService {
 public:
  static constexpr int kAttemptsMax = 8;
  // Orders kept after the service's appends (each 1-2 KB): enough for a capture to be followed
  // by its placement under load.
  static constexpr size_t kCachedOrdersDefault = 1024;

  explicit OrderCommandService(EventStore& store, size_t cached_orders_max = kCachedOrdersDefault)
      : store_(store), cache_(cached_orders_max) {}

  CommandResult Handle(const domain::Command& command, const EventMetadata& metadata);

  // Decides `commands`, all for one order, one after the other (each against the state the
  // previous ones leave) and appends all their events in one append: one sync for all. A
  // rejection of any command rejects them all and nothing is written. The first attempt decides
  // against the cached state of the order when there is one (see HandleAll with `known`).
  CommandResult HandleAll(std::span<const domain::Command> commands, const EventMetadata& metadata);

  // HandleAll, deciding first against `known` instead of reading and folding the stream: the
  // order as Load returned it or as a previous CommandOutcome reported it, which must be the
  // exact fold of the stream's versions 0 to known.stream_version (asserted: its order number
  // and event count). `known` may be stale; it is trusted only for an append, whose expected
  // version (known.stream_version) the store checks, so when another writer got there first the
  // stream is loaded and the commands decided again. A rejection or an idempotent repeat decided
  // against `known` is decided again against a fresh load before it is answered: a stale `known`
  // costs a read, never a wrong answer.
  CommandResult HandleAll(std::span<const domain::Command> commands, const EventMetadata& metadata,
                          LoadedOrder known);

  // HandleAll with `known` for several orders at once, with one append for all of them
  // (EventStore::AppendMany; one per kEventsPerAppendMax events): a writer that records the
  // outcomes of many orders waits for one sync instead of one per order. Each order is decided,
  // answered and retried on its own, as HandleAll would: an order whose first decision needs a
  // fresh fold (a rejection, nothing to do) or whose append lost a race is handled again alone,
  // after the shared append. Returns one result per order, in order.
  std::vector<CommandResult> HandleMany(std::span<OrderCommands> orders,
                                        const EventMetadata& metadata);

  // Folds the order's stream; with `position_max`, only its events at positions up to it (the
  // order as it was then).
  StoreResult<LoadedOrder> Load(std::string_view order_number, uint64_t position_max = UINT64_MAX);

 private:
  // Both HandleAll: the first attempt decides against `known` when there is one.
  CommandResult HandleAllFrom(std::span<const domain::Command> commands,
                              const EventMetadata& metadata, std::optional<LoadedOrder> known);
  // The outcome of an append of `events` (decided against `loaded`, leaving `state`).
  CommandResult Recorded(const std::string& order_number, const std::string& stream,
                         domain::OrderState state, std::vector<domain::Event> events,
                         const AppendResult& appended);

  EventStore& store_;
  OrderStateCache cache_;
};

}  // namespace ledger::eventstore
