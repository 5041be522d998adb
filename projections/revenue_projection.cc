#include "projections/revenue_projection.h"

#include <fmt/format.h>

#include <chrono>
#include <variant>

#include "base/bytes.h"
#include "domain/limits.h"
#include "domain/money.h"
#include "projections/row_codec.h"

namespace ledger::projections {

namespace {

using eventstore::ErrorCode;

// Row encodings (integers big-endian, texts as a 4-byte length and the bytes):
//   day:   format (1 byte: kRevenueRowFormat), captured (8), refunded (8), captures (8),
//          revocations (8); amounts are never negative.
//   order: format (1 byte: kRevenueRowFormat), currency, line count (4, at most domain::kLinesMax),
//          then per line: line id, amount (8, never negative), revoked (1 byte: 0 or 1)
// Never change a field's meaning: rows are stored. A new format takes a new kRevenueRowFormat.
constexpr uint8_t kRevenueRowFormat = 1;

constexpr std::string_view kDayPrefix = "d/";
constexpr size_t kDayChars = 10;  // YYYY-MM-DD

std::string RevenueLinesKey(std::string_view order_number) {
  return fmt::format("l/{}", order_number);
}
std::string DayKey(std::string_view day, std::string_view currency) {
  return fmt::format("{}{}/{}", kDayPrefix, day, currency);
}

bool IsDigits(std::string_view text) {
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

unsigned ParseDigits(std::string_view digits) {
  unsigned value = 0;
  for (char c : digits) value = value * 10 + static_cast<unsigned>(c - '0');
  return value;
}

}  // namespace

std::optional<std::string> RevenueProjection::UtcDay(int64_t time_us) {
  if (time_us < 0 || time_us > domain::kTimeUsMax) return std::nullopt;
  using namespace std::chrono;
  const sys_days day = floor<days>(sys_time<microseconds>(microseconds(time_us)));
  const year_month_day date(day);
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(date.year()),
                     static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
}

bool RevenueProjection::IsValidDay(std::string_view day) {
  if (day.size() != kDayChars || day[4] != '-' || day[7] != '-') return false;
  if (!IsDigits(day.substr(0, 4)) || !IsDigits(day.substr(5, 2)) || !IsDigits(day.substr(8, 2))) {
    return false;
  }
  using namespace std::chrono;
  const year_month_day date(year(static_cast<int>(ParseDigits(day.substr(0, 4)))),
                            month(ParseDigits(day.substr(5, 2))),
                            std::chrono::day(ParseDigits(day.substr(8, 2))));
  return date.ok();
}

std::string RevenueProjection::EncodeDayRow(const RevenueRow& row) {
  std::string bytes;
  PutU8(bytes, kRevenueRowFormat);
  PutI64(bytes, row.captured_minor);
  PutI64(bytes, row.refunded_minor);
  AppendBigEndian64(bytes, row.captures);
  AppendBigEndian64(bytes, row.revocations);
  return bytes;
}

StoreResult<RevenueRow> RevenueProjection::DecodeDayRow(std::string_view day,
                                                        std::string_view currency,
                                                        std::string_view bytes) {
  RowReader reader(bytes);
  const uint8_t format = reader.U8();
  RevenueRow row{.day = std::string(day), .currency = std::string(currency)};
  row.captured_minor = reader.Amount();
  row.refunded_minor = reader.Amount();
  row.captures = reader.U64();
  row.revocations = reader.U64();
  if (!reader.ok() || !reader.at_end() || format != kRevenueRowFormat) {
    return Unexpected(CorruptionError(
        fmt::format("the revenue row of {} {} is truncated or malformed", day, currency)));
  }
  return row;
}

std::string RevenueProjection::EncodeOrderRow(const RevenueOrder& order) {
  std::string bytes;
  PutU8(bytes, kRevenueRowFormat);
  PutText(bytes, order.currency);
  AppendBigEndian32(bytes, static_cast<uint32_t>(order.lines.size()));
  for (const RevenueOrderLine& line : order.lines) {
    PutText(bytes, line.line_id);
    PutI64(bytes, line.amount_minor);
    PutU8(bytes, line.revoked ? 1 : 0);
  }
  return bytes;
}

StoreResult<RevenueOrder> RevenueProjection::DecodeOrderRow(std::string_view bytes) {
  RowReader reader(bytes);
  const uint8_t format = reader.U8();
  RevenueOrder order;
  order.currency = reader.Text();
  const uint32_t line_count = reader.U32();
  if (line_count > domain::kLinesMax) {
    return Unexpected(
        CorruptionError(fmt::format("a revenue order row claims {} lines", line_count)));
  }
  for (uint32_t i = 0; i < line_count && reader.ok(); ++i) {
    RevenueOrderLine line;
    line.line_id = reader.Text();
    line.amount_minor = reader.Amount();
    line.revoked = reader.Bool();
    order.lines.push_back(std::move(line));
  }
  if (!reader.ok() || !reader.at_end() || format != kRevenueRowFormat) {
    return Unexpected(CorruptionError("a revenue order row is truncated or malformed"));
  }
  return order;
}

StoreResult<RevenueRow*> RevenueProjection::LoadDay(const RecordedEvent& record,
                                                    const std::string& currency, RowBatch& rows) {
  const std::optional<std::string> day = UtcDay(record.recorded_at_us);
  if (!day) {
    return Unexpected(
        CorruptionError(fmt::format("the record at position {} was committed at {} us, "
                                    "outside the domain's time bounds",
                                    record.position, record.recorded_at_us),
                        record.position));
  }
  std::string key = DayKey(*day, currency);
  auto cached = days_.find(key);
  if (cached != days_.end()) return &cached->second;
  RevenueRow row{.day = *day, .currency = currency};
  auto stored = rows.Get(key);
  if (!stored) return Unexpected(std::move(stored).error());
  if (*stored) {
    auto decoded = DecodeDayRow(*day, currency, **stored);
    if (!decoded) return Unexpected(std::move(decoded).error());
    row = std::move(*decoded);
  }
  return &days_.emplace(std::move(key), std::move(row)).first->second;
}

StoreResult<RevenueOrder*> RevenueProjection::LoadOrder(const std::string& order_number,
                                                        RowBatch& rows) {
  auto cached = orders_.find(order_number);
  if (cached == orders_.end()) {
    std::optional<RevenueOrder> order;
    auto stored = rows.Get(RevenueLinesKey(order_number));
    if (!stored) return Unexpected(std::move(stored).error());
    if (*stored) {
      auto decoded = DecodeOrderRow(**stored);
      if (!decoded) return Unexpected(std::move(decoded).error());
      order = std::move(*decoded);
    }
    cached = orders_.emplace(order_number, std::move(order)).first;
  }
  return cached->second ? &*cached->second : nullptr;
}

StoreResult<void> RevenueProjection::ApplyCapture(const RecordedEvent& record,
                                                  const domain::PaymentCaptured& event,
                                                  RowBatch& rows) {
  if (!domain::FindCurrency(event.amount.currency)) {
    return Unexpected(
        CannotApplyError(RevenueProjection::kName, record, event.order_number,
                         fmt::format("unknown currency {:?}", event.amount.currency)));
  }
  if (event.amount.minor_units <= 0) {
    return Unexpected(CannotApplyError(RevenueProjection::kName, record, event.order_number,
                                       "the amount is not positive"));
  }
  auto loaded = LoadDay(record, event.amount.currency, rows);
  if (!loaded) return Unexpected(std::move(loaded).error());
  RevenueRow& row = **loaded;
  const std::optional<int64_t> captured_minor =
      domain::CheckedAdd(row.captured_minor, event.amount.minor_units);
  if (!captured_minor) {
    return Unexpected(CannotApplyError(
        RevenueProjection::kName, record, event.order_number,
        fmt::format("the amount captured on {} in {} overflows", row.day, row.currency)));
  }
  row.captured_minor = *captured_minor;
  ++row.captures;
  return {};
}

StoreResult<void> RevenueProjection::ApplyCreated(const RecordedEvent& record,
                                                  const domain::OrderCreated& event,
                                                  RowBatch& rows) {
  auto loaded = LoadOrder(event.order_number, rows);
  if (!loaded) return Unexpected(std::move(loaded).error());
  if (*loaded != nullptr) {
    return Unexpected(CannotApplyError(RevenueProjection::kName, record, event.order_number,
                                       "the order was created before"));
  }
  if (!domain::FindCurrency(event.currency)) {
    return Unexpected(CannotApplyError(RevenueProjection::kName, record, event.order_number,
                                       fmt::format("unknown currency {:?}", event.currency)));
  }
  if (event.lines.size() > domain::kLinesMax) {
    return Unexpected(
        CannotApplyError(RevenueProjection::kName, record, event.order_number,
                         fmt::format("{} lines, more than the most", event.lines.size())));
  }
  RevenueOrder order{.currency = event.currency, .lines = {}};
  for (const domain::Line& line : event.lines) {
    const std::optional<int64_t> amount_minor =
        domain::CheckedMultiply(line.quantity, line.unit_price_minor);
    if (!amount_minor || *amount_minor < 0) {
      return Unexpected(
          CannotApplyError(RevenueProjection::kName, record, event.order_number,
                           fmt::format("line {}: {} x {} is negative or overflows", line.line_id,
                                       line.quantity, line.unit_price_minor)));
    }
    order.lines.push_back(
        RevenueOrderLine{.line_id = line.line_id, .amount_minor = *amount_minor, .revoked = false});
  }
  orders_[event.order_number] = std::move(order);
  return {};
}

StoreResult<void> RevenueProjection::ApplyRevoked(const RecordedEvent& record,
                                                  const domain::LineRevoked& event,
                                                  RowBatch& rows) {
  auto loaded = LoadOrder(event.order_number, rows);
  if (!loaded) return Unexpected(std::move(loaded).error());
  RevenueOrder* order = *loaded;
  if (order == nullptr) {
    return Unexpected(CannotApplyError(RevenueProjection::kName, record, event.order_number,
                                       "it comes before the order's OrderCreated"));
  }
  RevenueOrderLine* line = nullptr;
  for (RevenueOrderLine& candidate : order->lines) {
    if (candidate.line_id == event.line_id) {
      line = &candidate;
      break;
    }
  }
  if (line == nullptr) {
    return Unexpected(CannotApplyError(RevenueProjection::kName, record, event.order_number,
                                       fmt::format("the order has no line {}", event.line_id)));
  }
  if (line->revoked) {
    return Unexpected(CannotApplyError(RevenueProjection::kName, record, event.order_number,
                                       fmt::format("line {} was revoked before", event.line_id)));
  }
  auto day = LoadDay(record, order->currency, rows);
  if (!day) return Unexpected(std::move(day).error());
  RevenueRow& row = **day;
  const std::optional<int64_t> refunded_minor =
      domain::CheckedAdd(row.refunded_minor, line->amount_minor);
  if (!refunded_minor) {
    return Unexpected(CannotApplyError(
        RevenueProjection::kName, record, event.order_number,
        fmt::format("the amount refunded on {} in {} overflows", row.day, row.currency)));
  }
  row.refunded_minor = *refunded_minor;
  ++row.revocations;
  line->revoked = true;
  return {};
}

StoreResult<void> RevenueProjection::Apply(const RecordedEvent& record, const domain::Event& event,
                                           RowBatch& rows) {
  if (const auto* captured = std::get_if<domain::PaymentCaptured>(&event)) {
    return ApplyCapture(record, *captured, rows);
  }
  if (const auto* created = std::get_if<domain::OrderCreated>(&event)) {
    return ApplyCreated(record, *created, rows);
  }
  if (const auto* revoked = std::get_if<domain::LineRevoked>(&event)) {
    return ApplyRevoked(record, *revoked, rows);
  }
  return {};
}

StoreResult<void> RevenueProjection::Flush(RowBatch& rows) {
  for (const auto& [key, row] : days_) rows.Put(key, EncodeDayRow(row));
  for (const auto& [order_number, order] : orders_) {
    if (order) rows.Put(RevenueLinesKey(order_number), EncodeOrderRow(*order));
  }
  Reset();
  return {};
}

StoreResult<std::vector<RevenueRow>> RevenueProjection::Range(const ProjectionView& view,
                                                              std::string_view from_day,
                                                              std::string_view to_day) {
  for (std::string_view day : {from_day, to_day}) {
    if (!IsValidDay(day)) {
      return Unexpected(InvalidArgumentError(fmt::format("{:?} is not a day (YYYY-MM-DD)", day)));
    }
  }
  std::vector<RevenueRow> rows;
  if (from_day > to_day) return rows;  // Fixed-width days compare as text like dates.
  const std::string begin = fmt::format("{}{}/", kDayPrefix, from_day);
  const std::string end = fmt::format("{}{}0", kDayPrefix, to_day);  // '0' follows '/'.

  std::optional<Error> failure;
  auto scanned =
      view.Scan(begin, end, /*reverse=*/false, [&](std::string_view key, std::string_view value) {
        // d/YYYY-MM-DD/<currency>
        const size_t currency_begin = kDayPrefix.size() + kDayChars + 1;
        if (key.size() <= currency_begin || key[currency_begin - 1] != '/') {
          failure = CorruptionError(fmt::format("revenue key {:?} is malformed", key));
          return false;
        }
        if (rows.size() == kRangeRowsMax) {
          failure =
              InvalidArgumentError(fmt::format("{}..{} holds more than {} rows: ask for fewer days",
                                               from_day, to_day, kRangeRowsMax));
          return false;
        }
        auto row = DecodeDayRow(key.substr(kDayPrefix.size(), kDayChars),
                                key.substr(currency_begin), value);
        if (!row) {
          failure = std::move(row).error();
          return false;
        }
        rows.push_back(std::move(*row));
        return true;
      });
  if (!scanned) return Unexpected(std::move(scanned).error());
  if (failure) return Unexpected(std::move(*failure));
  return rows;
}

}  // namespace ledger::projections
