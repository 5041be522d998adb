#include "eventstore/order_command_service.h"

#include <fmt/format.h>

namespace ledger::eventstore {

namespace {

constexpr size_t kReadPageEvents = 1000;

CommandFailure Rejected(domain::Rejection rejection) {
  return CommandFailure{.rejection = std::move(rejection), .store_error = std::nullopt};
}

CommandFailure StoreFailed(Error error) {
  return CommandFailure{.rejection = std::nullopt, .store_error = std::move(error)};
}

// Errors that mean another writer changed the stream between our read and our append: reload
// and decide again. Deterministic ids make a lost race show as an id conflict, not only as a
// version conflict (two writers recording "attempt 3" of one line with different messages).
bool IsRace(const Error& error) {
  return error.code == ErrorCode::kWrongExpectedVersion ||
         error.code == ErrorCode::kEventIdReused || error.code == ErrorCode::kPartialDuplicate;
}

// The events `commands` decide, each against the state the previous ones leave.
struct Decision {
  domain::OrderState state;  // After the events.
  std::vector<domain::Event> events;
  std::optional<domain::Rejection> rejection;
};

Decision DecideAll(std::span<const domain::Command> commands, domain::OrderState state) {
  Decision decision{.state = std::move(state), .events = {}, .rejection = std::nullopt};
  for (const domain::Command& command : commands) {
    auto decided = domain::Decide(decision.state, command);
    if (!decided) {
      decision.rejection = std::move(decided).error();
      return decision;
    }
    for (domain::Event& event : *decided) {
      decision.state = domain::Evolve(std::move(decision.state), event);
      decision.events.push_back(std::move(event));
    }
  }
  return decision;
}

// The order all of `commands` name (a rejection when one names none; asserted to be one order).
Result<std::string, CommandFailure> OrderOf(std::span<const domain::Command> commands) {
  auto order_number = domain::ResolveOrderNumber(commands.front());
  if (!order_number) return Unexpected(Rejected(std::move(order_number).error()));
  for (const domain::Command& command : commands.subspan(1)) {
    auto other = domain::ResolveOrderNumber(command);
    if (!other) return Unexpected(Rejected(std::move(other).error()));
    LEDGER_ASSERT(*other == *order_number, "HandleAll takes commands of one order");
  }
  return std::move(order_number).value();
}

ExpectedVersion ExpectedAfter(const LoadedOrder& loaded) {
  return loaded.stream_version ? ExpectedVersion::Exactly(*loaded.stream_version)
                               : ExpectedVersion::NoStream();
}

std::vector<NewEvent> ToNewEvents(const std::vector<domain::Event>& events,
                                  const EventMetadata& metadata) {
  std::vector<NewEvent> new_events;
  new_events.reserve(events.size());
  for (const domain::Event& event : events) new_events.push_back(ToNewEvent(event, metadata));
  return new_events;
}

// An event the log would refuse for its size is the command's problem (an order too large to
// record), not a failure of the store: refused as kLimitExceeded before anything is appended.
std::optional<domain::Rejection> OversizedEvent(std::span<const NewEvent> events) {
  for (const NewEvent& event : events) {
    if (event.payload.size() > EventStore::kPayloadBytesMax) {
      return domain::Rejection{
          domain::RejectionCode::kLimitExceeded,
          fmt::format("its {} event would be {} bytes once encoded; the log takes at most {}",
                      event.event_type, event.payload.size(), EventStore::kPayloadBytesMax)};
    }
  }
  return std::nullopt;
}

}  // namespace

std::string CommandFailure::ToString() const {
  if (rejection) return rejection->ToString();
  if (store_error) return store_error->ToString();
  return "unknown failure";
}

std::optional<LoadedOrder> OrderStateCache::Take(const std::string& stream) {
  if (!enabled()) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto entry = entries_.find(stream);
  if (entry == entries_.end()) return std::nullopt;
  LoadedOrder order = std::move(entry->second.order);
  entries_.erase(entry);
  return order;
}

void OrderStateCache::Put(const std::string& stream, LoadedOrder order) {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  auto entry = entries_.find(stream);
  if (entry != entries_.end() && entry->second.order.stream_version >= order.stream_version) {
    return;
  }
  InsertLocked(stream, std::move(order));
}

void OrderStateCache::Fold(const RecordedEvent& record, const domain::Event& event) {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  auto entry = entries_.find(record.stream);
  if (entry == entries_.end()) {
    // Only a stream's first event starts a fold: it must cover the whole stream.
    if (record.version != 0) return;
    entry = InsertLocked(record.stream, LoadedOrder{});
  }
  LoadedOrder& order = entry->second.order;
  const uint64_t next_version = order.stream_version ? *order.stream_version + 1 : 0;
  if (record.version < next_version) return;
  if (record.version > next_version) {
    entries_.erase(entry);
    return;
  }
  auto evolved = domain::TryEvolve(std::move(order.state), event);
  if (!evolved) {
    // Whoever reads the stream instead reports it as corruption.
    entries_.erase(entry);
    return;
  }
  order.state = std::move(evolved).value();
  order.stream_version = record.version;
  order.position = record.position;
}

size_t OrderStateCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::unordered_map<std::string, OrderStateCache::Entry>::iterator OrderStateCache::InsertLocked(
    const std::string& stream, LoadedOrder order) {
  const uint64_t generation = ++generation_;
  auto entry =
      entries_.insert_or_assign(stream, Entry{.order = std::move(order), .generation = generation})
          .first;
  order_.emplace_back(stream, generation);
  // Never the entry just inserted: it is last, and orders_max_ is at least 1.
  while (order_.size() > orders_max_) {
    const auto& [oldest, oldest_generation] = order_.front();
    auto found = entries_.find(oldest);
    if (found != entries_.end() && found->second.generation == oldest_generation) {
      entries_.erase(found);
    }
    order_.pop_front();
  }
  return entry;
}

StoreResult<LoadedOrder> OrderCommandService::Load(std::string_view order_number,
                                                   uint64_t position_max) {
  LoadedOrder loaded;
  const std::string stream = domain::OrderStreamName(order_number);
  uint64_t next_version = 0;
  for (;;) {
    auto page = store_.ReadStream(stream, Direction::kForward, next_version, kReadPageEvents);
    if (!page) return Unexpected(std::move(page).error());
    for (const RecordedEvent& record : *page) {
      if (record.position > position_max) return loaded;
      auto event = DecodeEvent(record);
      if (!event) return Unexpected(std::move(event).error());
      // A stored event that cannot apply (an old bug, a hand-edited log) is corruption to
      // report, not a reason to crash.
      auto evolved = domain::TryEvolve(std::move(loaded.state), *event);
      if (!evolved) {
        return Unexpected(
            Error{.code = ErrorCode::kCorruption,
                  .message = fmt::format("event at position {} of stream {}: {}", record.position,
                                         stream, evolved.error().problem),
                  .current_version = std::nullopt,
                  .position = record.position});
      }
      loaded.state = std::move(evolved).value();
      loaded.stream_version = record.version;
      loaded.position = record.position;
    }
    if (page->size() < kReadPageEvents) return loaded;
    next_version = page->back().version + 1;
  }
}

CommandResult OrderCommandService::Handle(const domain::Command& command,
                                          const EventMetadata& metadata) {
  return HandleAll(std::span(&command, 1), metadata);
}

CommandResult OrderCommandService::HandleAll(std::span<const domain::Command> commands,
                                             const EventMetadata& metadata) {
  return HandleAllFrom(commands, metadata, std::nullopt);
}

CommandResult OrderCommandService::HandleAll(std::span<const domain::Command> commands,
                                             const EventMetadata& metadata, LoadedOrder known) {
  return HandleAllFrom(commands, metadata, std::move(known));
}

CommandResult OrderCommandService::HandleAllFrom(std::span<const domain::Command> commands,
                                                 const EventMetadata& metadata,
                                                 std::optional<LoadedOrder> known) {
  LEDGER_ASSERT(!commands.empty(), "HandleAll needs at least one command");
  auto order_number = OrderOf(commands);
  if (!order_number) return Unexpected(std::move(order_number).error());
  if (known) {
    // A state of another order, or one that does not match its version, is a caller's bug that
    // the expected-version check could not catch.
    const uint64_t events = known->stream_version ? *known->stream_version + 1 : 0;
    LEDGER_ASSERT(known->state.events_applied == events,
                  "HandleAll's known order is not the fold of its stream version");
    LEDGER_ASSERT(events == 0 || known->state.order_number == *order_number,
                  "HandleAll's known order is another order");
  }
  const std::string stream = domain::OrderStreamName(*order_number);
  if (!known) known = cache_.Take(stream);

  std::optional<Error> last_race;
  for (int attempt = 0; attempt < kAttemptsMax; ++attempt) {
    // The caller's state on the first attempt, else a fresh fold of the stream.
    const bool fresh = !known;
    LoadedOrder loaded;
    if (known) {
      loaded = std::move(*known);
      known.reset();
    } else {
      auto read = Load(*order_number);
      if (!read) return Unexpected(StoreFailed(std::move(read).error()));
      loaded = std::move(read).value();
    }
    Decision decision = DecideAll(commands, loaded.state);
    // Nothing to append: only a fresh fold may answer that (a stale `known` would answer
    // wrongly, and no expected-version check would catch it).
    if ((decision.rejection || decision.events.empty()) && !fresh) continue;
    if (decision.rejection) return Unexpected(Rejected(std::move(*decision.rejection)));
    if (decision.events.empty()) {
      return CommandOutcome{.order_number = *order_number,
                            .events = {},
                            .first_position = 0,
                            .last_position = 0,
                            .order = std::move(loaded),
                            .idempotent_repeat = true};
    }
    const std::vector<NewEvent> new_events = ToNewEvents(decision.events, metadata);
    if (auto oversized = OversizedEvent(new_events)) {
      if (!fresh) continue;  // A refusal, which only a fresh fold may answer (above).
      return Unexpected(Rejected(std::move(*oversized)));
    }
    auto appended = store_.Append(stream, ExpectedAfter(loaded), new_events);
    if (!appended) {
      if (IsRace(appended.error())) {
        last_race = std::move(appended).error();
        continue;
      }
      return Unexpected(StoreFailed(std::move(appended).error()));
    }
    return Recorded(*order_number, stream, std::move(decision.state), std::move(decision.events),
                    *appended);
  }
  Error exhausted = last_race.value_or(Error{});
  exhausted.message = fmt::format("gave up after {} attempts: other writers kept changing {} ({})",
                                  kAttemptsMax, stream, exhausted.message);
  return Unexpected(StoreFailed(std::move(exhausted)));
}

CommandResult OrderCommandService::Recorded(const std::string& order_number,
                                            const std::string& stream, domain::OrderState state,
                                            std::vector<domain::Event> events,
                                            const AppendResult& appended) {
  CommandOutcome outcome{.order_number = order_number,
                         .events = {},
                         .first_position = appended.first_position,
                         .last_position = appended.last_position,
                         .order = {},
                         .idempotent_repeat = false};
  if (appended.idempotent_replay) {
    // Another writer appended exactly these events first: report the order as the log has it.
    auto reloaded = Load(order_number);
    if (!reloaded) return Unexpected(StoreFailed(std::move(reloaded).error()));
    outcome.order = std::move(*reloaded);
    outcome.idempotent_repeat = true;
    return outcome;
  }
  outcome.order.state = std::move(state);
  outcome.order.stream_version = appended.stream_version;
  outcome.order.position = appended.last_position;
  outcome.events = std::move(events);
  if (cache_.enabled()) cache_.Put(stream, outcome.order);
  return outcome;
}

std::vector<CommandResult> OrderCommandService::HandleMany(std::span<OrderCommands> orders,
                                                           const EventMetadata& metadata) {
  // Each order's first attempt, decided against what the caller knows.
  struct Pending {
    size_t index;  // In `orders`.
    std::string order_number;
    std::string stream;
    Decision decision;
    std::vector<NewEvent> events;
  };
  std::vector<std::optional<CommandResult>> results(orders.size());
  std::vector<Pending> pending;
  std::vector<size_t> alone;  // Orders to handle on their own, from a fresh fold.
  for (size_t i = 0; i < orders.size(); ++i) {
    OrderCommands& order = orders[i];
    LEDGER_ASSERT(!order.commands.empty(), "HandleMany needs at least one command per order");
    auto order_number = OrderOf(order.commands);
    if (!order_number) {
      results[i] = Unexpected(std::move(order_number).error());
      continue;
    }
    const uint64_t events = order.known.stream_version ? *order.known.stream_version + 1 : 0;
    LEDGER_ASSERT(order.known.state.events_applied == events,
                  "HandleMany's known order is not the fold of its stream version");
    LEDGER_ASSERT(events == 0 || order.known.state.order_number == *order_number,
                  "HandleMany's known order is another order");
    Decision decision = DecideAll(order.commands, order.known.state);
    if (decision.rejection || decision.events.empty()) {
      alone.push_back(i);  // Only a fresh fold may answer that (see HandleAllFrom).
      continue;
    }
    std::vector<NewEvent> new_events = ToNewEvents(decision.events, metadata);
    if (OversizedEvent(new_events)) {
      alone.push_back(i);  // A refusal: only a fresh fold may answer it (see HandleAllFrom).
      continue;
    }
    pending.push_back(Pending{.index = i,
                              .order_number = *order_number,
                              .stream = domain::OrderStreamName(*order_number),
                              .decision = std::move(decision),
                              .events = std::move(new_events)});
  }
  // One store call per run of orders that stays within the events one call may carry.
  std::vector<StoreResult<AppendResult>> appended;
  appended.reserve(pending.size());
  for (size_t first = 0; first < pending.size();) {
    std::vector<AppendRequest> requests;
    size_t events = 0;
    for (size_t p = first; p < pending.size(); ++p) {
      if (!requests.empty() &&
          events + pending[p].events.size() > EventStore::kEventsPerAppendMax) {
        break;
      }
      events += pending[p].events.size();
      requests.push_back(AppendRequest{.stream = pending[p].stream,
                                       .expected = ExpectedAfter(orders[pending[p].index].known),
                                       .events = pending[p].events});
    }
    for (auto& result : store_.AppendMany(requests)) appended.push_back(std::move(result));
    first += requests.size();
  }
  for (size_t p = 0; p < pending.size(); ++p) {
    Pending& entry = pending[p];
    if (appended[p]) {
      results[entry.index] =
          Recorded(entry.order_number, entry.stream, std::move(entry.decision.state),
                   std::move(entry.decision.events), *appended[p]);
    } else if (IsRace(appended[p].error())) {
      alone.push_back(entry.index);
    } else {
      results[entry.index] = Unexpected(StoreFailed(std::move(appended[p]).error()));
    }
  }
  for (size_t i : alone) {
    results[i] = HandleAllFrom(orders[i].commands, metadata, std::nullopt);
  }
  std::vector<CommandResult> answers;
  answers.reserve(orders.size());
  for (auto& result : results) answers.push_back(std::move(*result));
  return answers;
}

}  // namespace ledger::eventstore
