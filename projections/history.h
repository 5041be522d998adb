// Answers computed from the log itself rather than from a projection: an order as of a position
// or a time (time travel), and a check of the order status projection against a fresh fold.
//
// Thread safety: free functions, safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "eventstore/order_command_service.h"
#include "projections/projection.h"

namespace ledger::projections {

// The last position committed at or before `time_us` (recorded_at never decreases along the
// log, so this is one binary search); 0 when the log began later.
StoreResult<uint64_t> PositionAtTime(eventstore::EventStore& store, int64_t time_us);

// The order as the log said it at `position`: its stream folded up to that position.
StoreResult<eventstore::LoadedOrder> OrderAsOf(eventstore::EventStore& store,
                                               std::string_view order_number, uint64_t position);

struct CheckReport {
  uint64_t position = 0;        // The position checked at (the view's).
  uint64_t orders_checked = 0;  // Orders whose streams hold events up to `position`.
  // One line per difference: a row that disagrees with the fold, a row for an order the log
  // does not have, an order of the log with no row.
  std::vector<std::string> differences;
  bool ok() const { return differences.empty(); }
};

// Compares every row of the order status projection in `view` with a fresh fold of the log up
// to the view's position.
StoreResult<CheckReport> CheckOrderStatus(eventstore::EventStore& store,
                                          const ProjectionView& view);

}  // namespace ledger::projections
