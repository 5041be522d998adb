// The revenue projection: per UTC day and currency, the money captured and refunded, for
// auditors.
//
//   captured: the sum of PaymentCaptured amounts, in the capture's currency (excess captures
//             included: they were taken; handing them back is a refund outside the ledger).
//   refunded: the sum of quantity x unit price of every line revoked (LineRevoked), in the
//             order's currency; shipping is not refunded with a line.
//   counts of captures and of revocations.
//
// The day is the UTC day of the record's recorded_at_us, the ledger's commit time, and not of a
// time carried in the event (captured_at_us, revoked_at_us): the commit time never decreases
// along the log, so a day, once past, never changes again, and an audit of a closed day is final.
//
// Rows (relative to the generation):
//   d/<YYYY-MM-DD>/<currency>   the day's totals in one currency (RevenueRow)
//   l/<order number>            the order's currency and each line's amount and whether it was
//                               revoked, kept from OrderCreated to price LineRevoked
// Both encodings are this file's own (see revenue_projection.cc); bad bytes are kCorruption.
//
// Folding: an event it cannot apply (a second OrderCreated, a line amount or a day's sum that
// overflows int64, a revocation before OrderCreated, of a line the order lacks or of a line
// revoked before, an unknown currency, a commit time outside 0..domain::kTimeUsMax) is
// kCorruption at the event's position: the runner stops rather than report a wrong total.
// Sums use domain::CheckedAdd and CheckedMultiply; nothing overflows silently.
//
// Thread safety: as Projection; the static query functions are safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "projections/projection.h"

namespace ledger::projections {

// One day in one currency. Amounts in minor units of `currency`.
struct RevenueRow {
  std::string day;       // "YYYY-MM-DD", UTC.
  std::string currency;  // ISO 4217.
  int64_t captured_minor = 0;
  int64_t refunded_minor = 0;
  uint64_t captures = 0;
  uint64_t revocations = 0;

  friend bool operator==(const RevenueRow&, const RevenueRow&) = default;
};

// What the projection remembers of a placed order to price its revocations.
struct RevenueOrderLine {
  std::string line_id;
  int64_t amount_minor = 0;  // quantity x unit price.
  bool revoked = false;

  friend bool operator==(const RevenueOrderLine&, const RevenueOrderLine&) = default;
};
struct RevenueOrder {
  std::string currency;
  std::vector<RevenueOrderLine> lines;  // As OrderCreated lists them.

  friend bool operator==(const RevenueOrder&, const RevenueOrder&) = default;
};

class RevenueProjection final : public Projection {
 public:
  static constexpr std::string_view kName = "revenue";
  // The most rows one Range answer holds; a wider range is kInvalidArgument.
  static constexpr size_t kRangeRowsMax = 100'000;

  std::string_view name() const override { return kName; }
  StoreResult<void> Apply(const RecordedEvent& record, const domain::Event& event,
                          RowBatch& rows) override;
  StoreResult<void> Flush(RowBatch& rows) override;
  void Reset() override {
    days_.clear();
    orders_.clear();
  }

  // Every row of the days from `from_day` to `to_day` (inclusive, "YYYY-MM-DD"), sorted by day
  // then currency; days without captures or revocations have no row. kInvalidArgument for a
  // malformed day or more than kRangeRowsMax rows; an empty answer when from_day > to_day.
  static StoreResult<std::vector<RevenueRow>> Range(const ProjectionView& view,
                                                    std::string_view from_day,
                                                    std::string_view to_day);

  // The UTC day of a time, "YYYY-MM-DD"; nullopt outside 0..domain::kTimeUsMax.
  static std::optional<std::string> UtcDay(int64_t time_us);
  // Whether `day` is a real calendar day written "YYYY-MM-DD".
  static bool IsValidDay(std::string_view day);

  // Row encodings, exposed for tests and tools. Decoding never reads past `bytes`: truncated,
  // extended or garbage bytes are kCorruption.
  static std::string EncodeDayRow(const RevenueRow& row);
  // Decodes a day row's value; the day and currency come from its key.
  static StoreResult<RevenueRow> DecodeDayRow(std::string_view day, std::string_view currency,
                                              std::string_view bytes);
  static std::string EncodeOrderRow(const RevenueOrder& order);
  static StoreResult<RevenueOrder> DecodeOrderRow(std::string_view bytes);

 private:
  // Loads a row into its cache (from the rows, or empty) and returns it; for an order, nullptr
  // when it has no row.
  StoreResult<RevenueRow*> LoadDay(const RecordedEvent& record, const std::string& currency,
                                   RowBatch& rows);
  StoreResult<RevenueOrder*> LoadOrder(const std::string& order_number, RowBatch& rows);
  StoreResult<void> ApplyCapture(const RecordedEvent& record, const domain::PaymentCaptured& event,
                                 RowBatch& rows);
  StoreResult<void> ApplyCreated(const RecordedEvent& record, const domain::OrderCreated& event,
                                 RowBatch& rows);
  StoreResult<void> ApplyRevoked(const RecordedEvent& record, const domain::LineRevoked& event,
                                 RowBatch& rows);

  // Rows changed in the current batch, written by Flush. Keyed by their row key.
  std::unordered_map<std::string, RevenueRow> days_;
  // nullopt: looked up, the order has no row (not placed).
  std::unordered_map<std::string, std::optional<RevenueOrder>> orders_;
};

}  // namespace ledger::projections
