// The payments projection: per order number, every payment captured for it and whether the order
// was placed, with the two lists finance and support work from:
//   - orphan payments: captures whose order was never placed (no OrderCreated in its stream),
//     oldest capture first. This is the original's "customer charged, no order placed" state,
//     made visible so that someone can place the order or refund the capture. A capture leaves
//     the list in the batch that applies its order's OrderCreated.
//   - excess payments: every order that holds money to look at, in the order it came to: more
//     than one capture, a capture flagged `excess` (it arrived after placement), or, once placed,
//     captures beyond the total in its currency or any capture in another currency (which the
//     order cannot use). Each row has what is to hand back, per currency.
//
// Rows (relative to the generation; numbers in fixed-width lowercase hex so they sort):
//   o/<order number>                                     the order's payments (OrderPayments)
//   x/<captured_at_us, 16 hex>/<order number>/<capture index, 4 hex>
//                                                        an orphan capture (value: the capture)
//   e/<excess since position, 16 hex>/<order number>     an order with excess captures (value
//                                                        empty; the order row holds the rest)
// Order numbers never contain '/', so each key splits unambiguously. The row and capture
// encodings are this file's own (see payments_projection.cc); decoding bad bytes is kCorruption.
//
// Folding: a small state of its own (not domain::TryEvolve: it keeps captures, not lines). An
// event it cannot apply (a second OrderCreated, more than domain::kCapturesMax captures, a
// capture time outside the domain's bounds, a sum that overflows) is kCorruption at the event's
// position. Events other than PaymentCaptured and OrderCreated are not read.
//
// Thread safety: as Projection; the static query functions are safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "domain/money.h"
#include "projections/projection.h"

namespace ledger::projections {

// One PaymentCaptured as the projection keeps it.
struct PaymentCapture {
  std::string processor;
  std::string reference;  // The processor's transaction id.
  domain::Money amount;
  std::string card_type;
  std::string card_last_digits;
  int64_t captured_at_us = 0;  // The processor's time.
  bool excess = false;         // Arrived after the order was placed.
  // Where the log holds it, and when the log committed it.
  uint64_t position = 0;
  int64_t recorded_at_us = 0;

  friend bool operator==(const PaymentCapture&, const PaymentCapture&) = default;
};

// The payments of one order number.
struct OrderPayments {
  std::string order_number;
  bool placed = false;
  // Set once placed: where OrderCreated is in the log, the order's currency and total.
  uint64_t placed_position = 0;
  std::string currency;
  int64_t total_minor = 0;
  // The position of the event that made the order excess (a second capture, an excess capture,
  // or the capture or placement that left money beyond the total or in another currency); 0
  // while it is not. Rows written before the last two counted keep 0 for such an order until
  // the projection is rebuilt.
  uint64_t excess_since_position = 0;
  std::vector<PaymentCapture> captures;  // In log order; at most domain::kCapturesMax.

  friend bool operator==(const OrderPayments&, const OrderPayments&) = default;
};

struct OrphanPayment {
  std::string order_number;
  PaymentCapture capture;

  friend bool operator==(const OrphanPayment&, const OrphanPayment&) = default;
};

// The captures of an order in one currency other than ExcessPayment::currency.
struct CurrencyExcess {
  std::string currency;
  int64_t captured_minor = 0;
  // All of it once placed (the order uses another currency); nullopt before placement.
  std::optional<int64_t> excess_minor;

  friend bool operator==(const CurrencyExcess&, const CurrencyExcess&) = default;
};

struct ExcessPayment {
  OrderPayments order;
  // The sum of the captures in `currency`: the order's currency once placed, else the first
  // capture's.
  std::string currency;
  int64_t captured_minor = 0;
  // captured_minor - order.total_minor once placed (0 for a split payment that adds up to the
  // total exactly); nullopt before placement, when the total is not known.
  std::optional<int64_t> excess_minor;
  // The captures in every other currency, one entry per currency in the order each was first
  // captured: without them, money paid in a currency the order does not use showed nowhere.
  std::vector<CurrencyExcess> other_currencies;

  friend bool operator==(const ExcessPayment&, const ExcessPayment&) = default;
};

// One page of a list, and where the next page starts ("" when there is none).
struct OrphanPage {
  std::vector<OrphanPayment> rows;
  std::string next_cursor;
};
struct ExcessPage {
  std::vector<ExcessPayment> rows;
  std::string next_cursor;
};

class PaymentsProjection final : public Projection {
 public:
  static constexpr std::string_view kName = "payments";
  static constexpr size_t kPageRowsMax = 1000;

  std::string_view name() const override { return kName; }
  StoreResult<void> Apply(const RecordedEvent& record, const domain::Event& event,
                          RowBatch& rows) override;
  StoreResult<void> Flush(RowBatch& rows) override;
  void Reset() override { cache_.clear(); }
  // Each row belongs to one order, and Apply checks that each event is in its order's stream.
  bool PartitionedByStream() const override { return true; }

  // The order's payments; nullopt when the log holds no capture and no placement for it.
  static StoreResult<std::optional<OrderPayments>> Get(const ProjectionView& view,
                                                       std::string_view order_number);

  // Captures of orders never placed, captured at least `min_age_us` before `now_us`, oldest
  // capture first; at most `limit` (clamped to 1..kPageRowsMax) per page. `cursor` is a page's
  // next_cursor; a cursor this list did not produce is kInvalidArgument, and so is a negative
  // `min_age_us`. The same `now_us` and `min_age_us` should be passed for every page.
  static StoreResult<OrphanPage> ListOrphans(const ProjectionView& view, int64_t now_us,
                                             int64_t min_age_us, size_t limit,
                                             std::string_view cursor = {});

  // The excess payments (see the top of this file), in the order the orders became excess.
  // Paging as ListOrphans.
  static StoreResult<ExcessPage> ListExcess(const ProjectionView& view, size_t limit,
                                            std::string_view cursor = {});

  // Row encodings, exposed for tests and tools. Decoding never reads past `bytes`: truncated,
  // extended or garbage bytes are kCorruption.
  static std::string EncodeRow(const OrderPayments& row);
  static StoreResult<OrderPayments> DecodeRow(std::string_view bytes);
  static std::string EncodeCapture(const PaymentCapture& capture);
  static StoreResult<PaymentCapture> DecodeCapture(std::string_view bytes);

 private:
  // Loads the order into cache_ (from the rows, or empty) and returns it.
  StoreResult<OrderPayments*> Load(const std::string& order_number, RowBatch& rows);
  StoreResult<void> ApplyCapture(const RecordedEvent& record, const domain::PaymentCaptured& event,
                                 RowBatch& rows);
  StoreResult<void> ApplyCreated(const RecordedEvent& record, const domain::OrderCreated& event,
                                 RowBatch& rows);

  // Orders changed in the current batch, written by Flush.
  std::unordered_map<std::string, OrderPayments> cache_;
};

}  // namespace ledger::projections
