// OrderCommandService: carries a domain command to the log. It reads the order's stream, folds it
// (domain::TryEvolve), decides (domain::Decide), and appends the decided events with the stream's
// version as the expected version. When another writer got there first it reloads and decides
// again, a bounded number of times.
//
// Every event carries a deterministic id (domain::DeterministicEventId), so a writer that retries
// after a crash or a lost answer gets the original result back instead of a second copy.
//
// Thread safety: Handle and Load may be called from any thread at once; the store's expected
// version check is what keeps concurrent writers of one order consistent.
#pragma once

#include <optional>
#include <span>
#include <string>
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

class OrderCommandService {
 public:
  static constexpr int kAttemptsMax = 8;

  explicit OrderCommandService(EventStore& store) : store_(store) {}

  CommandResult Handle(const domain::Command& command, const EventMetadata& metadata);

  // Decides `commands`, all for one order, one after the other (each against the state the
  // previous ones leave) and appends all their events in one append: one sync for all. A
  // rejection of any command rejects them all and nothing is written.
  CommandResult HandleAll(std::span<const domain::Command> commands, const EventMetadata& metadata);

  // Folds the order's stream; with `position_max`, only its events at positions up to it (the
  // order as it was then).
  StoreResult<LoadedOrder> Load(std::string_view order_number, uint64_t position_max = UINT64_MAX);

 private:
  EventStore& store_;
};

}  // namespace ledger::eventstore
