#include "projections/payments_projection.h"

#include <fmt/format.h>

#include <algorithm>
#include <variant>

#include "base/bytes.h"
#include "domain/limits.h"
#include "projections/row_codec.h"

namespace ledger::projections {

namespace {

using eventstore::ErrorCode;

// Row encodings (all integers big-endian, texts as a 4-byte length and the bytes):
//   capture: processor, reference, currency, amount (8), card type, card last digits,
//            captured_at_us (8), excess (1 byte: 0 or 1), position (8), recorded_at_us (8)
//   order:   format (1 byte: kPaymentsRowFormat), order number, placed (1 byte: 0 or 1),
//            placed position (8), currency, total (8), excess since position (8),
//            capture count (4, at most domain::kCapturesMax), then each capture
// Never change a field's meaning: rows are stored. A new format takes a new kPaymentsRowFormat.
constexpr uint8_t kPaymentsRowFormat = 1;

// Keys: see the header.
constexpr std::string_view kOrphanPrefix = "x/";
constexpr std::string_view kExcessPrefix = "e/";
constexpr size_t kHexPositionChars = 16;
constexpr size_t kHexIndexChars = 4;

std::string OrphanKey(int64_t captured_at_us, std::string_view order_number, size_t index) {
  return fmt::format("{}{:016x}/{}/{:04x}", kOrphanPrefix, static_cast<uint64_t>(captured_at_us),
                     order_number, index);
}
std::string ExcessKey(uint64_t since_position, std::string_view order_number) {
  return fmt::format("{}{:016x}/{}", kExcessPrefix, since_position, order_number);
}

void PutCapture(std::string& out, const PaymentCapture& capture) {
  PutText(out, capture.processor);
  PutText(out, capture.reference);
  PutText(out, capture.amount.currency);
  PutI64(out, capture.amount.minor_units);
  PutText(out, capture.card_type);
  PutText(out, capture.card_last_digits);
  PutI64(out, capture.captured_at_us);
  PutU8(out, capture.excess ? 1 : 0);
  PutU64(out, capture.position);
  PutI64(out, capture.recorded_at_us);
}

PaymentCapture ReadCapture(RowReader& reader) {
  PaymentCapture capture;
  capture.processor = reader.Text();
  capture.reference = reader.Text();
  capture.amount.currency = reader.Text();
  capture.amount.minor_units = reader.I64();
  capture.card_type = reader.Text();
  capture.card_last_digits = reader.Text();
  capture.captured_at_us = reader.I64();
  capture.excess = reader.Bool();
  capture.position = reader.U64();
  capture.recorded_at_us = reader.I64();
  return capture;
}

// The sum of the order's captures in `currency`; nullopt when it overflows.
std::optional<int64_t> CapturedMinor(const OrderPayments& order, std::string_view currency) {
  std::optional<int64_t> sum = 0;
  for (const PaymentCapture& capture : order.captures) {
    if (capture.amount.currency != currency) continue;
    sum = domain::CheckedAdd(*sum, capture.amount.minor_units);
    if (!sum) return std::nullopt;
  }
  return sum;
}

StoreResult<ExcessPayment> MakeExcess(OrderPayments order) {
  ExcessPayment excess;
  if (order.placed) {
    excess.currency = order.currency;
  } else if (!order.captures.empty()) {
    excess.currency = order.captures.front().amount.currency;
  }
  const std::optional<int64_t> captured_minor = CapturedMinor(order, excess.currency);
  if (!captured_minor) {
    return Unexpected(CorruptionError(fmt::format("the captures of order {} in {} overflow",
                                                  order.order_number, excess.currency)));
  }
  excess.captured_minor = *captured_minor;
  if (order.placed) {
    excess.excess_minor = domain::CheckedSubtract(*captured_minor, order.total_minor);
    if (!excess.excess_minor) {
      return Unexpected(CorruptionError(
          fmt::format("order {}: captured minus total overflows", order.order_number)));
    }
  }
  for (const PaymentCapture& capture : order.captures) {
    const std::string& currency = capture.amount.currency;
    if (currency == excess.currency) continue;
    auto other = std::find_if(excess.other_currencies.begin(), excess.other_currencies.end(),
                              [&](const CurrencyExcess& sum) { return sum.currency == currency; });
    if (other != excess.other_currencies.end()) continue;
    const std::optional<int64_t> other_minor = CapturedMinor(order, currency);
    if (!other_minor) {
      return Unexpected(CorruptionError(
          fmt::format("the captures of order {} in {} overflow", order.order_number, currency)));
    }
    // The order cannot use a currency other than its own: once placed, all of it is excess.
    excess.other_currencies.push_back(
        CurrencyExcess{.currency = currency,
                       .captured_minor = *other_minor,
                       .excess_minor = order.placed ? other_minor : std::nullopt});
  }
  excess.order = std::move(order);
  return excess;
}

// Whether the order belongs in the excess list (see the header): paid more than once or after
// placement, or, once placed, beyond its total or in a currency it does not use. A single
// capture beyond the total is there too: the list is where ops find all money to hand back.
bool HoldsExcess(const OrderPayments& order) {
  if (order.captures.size() > 1) return true;
  for (const PaymentCapture& capture : order.captures) {
    if (capture.excess) return true;
    if (order.placed && capture.amount.currency != order.currency) return true;
  }
  if (!order.placed) return false;
  // A sum that overflows (only in a damaged row: ApplyCapture refuses it) is listed too.
  const std::optional<int64_t> captured_minor = CapturedMinor(order, order.currency);
  return !captured_minor || *captured_minor > order.total_minor;
}

// Enters the order in the excess list when the event at `position` made it excess. It never
// leaves: captures are never taken back and the total never changes.
void IndexIfExcess(OrderPayments& order, uint64_t position, RowBatch& rows) {
  if (order.excess_since_position != 0 || !HoldsExcess(order)) return;
  order.excess_since_position = position;
  rows.Put(ExcessKey(position, order.order_number), "");
}

// The scan bounds of a paged list: [begin, end), resuming strictly after `cursor` (the last key
// of the previous page), which must lie in the list.
StoreResult<std::string> PageBegin(std::string_view prefix, std::string_view cursor) {
  if (cursor.empty()) return std::string(prefix);
  if (!cursor.starts_with(prefix)) {
    return Unexpected(
        InvalidArgumentError(fmt::format("cursor {:?} is not from this list", cursor)));
  }
  return std::string(cursor) + '\0';
}

}  // namespace

std::string PaymentsProjection::EncodeCapture(const PaymentCapture& capture) {
  std::string bytes;
  PutCapture(bytes, capture);
  return bytes;
}

StoreResult<PaymentCapture> PaymentsProjection::DecodeCapture(std::string_view bytes) {
  RowReader reader(bytes);
  PaymentCapture capture = ReadCapture(reader);
  if (!reader.ok() || !reader.at_end()) {
    return Unexpected(CorruptionError("a payments capture row is truncated or malformed"));
  }
  return capture;
}

std::string PaymentsProjection::EncodeRow(const OrderPayments& row) {
  std::string bytes;
  PutU8(bytes, kPaymentsRowFormat);
  PutText(bytes, row.order_number);
  PutU8(bytes, row.placed ? 1 : 0);
  PutU64(bytes, row.placed_position);
  PutText(bytes, row.currency);
  PutI64(bytes, row.total_minor);
  PutU64(bytes, row.excess_since_position);
  AppendBigEndian32(bytes, static_cast<uint32_t>(row.captures.size()));
  for (const PaymentCapture& capture : row.captures) PutCapture(bytes, capture);
  return bytes;
}

StoreResult<OrderPayments> PaymentsProjection::DecodeRow(std::string_view bytes) {
  RowReader reader(bytes);
  if (const uint8_t format = reader.U8(); reader.ok() && format != kPaymentsRowFormat) {
    return Unexpected(CorruptionError(fmt::format("a payments order row has format {}", format)));
  }
  OrderPayments row;
  row.order_number = reader.Text();
  row.placed = reader.Bool();
  row.placed_position = reader.U64();
  row.currency = reader.Text();
  row.total_minor = reader.I64();
  row.excess_since_position = reader.U64();
  const uint32_t capture_count = reader.U32();
  if (reader.ok() && capture_count > domain::kCapturesMax) {
    return Unexpected(
        CorruptionError(fmt::format("a payments order row claims {} captures", capture_count)));
  }
  for (uint32_t i = 0; i < capture_count && reader.ok(); ++i) {
    row.captures.push_back(ReadCapture(reader));
  }
  if (!reader.ok() || !reader.at_end()) {
    return Unexpected(CorruptionError("a payments order row is truncated or malformed"));
  }
  return row;
}

StoreResult<OrderPayments*> PaymentsProjection::Load(const std::string& order_number,
                                                     RowBatch& rows) {
  auto cached = cache_.find(order_number);
  if (cached != cache_.end()) return &cached->second;
  OrderPayments order;
  order.order_number = order_number;
  auto stored = rows.Get(OrderRowKey(order_number));
  if (!stored) return Unexpected(std::move(stored).error());
  if (*stored) {
    auto decoded = DecodeRow(**stored);
    if (!decoded) return Unexpected(std::move(decoded).error());
    if (decoded->order_number != order_number) {
      return Unexpected(CorruptionError(fmt::format("the payments row of order {} names order {}",
                                                    order_number, decoded->order_number)));
    }
    order = std::move(*decoded);
  }
  return &cache_.emplace(order_number, std::move(order)).first->second;
}

StoreResult<void> PaymentsProjection::ApplyCapture(const RecordedEvent& record,
                                                   const domain::PaymentCaptured& event,
                                                   RowBatch& rows) {
  auto loaded = Load(event.order_number, rows);
  if (!loaded) return Unexpected(std::move(loaded).error());
  OrderPayments& order = **loaded;
  if (order.captures.size() >= domain::kCapturesMax) {
    return Unexpected(CannotApplyError(
        PaymentsProjection::kName, record, event.order_number,
        fmt::format("it holds {} captures already, the most", domain::kCapturesMax)));
  }
  if (event.captured_at_us < 0 || event.captured_at_us > domain::kTimeUsMax) {
    return Unexpected(CannotApplyError(
        PaymentsProjection::kName, record, event.order_number,
        fmt::format("the capture time {} is outside the domain's bounds", event.captured_at_us)));
  }
  if (event.amount.minor_units <= 0) {
    return Unexpected(CannotApplyError(PaymentsProjection::kName, record, event.order_number,
                                       "the amount is not positive"));
  }
  const std::optional<int64_t> captured_minor = CapturedMinor(order, event.amount.currency);
  if (!captured_minor || !domain::CheckedAdd(*captured_minor, event.amount.minor_units)) {
    return Unexpected(
        CannotApplyError(PaymentsProjection::kName, record, event.order_number,
                         fmt::format("the captures in {} overflow", event.amount.currency)));
  }

  const size_t index = order.captures.size();
  order.captures.push_back(PaymentCapture{.processor = event.processor,
                                          .reference = event.reference,
                                          .amount = event.amount,
                                          .card_type = event.card_type,
                                          .card_last_digits = event.card_last_digits,
                                          .captured_at_us = event.captured_at_us,
                                          .excess = event.excess,
                                          .position = record.position,
                                          .recorded_at_us = record.recorded_at_us});
  const PaymentCapture& capture = order.captures.back();
  if (!order.placed) {
    rows.Put(OrphanKey(capture.captured_at_us, order.order_number, index), EncodeCapture(capture));
  }
  IndexIfExcess(order, record.position, rows);
  return {};
}

StoreResult<void> PaymentsProjection::ApplyCreated(const RecordedEvent& record,
                                                   const domain::OrderCreated& event,
                                                   RowBatch& rows) {
  auto loaded = Load(event.order_number, rows);
  if (!loaded) return Unexpected(std::move(loaded).error());
  OrderPayments& order = **loaded;
  if (order.placed) {
    return Unexpected(CannotApplyError(
        PaymentsProjection::kName, record, event.order_number,
        fmt::format("the order was created before, at position {}", order.placed_position)));
  }
  order.placed = true;
  order.placed_position = record.position;
  order.currency = event.currency;
  order.total_minor = event.total_minor;
  // Every capture so far came before placement, so each one is in the orphan index.
  for (size_t index = 0; index < order.captures.size(); ++index) {
    rows.Delete(OrphanKey(order.captures[index].captured_at_us, order.order_number, index));
  }
  // Captures that only now show as beyond the total or in a currency the order does not use.
  IndexIfExcess(order, record.position, rows);
  return {};
}

StoreResult<void> PaymentsProjection::Apply(const RecordedEvent& record, const domain::Event& event,
                                            RowBatch& rows) {
  if (auto in_stream = CheckInOrderStream(kName, record, domain::EventOrderNumber(event));
      !in_stream) {
    return in_stream;
  }
  if (const auto* captured = std::get_if<domain::PaymentCaptured>(&event)) {
    return ApplyCapture(record, *captured, rows);
  }
  if (const auto* created = std::get_if<domain::OrderCreated>(&event)) {
    return ApplyCreated(record, *created, rows);
  }
  return {};
}

StoreResult<void> PaymentsProjection::Flush(RowBatch& rows) {
  for (const auto& [order_number, order] : cache_)
    rows.Put(OrderRowKey(order_number), EncodeRow(order));
  cache_.clear();
  return {};
}

StoreResult<std::optional<OrderPayments>> PaymentsProjection::Get(const ProjectionView& view,
                                                                  std::string_view order_number) {
  auto stored = view.Get(OrderRowKey(order_number));
  if (!stored) return Unexpected(std::move(stored).error());
  if (!*stored) return std::optional<OrderPayments>();
  auto row = DecodeRow(**stored);
  if (!row) return Unexpected(std::move(row).error());
  if (row->order_number != order_number) {
    return Unexpected(CorruptionError(fmt::format("the payments row of order {} names order {}",
                                                  order_number, row->order_number)));
  }
  return std::optional<OrderPayments>(std::move(*row));
}

StoreResult<OrphanPage> PaymentsProjection::ListOrphans(const ProjectionView& view, int64_t now_us,
                                                        int64_t min_age_us, size_t limit,
                                                        std::string_view cursor) {
  if (min_age_us < 0) {
    return Unexpected(InvalidArgumentError(fmt::format("min_age_us {} is negative", min_age_us)));
  }
  auto begin = PageBegin(kOrphanPrefix, cursor);
  if (!begin) return Unexpected(std::move(begin).error());
  OrphanPage page;
  // Captured at or before the cutoff; none when the cutoff is before the epoch.
  const std::optional<int64_t> cutoff_us = domain::CheckedSubtract(now_us, min_age_us);
  if (!cutoff_us || *cutoff_us < 0) return page;
  // "x/<cutoff + 1>" sorts after every key of a capture at the cutoff ("x/<cutoff>/...").
  const std::string end =
      fmt::format("{}{:016x}", kOrphanPrefix, static_cast<uint64_t>(*cutoff_us) + 1);
  limit = std::clamp<size_t>(limit, 1, kPageRowsMax);

  std::optional<Error> failure;
  std::string last_key;
  bool more = false;  // A key after the page's last: only then is there a next page.
  auto scanned =
      view.Scan(*begin, end, /*reverse=*/false, [&](std::string_view key, std::string_view value) {
        if (page.rows.size() == limit) {
          more = true;
          return false;
        }
        // x/<16 hex>/<order number>/<4 hex>
        const size_t order_begin = kOrphanPrefix.size() + kHexPositionChars + 1;
        const size_t suffix = kHexIndexChars + 1;
        if (key.size() <= order_begin + suffix || key[order_begin - 1] != '/' ||
            key[key.size() - suffix] != '/') {
          failure = CorruptionError(fmt::format("orphan index key {:?} is malformed", key));
          return false;
        }
        auto capture = DecodeCapture(value);
        if (!capture) {
          failure = std::move(capture).error();
          return false;
        }
        page.rows.push_back(OrphanPayment{
            .order_number = std::string(key.substr(order_begin, key.size() - suffix - order_begin)),
            .capture = std::move(*capture)});
        last_key = key;
        return true;
      });
  if (!scanned) return Unexpected(std::move(scanned).error());
  if (failure) return Unexpected(std::move(*failure));
  if (more) page.next_cursor = last_key;
  return page;
}

StoreResult<ExcessPage> PaymentsProjection::ListExcess(const ProjectionView& view, size_t limit,
                                                       std::string_view cursor) {
  auto begin = PageBegin(kExcessPrefix, cursor);
  if (!begin) return Unexpected(std::move(begin).error());
  limit = std::clamp<size_t>(limit, 1, kPageRowsMax);
  const std::string end = "e0";  // One past "e/".

  std::optional<Error> failure;
  std::vector<std::string> keys;
  bool more = false;
  auto scanned =
      view.Scan(*begin, end, /*reverse=*/false, [&](std::string_view key, std::string_view) {
        if (keys.size() == limit) {
          more = true;  // Only then is there a next page.
          return false;
        }
        // e/<16 hex>/<order number>
        const size_t order_begin = kExcessPrefix.size() + kHexPositionChars + 1;
        if (key.size() <= order_begin || key[order_begin - 1] != '/') {
          failure = CorruptionError(fmt::format("excess index key {:?} is malformed", key));
          return false;
        }
        keys.emplace_back(key);
        return true;
      });
  if (!scanned) return Unexpected(std::move(scanned).error());
  if (failure) return Unexpected(std::move(*failure));

  ExcessPage page;
  for (const std::string& key : keys) {
    const std::string_view order_number =
        std::string_view(key).substr(kExcessPrefix.size() + kHexPositionChars + 1);
    auto order = Get(view, order_number);
    if (!order) return Unexpected(std::move(order).error());
    if (!*order) {
      return Unexpected(CorruptionError(
          fmt::format("the excess index names order {}, which has no row", order_number)));
    }
    auto excess = MakeExcess(std::move(**order));
    if (!excess) return Unexpected(std::move(excess).error());
    page.rows.push_back(std::move(*excess));
  }
  if (more) page.next_cursor = keys.back();
  return page;
}

}  // namespace ledger::projections
