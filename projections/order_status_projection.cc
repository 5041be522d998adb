#include "projections/order_status_projection.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "base/assert.h"
#include "base/bytes.h"
#include "eventstore/event_codec.h"
#include "projections/row_codec.h"

namespace ledger::projections {

namespace {

using eventstore::ErrorCode;

constexpr size_t kRowHeaderBytes = 8 * 4;
// The first byte of a row says its format (OrderRow's comment in the header). A row written
// before the format byte existed starts with its position's most significant byte: 0.
constexpr char kRowFormatFlat = 0x00;
constexpr char kRowFormatPacked = 0x01;

std::string StatusPrefix(domain::OrderStatus status) {
  return fmt::format("s/{:02x}/", static_cast<unsigned>(status));
}
std::string StatusKey(domain::OrderStatus status, uint64_t since_position,
                      std::string_view order_number) {
  return fmt::format("{}{:016x}/{}", StatusPrefix(status), since_position, order_number);
}
std::string UserPrefix(int64_t user_id) {
  return fmt::format("u/{:016x}/", static_cast<uint64_t>(user_id));
}
std::string UserKey(int64_t user_id, uint64_t placed_position, std::string_view order_number) {
  return fmt::format("{}{:016x}/{}", UserPrefix(user_id), placed_position, order_number);
}
// Orders with a line whose revocation failed: ops' queue of refunds not carried out.
constexpr std::string_view kRevocationErrorPrefix = "r/";
std::string RevocationErrorKey(std::string_view order_number) {
  return fmt::format("{}{}", kRevocationErrorPrefix, order_number);
}
bool HasRevocationError(const domain::OrderState& state) {
  return std::any_of(state.lines.begin(), state.lines.end(), [](const domain::LineState& line) {
    return line.status == domain::LineStatus::kRevocationError;
  });
}
std::string AllKey(uint64_t placed_position, std::string_view order_number) {
  return fmt::format("t/{:016x}/{}", placed_position, order_number);
}

// Reads the order rows named by an index scan: the last path segment of each key.
// The index rows of keys in [begin, end), newest (last) first or oldest first, after the
// cursor: the last key of the previous page.
StoreResult<OrderPage> ListRange(const ProjectionView& view, std::string begin, std::string end,
                                 bool newest_first, size_t limit, std::string_view cursor) {
  limit = std::clamp<size_t>(limit, 1, OrderStatusProjection::kPageRowsMax);
  if (!cursor.empty()) {
    // A page's cursor is a key of its list's range. Any other (another list's, a mangled one)
    // is refused: taken as a bound it would end the list early or page through the wrong one.
    if (cursor <= begin || cursor >= end) {
      return Unexpected(
          InvalidArgumentError(fmt::format("cursor {:?} is not from this list", cursor)));
    }
    // Continue strictly after (or before) the cursor.
    if (newest_first) {
      end = std::string(cursor);
    } else {
      begin = std::string(cursor) + '\0';
    }
  }
  if (begin >= end) return OrderPage{};
  std::vector<std::string> keys;
  std::vector<std::string> order_numbers;
  // One key more than the page: a next page exists only when it does (a cursor that leads to an
  // empty page would make clients ask once more for nothing).
  auto scanned = view.Scan(begin, end, newest_first, [&](std::string_view key, std::string_view) {
    if (keys.size() == limit + 1) return false;
    keys.emplace_back(key);
    order_numbers.emplace_back(key.substr(key.rfind('/') + 1));
    return true;
  });
  if (!scanned) return Unexpected(std::move(scanned).error());
  const bool more = keys.size() > limit;
  if (more) {
    keys.pop_back();
    order_numbers.pop_back();
  }
  OrderPage page;
  for (const std::string& order_number : order_numbers) {
    auto row = OrderStatusProjection::Get(view, order_number);
    if (!row) return Unexpected(std::move(row).error());
    if (!*row)
      return Unexpected(
          CorruptionError(fmt::format("an index names order {}, which has no row", order_number)));
    page.rows.push_back(std::move(**row));
  }
  if (more) page.next_cursor = keys.back();
  return page;
}

StoreResult<OrderPage> ListIndex(const ProjectionView& view, const std::string& prefix,
                                 bool newest_first, size_t limit, std::string_view cursor) {
  // One past the prefix: its last character ('/') incremented.
  return ListRange(view, prefix, prefix.substr(0, prefix.size() - 1) + "0", newest_first, limit,
                   cursor);
}

// The keys under `prefix`, up to `max`.
StoreResult<uint64_t> CountIndex(const ProjectionView& view, const std::string& prefix,
                                 uint64_t max) {
  uint64_t count = 0;
  auto scanned = view.Scan(prefix, prefix.substr(0, prefix.size() - 1) + "0", /*reverse=*/false,
                           [&](std::string_view, std::string_view) { return ++count < max; });
  if (!scanned) return Unexpected(std::move(scanned).error());
  return std::min(count, max);
}

// The row stored under `order_number`'s key, which must be that order's: a row that decodes but
// holds another order (a write under the wrong key, bytes copied over) would otherwise be
// served, and folded further, as this one.
StoreResult<OrderRow> DecodeRowOf(std::string_view order_number, std::string_view bytes) {
  auto row = OrderStatusProjection::DecodeRow(bytes);
  if (!row) return row;
  if (!row->state.order_number.empty() && row->state.order_number != order_number) {
    return Unexpected(CorruptionError(
        fmt::format("the row of order {} holds order {}", order_number, row->state.order_number)));
  }
  return row;
}

}  // namespace

std::string OrderStatusProjection::EncodeRow(const OrderRow& row) {
  std::string bytes;
  bytes.reserve(512);
  bytes.push_back(kRowFormatPacked);
  AppendBigEndian64(bytes, row.position);
  AppendBigEndian64(bytes, row.stream_version);
  AppendBigEndian64(bytes, row.status_since_position);
  AppendBigEndian64(bytes, static_cast<uint64_t>(row.status_since_us));
  eventstore::AppendPackedOrderState(row.state, bytes);
  return bytes;
}

StoreResult<OrderRow> OrderStatusProjection::DecodeRow(std::string_view bytes) {
  if (bytes.empty()) return Unexpected(CorruptionError("an order row is empty"));
  const char format = bytes[0];
  if (format == kRowFormatPacked) {
    bytes.remove_prefix(1);
  } else if (format != kRowFormatFlat) {
    return Unexpected(CorruptionError(
        fmt::format("an order row has an unknown format {}", static_cast<unsigned char>(format))));
  }
  if (bytes.size() < kRowHeaderBytes)
    return Unexpected(CorruptionError("an order row is truncated"));
  OrderRow row;
  row.position = ReadBigEndian64(bytes.data());
  row.stream_version = ReadBigEndian64(bytes.data() + 8);
  row.status_since_position = ReadBigEndian64(bytes.data() + 16);
  row.status_since_us = static_cast<int64_t>(ReadBigEndian64(bytes.data() + 24));
  const std::string_view snapshot = bytes.substr(kRowHeaderBytes);
  auto state = format == kRowFormatPacked ? eventstore::DecodePackedOrderState(snapshot)
                                          : eventstore::DecodeOrderState(snapshot);
  if (!state) return Unexpected(std::move(state).error());
  row.state = std::move(*state);
  return row;
}

StoreResult<void> OrderStatusProjection::Apply(const RecordedEvent& record,
                                               const domain::Event& event, RowBatch& rows) {
  const std::string& order_number = domain::EventOrderNumber(event);
  if (auto in_stream = CheckInOrderStream(name(), record, order_number); !in_stream) {
    return in_stream;
  }
  auto cached = cache_.find(order_number);
  if (cached == cache_.end()) {
    CachedOrder order;
    if (auto sealed = sealed_.find(order_number); sealed != sealed_.end()) {
      // Written by the batch in flight: stored as the sealed row says once that batch commits.
      order.row = sealed->second.row;
      order.stored_placed = order.row.state.placed();
      order.stored_status = order.row.state.status;
      order.stored_status_since_position = order.row.status_since_position;
      order.stored_revocation_error = HasRevocationError(order.row.state);
      cached = cache_.emplace(order_number, std::move(order)).first;
    }
  }
  if (cached == cache_.end() && record.version == 0) {
    // The first event of its stream: no row can exist for the order yet.
    cached = cache_.emplace(order_number, CachedOrder{}).first;
  }
  if (cached == cache_.end()) {
    CachedOrder order;
    auto stored = rows.Get(OrderRowKey(order_number));
    if (!stored) return Unexpected(std::move(stored).error());
    if (*stored) {
      auto decoded = DecodeRowOf(order_number, **stored);
      if (!decoded) return Unexpected(std::move(decoded).error());
      order.row = std::move(*decoded);
      order.stored_placed = order.row.state.placed();
      order.stored_status = order.row.state.status;
      order.stored_status_since_position = order.row.status_since_position;
      order.stored_revocation_error = HasRevocationError(order.row.state);
    }
    cached = cache_.emplace(order_number, std::move(order)).first;
  }
  CachedOrder& order = cached->second;
  OrderRow& row = order.row;
  const bool was_placed = row.state.placed();
  const domain::OrderStatus old_status = row.state.status;

  auto next = domain::TryEvolve(std::move(row.state), event);
  if (!next) {
    cache_.erase(cached);  // The row was moved from; the batch is abandoned anyway.
    return Unexpected(CorruptionError(
        fmt::format("event at position {} cannot apply: {}", record.position, next.error().problem),
        record.position));
  }
  row.state = std::move(*next);
  row.position = record.position;
  row.stream_version = record.version;

  if (!row.state.placed()) return {};
  if (!was_placed || row.state.status != old_status) {
    if (!was_placed) order.placed_position = record.position;
    row.status_since_position = record.position;
    row.status_since_us = record.recorded_at_us;
  }
  return {};
}

StoreResult<void> OrderStatusProjection::Flush(RowBatch& rows) {
  WriteOrders(cache_, rows);
  cache_.clear();
  return {};
}

void OrderStatusProjection::SealBatch() {
  LEDGER_ASSERT(sealed_.empty(), "a batch is sealed while another one is in flight");
  // Swapped, not moved: the emptied map keeps its buckets for the next batch.
  sealed_.swap(cache_);
}

StoreResult<void> OrderStatusProjection::FlushSealed(RowBatch& rows) {
  WriteOrders(sealed_, rows);
  return {};
}

void OrderStatusProjection::WriteOrders(const Orders& cache, RowBatch& rows) {
  std::vector<const std::pair<const std::string, CachedOrder>*> orders;
  orders.reserve(cache.size());
  for (const auto& entry : cache) orders.push_back(&entry);
  std::sort(orders.begin(), orders.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });

  // Index entries to write: (key, put or delete). Keys never repeat within a batch.
  std::vector<std::pair<std::string, bool>> index;
  for (const auto* entry : orders) {
    const std::string& order_number = entry->first;
    const CachedOrder& order = entry->second;
    const OrderRow& row = order.row;
    rows.Put(OrderRowKey(order_number), EncodeRow(row));
    if (!row.state.placed()) continue;
    if (!order.stored_placed) {
      const int64_t user_id = row.state.placement->user.id;
      index.emplace_back(UserKey(user_id, order.placed_position, order_number), true);
      index.emplace_back(AllKey(order.placed_position, order_number), true);
      index.emplace_back(StatusKey(row.state.status, row.status_since_position, order_number),
                         true);
    } else if (row.status_since_position != order.stored_status_since_position) {
      index.emplace_back(
          StatusKey(order.stored_status, order.stored_status_since_position, order_number), false);
      index.emplace_back(StatusKey(row.state.status, row.status_since_position, order_number),
                         true);
    }
    if (const bool revocation_error = HasRevocationError(row.state);
        revocation_error != order.stored_revocation_error) {
      index.emplace_back(RevocationErrorKey(order_number), revocation_error);
    }
  }
  // Sorted, RocksDB's memtable inserts each key next to the previous one.
  std::sort(index.begin(), index.end());
  for (const auto& [key, put] : index) {
    if (put) {
      rows.Put(key, "");
    } else {
      rows.Delete(key);
    }
  }
}

StoreResult<std::optional<OrderRow>> OrderStatusProjection::Get(const ProjectionView& view,
                                                                std::string_view order_number) {
  auto stored = view.Get(OrderRowKey(order_number));
  if (!stored) return Unexpected(std::move(stored).error());
  if (!*stored) return std::optional<OrderRow>();
  auto row = DecodeRowOf(order_number, **stored);
  if (!row) return Unexpected(std::move(row).error());
  return std::optional<OrderRow>(std::move(*row));
}

StoreResult<OrderPage> OrderStatusProjection::ListWithRevocationErrors(const ProjectionView& view,
                                                                       size_t limit,
                                                                       std::string_view cursor) {
  return ListIndex(view, std::string(kRevocationErrorPrefix), /*newest_first=*/false, limit,
                   cursor);
}

StoreResult<OrderPage> OrderStatusProjection::ListByStatus(const ProjectionView& view,
                                                           domain::OrderStatus status, size_t limit,
                                                           std::string_view cursor) {
  return ListIndex(view, StatusPrefix(status), /*newest_first=*/false, limit, cursor);
}

StoreResult<uint64_t> OrderStatusProjection::CountByStatus(const ProjectionView& view,
                                                           domain::OrderStatus status,
                                                           uint64_t max) {
  return CountIndex(view, StatusPrefix(status), max);
}

StoreResult<uint64_t> OrderStatusProjection::CountWithRevocationErrors(const ProjectionView& view,
                                                                       uint64_t max) {
  return CountIndex(view, std::string(kRevocationErrorPrefix), max);
}

StoreResult<OrderPage> OrderStatusProjection::ListByUser(const ProjectionView& view,
                                                         int64_t user_id, size_t limit,
                                                         std::string_view cursor) {
  return ListIndex(view, UserPrefix(user_id), /*newest_first=*/true, limit, cursor);
}

StoreResult<OrderPage> OrderStatusProjection::ListAll(const ProjectionView& view, size_t limit,
                                                      std::string_view cursor) {
  return ListIndex(view, "t/", /*newest_first=*/true, limit, cursor);
}

StoreResult<OrderPage> OrderStatusProjection::ListPlacedBetween(const ProjectionView& view,
                                                                uint64_t first_position,
                                                                uint64_t last_position,
                                                                size_t limit,
                                                                std::string_view cursor) {
  if (first_position > last_position || last_position == UINT64_MAX) return OrderPage{};
  return ListRange(view, fmt::format("t/{:016x}/", first_position),
                   fmt::format("t/{:016x}/", last_position + 1), /*newest_first=*/true, limit,
                   cursor);
}

}  // namespace ledger::projections
