#include "projections/history.h"

#include <fmt/format.h>

#include <map>

#include "projections/order_status_projection.h"

namespace ledger::projections {

namespace {

StoreResult<int64_t> RecordedAt(eventstore::EventStore& store, uint64_t position) {
  auto page = store.ReadAll(position, 1);
  if (!page) return Unexpected(std::move(page).error());
  if (page->events.empty()) {
    return Unexpected(Error{.code = eventstore::ErrorCode::kCorruption,
                            .message = fmt::format("position {} is missing", position),
                            .current_version = std::nullopt,
                            .position = position});
  }
  return page->events.front().recorded_at_us;
}

}  // namespace

StoreResult<uint64_t> PositionAtTime(eventstore::EventStore& store, int64_t time_us) {
  // Invariant: every position <= low was recorded at or before time_us; every position > high
  // was recorded after it.
  uint64_t low = 0;
  uint64_t high = store.HeadPosition();
  while (low < high) {
    const uint64_t middle = low + (high - low + 1) / 2;
    auto recorded_at = RecordedAt(store, middle);
    if (!recorded_at) return Unexpected(std::move(recorded_at).error());
    if (*recorded_at <= time_us) {
      low = middle;
    } else {
      high = middle - 1;
    }
  }
  return low;
}

StoreResult<eventstore::LoadedOrder> OrderAsOf(eventstore::EventStore& store,
                                               std::string_view order_number, uint64_t position) {
  eventstore::OrderCommandService service(store);
  return service.Load(order_number, position);
}

StoreResult<CheckReport> CheckOrderStatus(eventstore::EventStore& store,
                                          const ProjectionView& view) {
  CheckReport report;
  report.position = view.position();
  // The orders the log holds up to the position, from a scan of the log itself.
  std::map<std::string, uint64_t> orders_in_log;  // Order number -> events.
  auto scanned = store.ScanAll(1, report.position, [&](const RecordedEvent& record) {
    if (record.stream.starts_with(domain::kOrderStreamPrefix)) {
      ++orders_in_log[record.stream.substr(domain::kOrderStreamPrefix.size())];
    }
    return true;
  });
  if (!scanned) return Unexpected(std::move(scanned).error());

  std::map<std::string, bool> rows_seen;
  auto rows = view.Scan("o/", "o0", false, [&](std::string_view key, std::string_view) {
    rows_seen.emplace(std::string(key.substr(2)), true);
    return true;
  });
  if (!rows) return Unexpected(std::move(rows).error());
  for (const auto& [order_number, unused] : rows_seen) {
    if (!orders_in_log.contains(order_number)) {
      report.differences.push_back(fmt::format("order {} has a row but no events up to position {}",
                                               order_number, report.position));
    }
  }
  for (const auto& [order_number, events] : orders_in_log) {
    ++report.orders_checked;
    auto folded = OrderAsOf(store, order_number, report.position);
    if (!folded) return Unexpected(std::move(folded).error());
    auto row = OrderStatusProjection::Get(view, order_number);
    if (!row) {
      report.differences.push_back(
          fmt::format("order {}: its row cannot be read: {}", order_number, row.error().message));
      continue;
    }
    if (!*row) {
      report.differences.push_back(
          fmt::format("order {} ({} events) has no row", order_number, events));
      continue;
    }
    if ((*row)->position != folded->position) {
      report.differences.push_back(
          fmt::format("order {}: the row reflects position {}, the log "
                      "has its last event at {}",
                      order_number, (*row)->position, folded->position));
    }
    if (!((*row)->state == folded->state)) {
      report.differences.push_back(fmt::format(
          "order {}: the row's state differs from the fold (row status {}, fold status {}, row "
          "events {}, fold events {})",
          order_number, domain::OrderStatusName((*row)->state.status),
          domain::OrderStatusName(folded->state.status), (*row)->state.events_applied,
          folded->state.events_applied));
    }
  }
  return report;
}

}  // namespace ledger::projections
