// The order status projection: per order, its state folded from its stream (status, every
// line's status, attempts, last error and next retry, amounts captured, due and refunded), and
// the log position and stream version it reflects; with indexes for the lists services and ops
// read: by status (oldest in that status first: the fulfillment error queue), by user (newest
// first), and all orders (newest first).
//
// Rows (relative to the generation):
//   o/<order number>                                   the order (see OrderRow for its bytes)
//   s/<status, 2 hex>/<since position, 16 hex>/<order> orders by status, oldest first
//   u/<user id, 16 hex>/<placed position, 16 hex>/<order>  orders by user
//   t/<placed position, 16 hex>/<order>                 every placed order
//
// Thread safety: as Projection; the query functions are safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "domain/order_state.h"
#include "projections/projection.h"

namespace ledger::projections {

// Its bytes: a format byte, 0x01; position, stream_version, status_since_position and
// status_since_us as 8-byte big-endian integers; then the state as a packed Cap'n Proto
// OrderStateSnapshot (eventstore::AppendPackedOrderState). Rows written before the format byte
// existed have none: they begin with the position, whose first byte is 0, and hold a flat
// (unpacked) snapshot; they are still read. Never reuse a format byte: stored on disk.
struct OrderRow {
  domain::OrderState state;
  // The position of the order's last event applied, and its version in the stream.
  uint64_t position = 0;
  uint64_t stream_version = 0;
  // When the order entered its current status: the event's position and commit time.
  uint64_t status_since_position = 0;
  int64_t status_since_us = 0;
};

// One page of a list, and where the next page starts ("" when there is none). The lists below
// take a page's `next_cursor` to continue; a cursor that is not from the same list is
// kInvalidArgument.
struct OrderPage {
  std::vector<OrderRow> rows;
  std::string next_cursor;
};

class OrderStatusProjection final : public Projection {
 public:
  static constexpr std::string_view kName = "order_status";
  static constexpr size_t kPageRowsMax = 1000;

  std::string_view name() const override { return kName; }
  StoreResult<void> Apply(const RecordedEvent& record, const domain::Event& event,
                          RowBatch& rows) override;
  StoreResult<void> Flush(RowBatch& rows) override;
  void Reset() override {
    cache_.clear();
    sealed_.clear();
  }
  bool CanFlushConcurrently() const override { return true; }
  // Each row belongs to one order, and Apply checks that each event is in its order's stream.
  bool PartitionedByStream() const override { return true; }
  void SealBatch() override;
  StoreResult<void> FlushSealed(RowBatch& rows) override;
  void ReleaseSealed() override { sealed_.clear(); }

  static StoreResult<std::optional<OrderRow>> Get(const ProjectionView& view,
                                                  std::string_view order_number);
  // Placed orders in `status`, oldest in that status first.
  static StoreResult<OrderPage> ListByStatus(const ProjectionView& view, domain::OrderStatus status,
                                             size_t limit, std::string_view cursor = {});
  // A user's placed orders, newest first.
  static StoreResult<OrderPage> ListByUser(const ProjectionView& view, int64_t user_id,
                                           size_t limit, std::string_view cursor = {});
  // Orders with a line in Revocation Error (a refund's revocation that failed and is not retried
  // or not yet), by order number: ops' queue.
  static StoreResult<OrderPage> ListWithRevocationErrors(const ProjectionView& view, size_t limit,
                                                         std::string_view cursor = {});
  // How many orders are in `status`, and how many have a line in Revocation Error: ops' two
  // queues, for the metrics. Each count walks its index's keys and stops at `max` (the answer is
  // then `max`), so that a scrape stays cheap however long a queue grows.
  static StoreResult<uint64_t> CountByStatus(const ProjectionView& view, domain::OrderStatus status,
                                             uint64_t max);
  static StoreResult<uint64_t> CountWithRevocationErrors(const ProjectionView& view, uint64_t max);
  // Every placed order, newest first.
  static StoreResult<OrderPage> ListAll(const ProjectionView& view, size_t limit,
                                        std::string_view cursor = {});
  // The orders placed at positions first..last (both included), newest first.
  static StoreResult<OrderPage> ListPlacedBetween(const ProjectionView& view,
                                                  uint64_t first_position, uint64_t last_position,
                                                  size_t limit, std::string_view cursor = {});

  // Row encoding, exposed for tests and tools.
  static std::string EncodeRow(const OrderRow& row);
  static StoreResult<OrderRow> DecodeRow(std::string_view bytes);

 private:
  // An order changed in the current batch: its row as of the last event applied, and where its
  // status index entry stood before the batch. Flush writes the row and only the net change of
  // the indexes (an order whose status changes twice in one batch never writes the status it
  // passed through), in key order: fewer and sorted writes are what makes a rebuild fast.
  struct CachedOrder {
    OrderRow row;
    bool stored_placed = false;
    domain::OrderStatus stored_status = domain::OrderStatus::kOpen;
    uint64_t stored_status_since_position = 0;
    bool stored_revocation_error = false;  // The stored row has a line in Revocation Error.
    // The position of OrderCreated when it was applied in this batch (0: it was not).
    uint64_t placed_position = 0;
  };

  using Orders = std::unordered_map<std::string, CachedOrder>;

  // Writes `orders`' rows and their net index changes into `rows`, in key order.
  static void WriteOrders(const Orders& orders, RowBatch& rows);

  // Orders changed in the current batch, written by Flush.
  Orders cache_;
  // The batch sealed for a concurrent flush (SealBatch to ReleaseSealed): read-only meanwhile.
  Orders sealed_;
};

}  // namespace ledger::projections
