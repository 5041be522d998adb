#include "domain/decide.h"

#include <algorithm>
#include <set>
#include <string_view>

#include "base/bytes.h"
#include "base/text.h"
#include "domain/limits.h"
#include "domain/money.h"

namespace ledger::domain {
namespace {

Unexpected<Rejection> Reject(RejectionCode code, std::string detail) {
  return Unexpected(Rejection{code, std::move(detail)});
}

// A text field of a command, named as the API names it ("lines[2].sku"). The required ones are
// the names and identifiers (ids, types, codes, references, modules); `identifier` marks an
// optional one (a refund reference); the others are free text.
struct TextField {
  std::string name;
  std::string_view value;
  bool required = false;
  bool identifier = false;
};

// A character that moves or hides what is printed around it (in valid UTF-8): a C0 control or
// DEL (NUL, newline, escape), a C1 control (U+0080..U+009F: NEL), the line and paragraph
// separators (U+2028, U+2029), and the bidirectional embeddings, overrides and isolates
// (U+202A..U+202E, U+2066..U+2069), which make a name read otherwise than it is.
bool HasControlCharacter(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const auto next = [&](size_t k) {
      return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0;
    };
    if (byte < 0x20 || byte == 0x7f) return true;
    if (byte == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f) return true;
    if (byte == 0xe2 && next(1) == 0x80 && next(2) >= 0xa8 && next(2) <= 0xae) return true;
    if (byte == 0xe2 && next(1) == 0x81 && next(2) >= 0xa6 && next(2) <= 0xa9) return true;
  }
  return false;
}

// Over all fields: first any required one empty, then any not UTF-8 (or, for an identifier,
// holding a control character, which would print, match and be typed otherwise than it looks),
// then any too long, so that the answer does not depend on the order fields are listed in
// within one rule.
std::optional<Rejection> CheckTexts(const std::vector<TextField>& fields) {
  for (const TextField& field : fields) {
    if (field.required && field.value.empty()) {
      return Rejection{RejectionCode::kMissingField, field.name + " is required"};
    }
  }
  for (const TextField& field : fields) {
    if (!IsValidUtf8(field.value)) {
      return Rejection{RejectionCode::kInvalidText, field.name + " is not valid UTF-8"};
    }
    if ((field.required || field.identifier) && HasControlCharacter(field.value)) {
      return Rejection{RejectionCode::kInvalidText, field.name + " holds a control character"};
    }
  }
  for (const TextField& field : fields) {
    if (field.value.size() > kTextBytesMax) {
      return Rejection{RejectionCode::kLimitExceeded,
                       field.name + " is longer than " + std::to_string(kTextBytesMax) + " bytes"};
    }
  }
  return std::nullopt;
}

std::optional<Rejection> CheckTime(std::string_view name, int64_t at_us) {
  if (at_us >= 0 && at_us <= kTimeUsMax) return std::nullopt;
  return Rejection{RejectionCode::kInvalidTime,
                   std::string(name) + " = " + std::to_string(at_us) + " is out of range"};
}

std::optional<Rejection> CheckFailureKind(FailureKind kind) {
  if (IsValidFailureKind(kind)) return std::nullopt;
  return Rejection{RejectionCode::kInvalidFailureKind,
                   "kind " + std::to_string(static_cast<unsigned>(kind))};
}

std::optional<Rejection> CheckStream(const OrderState& state, std::string_view order_number) {
  if (state.order_number.empty() || state.order_number == order_number) return std::nullopt;
  return Rejection{RejectionCode::kStreamMismatch, "the command names " +
                                                       std::string(order_number) +
                                                       ", the stream holds " + state.order_number};
}

std::string FormatAmount(int64_t minor_units, std::string_view currency_code) {
  const std::optional<Currency> currency = FindCurrency(currency_code);
  const std::string amount = currency ? FormatMinorUnits(minor_units, *currency)
                                      : std::to_string(minor_units) + " minor units";
  return amount + " " + std::string(currency_code);
}

// Stream, order and line checks shared by the line commands, in order of precedence.
Result<const LineState*, Rejection> FindLineFor(const OrderState& state,
                                                std::string_view order_number,
                                                std::string_view line_id) {
  if (std::optional<Rejection> rejection = CheckStream(state, order_number)) {
    return Unexpected(std::move(*rejection));
  }
  if (!state.placed()) return Reject(RejectionCode::kOrderNotFound, std::string(order_number));
  const LineState* line = state.FindLine(line_id);
  if (line == nullptr) return Reject(RejectionCode::kUnknownLine, std::string(line_id));
  return line;
}

// What a command about one line of an order is checked for before its line is looked up, in the
// order the checks run: its texts, then `extra` (a rejection computed by the caller), its time,
// and its failure kind when it has one.
struct LineCommandChecks {
  std::vector<TextField> texts;
  std::optional<Rejection> extra;
  std::string_view time_name;
  int64_t time_us = 0;
  std::optional<FailureKind> kind;
};

Result<const LineState*, Rejection> CheckLineCommand(const OrderState& state,
                                                     std::string_view order_number,
                                                     std::string_view line_id,
                                                     LineCommandChecks checks) {
  if (auto rejection = CheckOrderNumber(order_number)) return Unexpected(std::move(*rejection));
  if (auto rejection = CheckTexts(checks.texts)) return Unexpected(std::move(*rejection));
  if (checks.extra) return Unexpected(std::move(*checks.extra));
  if (auto rejection = CheckTime(checks.time_name, checks.time_us)) {
    return Unexpected(std::move(*rejection));
  }
  if (checks.kind) {
    if (auto rejection = CheckFailureKind(*checks.kind)) return Unexpected(std::move(*rejection));
  }
  return FindLineFor(state, order_number, line_id);
}

// ---- PlaceOrder ----

std::vector<TextField> PlacementTexts(const PlaceOrder& command) {
  const Address& address = command.billing_address;
  std::vector<TextField> fields = {
      {"partner", command.partner, true},
      {"user.username", command.user.username, true},
      {"user.email", command.user.email},
      {"currency", command.currency, true},
      {"shipping_method", command.shipping_method},
      {"billing_address.first_name", address.first_name},
      {"billing_address.last_name", address.last_name},
      {"billing_address.line1", address.line1},
      {"billing_address.line2", address.line2},
      {"billing_address.city", address.city},
      {"billing_address.state", address.state},
      {"billing_address.postcode", address.postcode},
      {"billing_address.country", address.country},
  };
  for (size_t i = 0; i < command.lines.size(); ++i) {
    const Line& line = command.lines[i];
    const std::string prefix = "lines[" + std::to_string(i) + "].";
    fields.push_back({prefix + "line_id", line.line_id, true});
    fields.push_back({prefix + "product_type", line.product_type, true});
    fields.push_back({prefix + "sku", line.sku});
    fields.push_back({prefix + "title", line.title});
    for (size_t j = 0; j < line.attributes.size(); ++j) {
      const std::string attribute = prefix + "attributes[" + std::to_string(j) + "].";
      fields.push_back({attribute + "name", line.attributes[j].name, true});
      fields.push_back({attribute + "value", line.attributes[j].value});
    }
  }
  return fields;
}

std::optional<Rejection> CheckPlacementCounts(const PlaceOrder& command) {
  if (command.lines.size() > kLinesMax) {
    return Rejection{
        RejectionCode::kLimitExceeded,
        std::to_string(command.lines.size()) + " lines, at most " + std::to_string(kLinesMax)};
  }
  for (const Line& line : command.lines) {
    if (line.attributes.size() > kAttributesPerLineMax) {
      return Rejection{RejectionCode::kLimitExceeded,
                       "line " + line.line_id + " has " + std::to_string(line.attributes.size()) +
                           " attributes, at most " + std::to_string(kAttributesPerLineMax)};
    }
    if (line.quantity > kQuantityMax) {
      return Rejection{RejectionCode::kLimitExceeded,
                       "line " + line.line_id + " quantity " + std::to_string(line.quantity) +
                           ", at most " + std::to_string(kQuantityMax)};
    }
  }
  // Each Enrollment Code line mints `quantity` codes; quantities are at most kQuantityMax here,
  // so the sum cannot overflow.
  int64_t codes = 0;
  for (const Line& line : command.lines) {
    if (ClassifyProductType(line.product_type) == ProductKind::kEnrollmentCode) {
      codes += std::max<int64_t>(line.quantity, 0);
    }
  }
  if (codes > static_cast<int64_t>(kCodesPerOrderMax)) {
    return Rejection{RejectionCode::kLimitExceeded, "the order's Enrollment Code lines ask for " +
                                                        std::to_string(codes) + " codes, at most " +
                                                        std::to_string(kCodesPerOrderMax)};
  }
  return std::nullopt;
}

// The rules about the basket's shape, from kMissingField to kDuplicateLineId.
std::optional<Rejection> CheckPlacementShape(const PlaceOrder& command) {
  if (std::optional<Rejection> rejection = CheckTexts(PlacementTexts(command))) return rejection;
  if (command.partner.size() > kPartnerBytesMax) {
    return Rejection{RejectionCode::kLimitExceeded,
                     "partner is " + std::to_string(command.partner.size()) + " bytes, at most " +
                         std::to_string(kPartnerBytesMax)};
  }
  for (const Line& line : command.lines) {
    // A line id is a path segment in /v1/orders/{number}/lines/{line_id}/revoke.
    if (line.line_id == "." || line.line_id == "..") {
      return Rejection{RejectionCode::kInvalidText,
                       "line_id '" + line.line_id + "' cannot name a line in a URL path"};
    }
  }
  if (std::optional<Rejection> rejection = CheckPlacementCounts(command)) return rejection;
  if (std::optional<Rejection> rejection = CheckTime("placed_at_us", command.placed_at_us)) {
    return rejection;
  }
  if (!FindCurrency(command.currency)) {
    return Rejection{RejectionCode::kUnknownCurrency, command.currency};
  }
  if (command.lines.empty()) return Rejection{RejectionCode::kEmptyBasket, ""};
  std::set<std::string_view> line_ids;
  for (const Line& line : command.lines) {
    if (!line_ids.insert(line.line_id).second) {
      return Rejection{RejectionCode::kDuplicateLineId, line.line_id};
    }
  }
  return std::nullopt;
}

// The rules about amounts, from kNonPositiveQuantity to kTotalMismatch.
std::optional<Rejection> CheckPlacementAmounts(const PlaceOrder& command) {
  for (const Line& line : command.lines) {
    if (line.quantity <= 0) {
      return Rejection{RejectionCode::kNonPositiveQuantity,
                       "line " + line.line_id + " quantity " + std::to_string(line.quantity)};
    }
  }
  for (const Line& line : command.lines) {
    if (line.unit_price_minor < 0) {
      return Rejection{RejectionCode::kNegativeAmount, "line " + line.line_id + " unit price"};
    }
  }
  if (command.shipping_charge_minor < 0) {
    return Rejection{RejectionCode::kNegativeAmount, "shipping charge"};
  }
  if (command.total_minor < 0) return Rejection{RejectionCode::kNegativeAmount, "total"};

  auto too_large = [](std::optional<int64_t> amount) {
    return !amount || *amount > kAmountMinorMax;
  };
  if (too_large(command.total_minor)) return Rejection{RejectionCode::kAmountOverflow, "total"};
  std::optional<int64_t> sum = command.shipping_charge_minor;
  if (too_large(sum)) return Rejection{RejectionCode::kAmountOverflow, "shipping charge"};
  for (const Line& line : command.lines) {
    const std::optional<int64_t> line_amount =
        CheckedMultiply(line.quantity, line.unit_price_minor);
    if (too_large(line_amount)) {
      return Rejection{RejectionCode::kAmountOverflow, "line " + line.line_id + " amount"};
    }
    sum = CheckedAdd(*sum, *line_amount);
    if (too_large(sum)) return Rejection{RejectionCode::kAmountOverflow, "sum of the lines"};
  }
  if (*sum != command.total_minor) {
    return Rejection{RejectionCode::kTotalMismatch,
                     "total " + FormatAmount(command.total_minor, command.currency) +
                         ", lines plus shipping " + FormatAmount(*sum, command.currency)};
  }
  return std::nullopt;
}

std::optional<Rejection> CheckPayment(const OrderState& state, const PlaceOrder& command) {
  if (command.total_minor == 0) return std::nullopt;  // Free orders skip payment.
  if (state.captures.empty()) {
    return Rejection{RejectionCode::kPaymentMissing,
                     "total " + FormatAmount(command.total_minor, command.currency)};
  }
  const bool any_in_currency =
      std::any_of(state.captures.begin(), state.captures.end(),
                  [&](const CaptureRecord& c) { return c.amount.currency == command.currency; });
  if (!any_in_currency) {
    return Rejection{
        RejectionCode::kCurrencyMismatch,
        "order in " + command.currency + ", captures in " + state.captures.front().amount.currency};
  }
  const int64_t captured_minor = CapturedMinor(state, command.currency);
  if (captured_minor < command.total_minor) {
    return Rejection{RejectionCode::kPaymentShort,
                     "captured " + FormatAmount(captured_minor, command.currency) + ", total " +
                         FormatAmount(command.total_minor, command.currency)};
  }
  return std::nullopt;
}

OrderCreated MakeOrderCreated(const PlaceOrder& command, std::string order_number) {
  return OrderCreated{
      .order_number = std::move(order_number),
      .user = command.user,
      .lines = command.lines,
      .shipping_method = command.shipping_method,
      .shipping_charge_minor = command.shipping_charge_minor,
      .billing_address = command.billing_address,
      .total_minor = command.total_minor,
      .currency = command.currency,
      .partner = command.partner,
      .basket_id = command.basket_id,
      .placed_at_us = command.placed_at_us,
  };
}

// Whether a placement repeats `placed`: the same content, whenever it was sent.
bool SamePlacement(OrderCreated placed, const OrderCreated& candidate) {
  placed.placed_at_us = candidate.placed_at_us;
  return placed == candidate;
}

// ---- Line commands ----

std::vector<TextField> CodeTexts(const std::vector<std::string>& codes) {
  std::vector<TextField> fields;
  for (size_t i = 0; i < codes.size(); ++i) {
    fields.push_back({"codes[" + std::to_string(i) + "]", codes[i], true});
  }
  return fields;
}

std::optional<Rejection> CheckCodes(const std::vector<std::string>& codes) {
  if (codes.size() > kCodesPerLineMax) {
    return Rejection{RejectionCode::kLimitExceeded, std::to_string(codes.size()) + " codes"};
  }
  return std::nullopt;
}

}  // namespace

int64_t NextRetryAtUs(uint32_t retry, bool retryable, int64_t failed_at_us,
                      const RetrySchedule& schedule) {
  if (!retryable || retry == 0 || retry > schedule.retries_max) return 0;
  // Grow the delay step by step, stopping at the cap: no power is ever computed that could
  // overflow, whatever the schedule says.
  const int64_t cap = std::max<int64_t>(schedule.delay_max_us, 0);
  int64_t delay = std::clamp<int64_t>(schedule.first_delay_us, 0, cap);
  const int64_t multiplier = std::max<int64_t>(schedule.multiplier, 1);
  for (uint32_t step = 1; step < retry && delay < cap; ++step) {
    delay = delay > cap / multiplier ? cap : delay * multiplier;
  }
  return std::min(CheckedAdd(failed_at_us, delay).value_or(kTimeUsMax), kTimeUsMax);
}

Decision Decide(const OrderState& state, const Command& command) {
  return std::visit([&state](const auto& c) { return Decide(state, c); }, command);
}

// "." and ".." would be path segments of their own in /v1/orders/{number}, which clients and
// proxies remove from URLs: the number would lead to another resource. Refused for what makes
// or adds to an order; an order numbered so before this rule can still be read and fulfilled.
std::optional<Rejection> CheckNewOrderNumber(std::string_view order_number) {
  if (order_number != "." && order_number != "..") return std::nullopt;
  return Rejection{
      RejectionCode::kInvalidOrderNumber,
      "'" + std::string(order_number) + "' cannot number an order: URLs drop such a path segment"};
}

Decision Decide(const OrderState& state, const CapturePayment& command) {
  if (auto rejection = CheckOrderNumber(command.order_number)) return Unexpected(*rejection);
  if (auto rejection = CheckNewOrderNumber(command.order_number)) return Unexpected(*rejection);
  if (auto rejection = CheckTexts({{"processor", command.processor, true},
                                   {"reference", command.reference, true},
                                   {"amount.currency", command.amount.currency, true},
                                   {"card_type", command.card_type},
                                   {"card_last_digits", command.card_last_digits}})) {
    return Unexpected(*rejection);
  }
  if (auto rejection = CheckTime("captured_at_us", command.captured_at_us)) {
    return Unexpected(*rejection);
  }
  if (!FindCurrency(command.amount.currency)) {
    return Reject(RejectionCode::kUnknownCurrency, command.amount.currency);
  }
  if (command.amount.minor_units <= 0) {
    return Reject(RejectionCode::kCaptureNotPositive,
                  FormatAmount(command.amount.minor_units, command.amount.currency));
  }
  if (command.amount.minor_units > kAmountMinorMax) {
    return Reject(RejectionCode::kAmountOverflow, "captured amount");
  }
  if (auto rejection = CheckStream(state, command.order_number)) return Unexpected(*rejection);

  for (const CaptureRecord& capture : state.captures) {
    if (capture.processor != command.processor || capture.reference != command.reference) {
      continue;
    }
    if (capture.amount == command.amount && capture.card_type == command.card_type &&
        capture.card_last_digits == command.card_last_digits) {
      return std::vector<Event>{};  // The processor reported it again.
    }
    return Reject(RejectionCode::kCaptureReferenceReused,
                  command.processor + " " + command.reference + " captured " +
                      FormatAmount(capture.amount.minor_units, capture.amount.currency));
  }
  if (state.captures.size() >= kCapturesMax) {
    return Reject(RejectionCode::kLimitExceeded,
                  "the order has " + std::to_string(kCapturesMax) + " captures already");
  }
  return std::vector<Event>{PaymentCaptured{
      .order_number = command.order_number,
      .processor = command.processor,
      .reference = command.reference,
      .amount = command.amount,
      .card_type = command.card_type,
      .card_last_digits = command.card_last_digits,
      .captured_at_us = command.captured_at_us,
      .excess = state.placed(),
  }};
}

Decision Decide(const OrderState& state, const PlaceOrder& command) {
  Result<std::string, Rejection> order_number = ResolveOrderNumber(command);
  if (!order_number) return Unexpected(order_number.error());
  if (auto rejection = CheckNewOrderNumber(*order_number)) return Unexpected(*rejection);
  if (auto rejection = CheckPlacementShape(command)) return Unexpected(*rejection);
  if (auto rejection = CheckPlacementAmounts(command)) return Unexpected(*rejection);
  if (auto rejection = CheckStream(state, *order_number)) return Unexpected(*rejection);

  OrderCreated created = MakeOrderCreated(command, *order_number);
  if (std::optional<OrderCreated> placed = PlacedOrder(state)) {
    if (SamePlacement(std::move(*placed), created)) return std::vector<Event>{};
    return Reject(RejectionCode::kDuplicateOrderAttempt,
                  "there is already an order with number " + *order_number);
  }
  if (auto rejection = CheckPayment(state, command)) return Unexpected(*rejection);
  return std::vector<Event>{std::move(created), PostCheckout{*order_number, command.synchronous}};
}

Decision Decide(const OrderState& state, const RecordLineFulfilled& command) {
  std::vector<TextField> texts = CodeTexts(command.codes);
  texts.insert(texts.begin(), {{"line_id", command.line_id, true},
                               {"module", command.module, true},
                               {"external_reference", command.external_reference}});
  Result<const LineState*, Rejection> found =
      CheckLineCommand(state, command.order_number, command.line_id,
                       {.texts = std::move(texts),
                        .extra = CheckCodes(command.codes),
                        .time_name = "fulfilled_at_us",
                        .time_us = command.fulfilled_at_us});
  if (!found) return Unexpected(found.error());
  const LineState& line = **found;

  if (line.status == LineStatus::kComplete) return std::vector<Event>{};  // Fulfilled once only.
  if (!IsFulfillable(line.status)) return Reject(RejectionCode::kLineRevoked, LineDetail(line));
  return std::vector<Event>{LineFulfilled{
      .order_number = command.order_number,
      .line_id = command.line_id,
      .module = command.module,
      .attempt = line.attempts + 1,
      .external_reference = command.external_reference,
      .codes = command.codes,
      .fulfilled_at_us = command.fulfilled_at_us,
  }};
}

Decision Decide(const OrderState& state, const RecordFulfillmentFailed& command) {
  Result<const LineState*, Rejection> found =
      CheckLineCommand(state, command.order_number, command.line_id,
                       {.texts = {{"line_id", command.line_id, true},
                                  {"module", command.module, true},
                                  {"message", command.message}},
                        .time_name = "failed_at_us",
                        .time_us = command.failed_at_us,
                        .kind = command.kind});
  if (!found) return Unexpected(found.error());
  const LineState& line = **found;

  if (line.status == LineStatus::kComplete) {
    return Reject(RejectionCode::kLineAlreadyComplete, LineDetail(line));
  }
  if (!IsFulfillable(line.status)) return Reject(RejectionCode::kLineRevoked, LineDetail(line));
  if (line.attempts >= kAttemptsMax) {
    return Reject(RejectionCode::kLimitExceeded, "line " + line.line.line_id + " has failed " +
                                                     std::to_string(kAttemptsMax) + " times");
  }
  const uint32_t attempt = line.attempts + 1;
  return std::vector<Event>{FulfillmentFailed{
      .order_number = command.order_number,
      .line_id = command.line_id,
      .module = command.module,
      .attempt = attempt,
      .kind = command.kind,
      .message = command.message,
      .retryable = command.retryable,
      // The next automatic retry's number: manual retries in between do not count.
      .next_retry_at_us = NextRetryAtUs(line.automatic_retries + 1, command.retryable,
                                        command.failed_at_us, command.retry),
      .failed_at_us = command.failed_at_us,
  }};
}

Decision Decide(const OrderState& state, const RequestFulfillmentRetry& command) {
  if (auto rejection = CheckOrderNumber(command.order_number)) return Unexpected(*rejection);
  std::vector<TextField> texts = {{"requested_by", command.requested_by, true},
                                  {"reason", command.reason}};
  for (size_t i = 0; i < command.line_ids.size(); ++i) {
    texts.push_back({"line_ids[" + std::to_string(i) + "]", command.line_ids[i], true});
  }
  if (auto rejection = CheckTexts(texts)) return Unexpected(*rejection);
  if (command.line_ids.size() > kLinesMax) {
    return Reject(RejectionCode::kLimitExceeded,
                  std::to_string(command.line_ids.size()) + " line ids");
  }
  if (auto rejection = CheckTime("requested_at_us", command.requested_at_us)) {
    return Unexpected(*rejection);
  }
  if (auto rejection = CheckStream(state, command.order_number)) return Unexpected(*rejection);
  if (!state.placed()) return Reject(RejectionCode::kOrderNotFound, command.order_number);

  std::vector<std::string> line_ids;
  if (command.line_ids.empty()) {
    line_ids = FulfillableLines(state);
    if (line_ids.empty()) {
      return Reject(
          RejectionCode::kNothingToFulfill,
          "order " + command.order_number + " is " + std::string(OrderStatusName(state.status)));
    }
  } else {
    for (const std::string& line_id : command.line_ids) {
      const LineState* line = state.FindLine(line_id);
      if (line == nullptr) return Reject(RejectionCode::kUnknownLine, line_id);
      if (!IsFulfillable(line->status)) {
        return Reject(RejectionCode::kLineNotFulfillable, LineDetail(*line));
      }
      // A line named twice is retried once.
      if (std::find(line_ids.begin(), line_ids.end(), line_id) == line_ids.end()) {
        line_ids.push_back(line_id);
      }
    }
  }
  return std::vector<Event>{FulfillmentRetryRequested{
      .order_number = command.order_number,
      .requested_by = command.requested_by,
      .reason = command.reason,
      .line_ids = std::move(line_ids),
      .automatic = command.automatic,
      .requested_at_us = command.requested_at_us,
  }};
}

Decision Decide(const OrderState& state, const RecordLineRevoked& command) {
  Result<const LineState*, Rejection> found =
      CheckLineCommand(state, command.order_number, command.line_id,
                       {.texts = {{"line_id", command.line_id, true},
                                  {"module", command.module, true},
                                  {"refund_reference", command.refund_reference, false, true}},
                        .time_name = "revoked_at_us",
                        .time_us = command.revoked_at_us});
  if (!found) return Unexpected(found.error());
  const LineState& line = **found;

  if (line.status == LineStatus::kRevoked) return std::vector<Event>{};  // Revoked once only.
  if (!IsRevocable(line.status)) {
    return Reject(RejectionCode::kLineNotFulfilled, LineDetail(line));
  }
  return std::vector<Event>{LineRevoked{
      .order_number = command.order_number,
      .line_id = command.line_id,
      .module = command.module,
      .refund_reference = command.refund_reference,
      .revoked_at_us = command.revoked_at_us,
  }};
}

Decision Decide(const OrderState& state, const RecordRevocationFailed& command) {
  Result<const LineState*, Rejection> found =
      CheckLineCommand(state, command.order_number, command.line_id,
                       {.texts = {{"line_id", command.line_id, true},
                                  {"module", command.module, true},
                                  {"message", command.message},
                                  {"refund_reference", command.refund_reference, false, true}},
                        .time_name = "failed_at_us",
                        .time_us = command.failed_at_us,
                        .kind = command.kind});
  if (!found) return Unexpected(found.error());
  const LineState& line = **found;

  if (line.status == LineStatus::kRevoked) {
    return Reject(RejectionCode::kLineRevoked, LineDetail(line));
  }
  if (!IsRevocable(line.status)) {
    return Reject(RejectionCode::kLineNotFulfilled, LineDetail(line));
  }
  const uint32_t attempt = NextRevocationAttempt(line);
  return std::vector<Event>{RevocationFailed{
      .order_number = command.order_number,
      .line_id = command.line_id,
      .module = command.module,
      .kind = command.kind,
      .message = command.message,
      .refund_reference = command.refund_reference,
      .failed_at_us = command.failed_at_us,
      .attempt = attempt,
      .retryable = command.retryable,
      // As for fulfillment: the next automatic retry's number, ops' requests not counted.
      .next_retry_at_us = NextRetryAtUs(line.automatic_revocation_retries + 1, command.retryable,
                                        command.failed_at_us, command.retry),
  }};
}

Decision Decide(const OrderState& state, const RequestRevocation& command) {
  Result<const LineState*, Rejection> found =
      CheckLineCommand(state, command.order_number, command.line_id,
                       {.texts = {{"line_id", command.line_id, true},
                                  {"refund_reference", command.refund_reference, false, true},
                                  {"requested_by", command.requested_by, true}},
                        .time_name = "requested_at_us",
                        .time_us = command.requested_at_us});
  if (!found) return Unexpected(found.error());
  const LineState& line = **found;

  if (line.revocation_requested && !command.refund_reference.empty() &&
      command.refund_reference != line.refund_reference) {
    // Not the same request again: the pending one would drop this refund reference unsaid. (One
    // without a reference is the pending one asked again.)
    return Reject(RejectionCode::kRevocationPending, "line " + line.line.line_id +
                                                         " is being revoked for refund \"" +
                                                         line.refund_reference + "\"");
  }
  if (line.status == LineStatus::kRevoked || line.revocation_requested) {
    return std::vector<Event>{};  // Revoked, or on its way: asked once.
  }
  if (!IsRevocable(line.status)) {
    // A refund of a line not fulfilled yet is refused; the line may still be fulfilled (by an
    // attempt in flight or a retry to come), so the answer says when and what to do.
    std::string detail = LineDetail(line);
    if (line.status == LineStatus::kOpen && !state.post_checkout_requested) {
      detail += "; its fulfillment has not been asked for (no post_checkout)";
    } else if (line.retry_requested || line.status == LineStatus::kOpen) {
      detail += "; an attempt is on its way, and the line may be fulfilled by it";
    } else if (line.next_retry_at_us > 0) {
      detail +=
          "; its automatic retry at " + FormatRfc3339(line.next_retry_at_us) + " may fulfill it";
    } else {
      detail += "; no retry is scheduled, so it stays unfulfilled unless retried";
    }
    return Reject(RejectionCode::kLineNotFulfilled, detail + ": revoke it once it is Complete");
  }
  // Asking again for a line whose revocation failed, without a reference, is the same refund
  // asked again: it keeps the one it failed with (an empty one would unlink the refund). Another
  // reference is ops' word and replaces it.
  const std::string& refund_reference =
      command.refund_reference.empty() && line.status == LineStatus::kRevocationError
          ? line.refund_reference
          : command.refund_reference;
  return std::vector<Event>{RevocationRequested{
      .order_number = command.order_number,
      .line_id = command.line_id,
      .refund_reference = refund_reference,
      .requested_by = command.requested_by,
      .requested_at_us = command.requested_at_us,
      .automatic = command.automatic,
  }};
}

}  // namespace ledger::domain
