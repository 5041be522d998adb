#include "server/api_json.h"

#include <fmt/format.h>

#include <ctime>
#include <variant>

#include "base/bytes.h"
#include "base/text.h"
#include "domain/money.h"
#include "domain/status.h"
#include "eventstore/event_codec.h"

namespace ledger::server {

namespace json = boost::json;

std::string FormatTime(int64_t time_us) {
  if (time_us <= 0) return "";
  return FormatRfc3339(time_us);
}

json::value TimeValue(int64_t time_us) {
  if (time_us <= 0) return nullptr;
  return json::value(FormatTime(time_us));
}

json::value AmountValue(int64_t minor_units, std::string_view currency) {
  auto known = domain::FindCurrency(currency);
  if (!known) return json::value(std::to_string(minor_units));
  return json::value(domain::FormatMinorUnits(minor_units, *known));
}

namespace {

json::object UserJson(const domain::User& user) {
  return {{"id", user.id}, {"username", user.username}, {"email", user.email}};
}

json::object AddressJson(const domain::Address& address) {
  return {{"first_name", address.first_name},
          {"last_name", address.last_name},
          {"line1", address.line1},
          {"line2", address.line2},
          {"city", address.city},
          {"state", address.state},
          {"postcode", address.postcode},
          {"country", address.country}};
}

json::object LineJson(const domain::Line& line, std::string_view currency) {
  json::object attributes;
  for (const domain::Attribute& attribute : line.attributes) {
    attributes[attribute.name] = attribute.value;
  }
  return {{"line_id", line.line_id},
          {"product_type", line.product_type},
          {"sku", line.sku},
          {"title", line.title},
          {"quantity", line.quantity},
          {"unit_price", AmountValue(line.unit_price_minor, currency)},
          {"attributes", std::move(attributes)}};
}

}  // namespace

json::array StringsJson(const std::vector<std::string>& strings) {
  json::array array;
  for (const std::string& text : strings) array.emplace_back(text);
  return array;
}

// The domain event as JSON: its fields, amounts as decimal strings, times as RFC 3339.
json::object EventJson(const domain::Event& event) {
  using namespace domain;
  return std::visit(
      [](const auto& e) -> json::object {
        using T = std::decay_t<decltype(e)>;
        json::object data{{"order_number", e.order_number}};
        if constexpr (std::is_same_v<T, PaymentCaptured>) {
          data["processor"] = e.processor;
          data["reference"] = e.reference;
          data["amount"] = AmountValue(e.amount.minor_units, e.amount.currency);
          data["currency"] = e.amount.currency;
          data["card_type"] = e.card_type;
          data["card_last_digits"] = e.card_last_digits;
          data["captured_at"] = TimeValue(e.captured_at_us);
          data["excess"] = e.excess;
        } else if constexpr (std::is_same_v<T, OrderCreated>) {
          data["user"] = UserJson(e.user);
          json::array lines;
          for (const Line& line : e.lines) lines.emplace_back(LineJson(line, e.currency));
          data["lines"] = std::move(lines);
          data["shipping_method"] = e.shipping_method;
          data["shipping_charge"] = AmountValue(e.shipping_charge_minor, e.currency);
          data["billing_address"] = AddressJson(e.billing_address);
          data["order_total"] = AmountValue(e.total_minor, e.currency);
          data["currency"] = e.currency;
          data["partner"] = e.partner;
          data["basket_id"] = e.basket_id;
          data["placed_at"] = TimeValue(e.placed_at_us);
        } else if constexpr (std::is_same_v<T, PostCheckout>) {
          data["synchronous"] = e.synchronous;
        } else if constexpr (std::is_same_v<T, LineFulfilled>) {
          data["line_id"] = e.line_id;
          data["module"] = e.module;
          data["attempt"] = e.attempt;
          data["external_reference"] = e.external_reference;
          data["codes"] = StringsJson(e.codes);
          data["fulfilled_at"] = TimeValue(e.fulfilled_at_us);
        } else if constexpr (std::is_same_v<T, FulfillmentFailed>) {
          data["line_id"] = e.line_id;
          data["module"] = e.module;
          data["attempt"] = e.attempt;
          data["kind"] = FailureKindName(e.kind);
          data["message"] = e.message;
          data["retryable"] = e.retryable;
          data["next_retry_at"] = TimeValue(e.next_retry_at_us);
          data["failed_at"] = TimeValue(e.failed_at_us);
        } else if constexpr (std::is_same_v<T, FulfillmentRetryRequested>) {
          data["requested_by"] = e.requested_by;
          data["reason"] = e.reason;
          data["line_ids"] = StringsJson(e.line_ids);
          data["automatic"] = e.automatic;
          data["requested_at"] = TimeValue(e.requested_at_us);
        } else if constexpr (std::is_same_v<T, LineRevoked>) {
          data["line_id"] = e.line_id;
          data["module"] = e.module;
          data["refund_reference"] = e.refund_reference;
          data["revoked_at"] = TimeValue(e.revoked_at_us);
        } else if constexpr (std::is_same_v<T, RevocationFailed>) {
          data["line_id"] = e.line_id;
          data["module"] = e.module;
          data["kind"] = FailureKindName(e.kind);
          data["message"] = e.message;
          data["refund_reference"] = e.refund_reference;
          data["failed_at"] = TimeValue(e.failed_at_us);
        }
        return data;
      },
      event);
}

json::object LineStateJson(const domain::LineState& line, std::string_view currency) {
  json::object object = LineJson(line.line, currency);
  object["status"] = domain::LineStatusName(line.status);
  object["attempts"] = line.attempts;
  object["module"] = line.module;
  if (line.last_error_kind) {
    object["last_error"] = json::object{{"kind", domain::FailureKindName(*line.last_error_kind)},
                                        {"message", line.last_error_message}};
  } else {
    object["last_error"] = nullptr;
  }
  object["next_retry_at"] = TimeValue(line.next_retry_at_us);
  object["retry_requested"] = line.retry_requested;
  object["external_reference"] = line.external_reference;
  object["codes"] = StringsJson(line.codes);
  object["refund_reference"] = line.refund_reference;
  return object;
}

// An order as its state says; `position` is that of the order's last event reflected.
json::object OrderJson(const domain::OrderState& state, uint64_t position) {
  json::object order;
  order["order_number"] = state.order_number;
  order["position"] = position;
  order["placed"] = state.placed();
  order["status"] = state.placed() ? domain::OrderStatusName(state.status) : "Not placed";
  if (state.placement) {
    const domain::OrderCreated& placed = *state.placement;
    const std::string& currency = placed.currency;
    order["partner"] = placed.partner;
    order["basket_id"] = placed.basket_id;
    order["user"] = UserJson(placed.user);
    order["currency"] = currency;
    order["order_total"] = AmountValue(placed.total_minor, currency);
    order["shipping_method"] = placed.shipping_method;
    order["shipping_charge"] = AmountValue(placed.shipping_charge_minor, currency);
    order["billing_address"] = AddressJson(placed.billing_address);
    order["placed_at"] = TimeValue(placed.placed_at_us);
    order["amounts"] =
        json::object{{"total", AmountValue(state.amounts.total_minor, currency)},
                     {"captured", AmountValue(state.amounts.captured_minor, currency)},
                     {"due", AmountValue(state.amounts.due_minor, currency)},
                     {"overpaid", AmountValue(state.amounts.overpaid_minor, currency)},
                     {"refunded", AmountValue(state.amounts.refunded_minor, currency)}};
    json::array lines;
    for (const domain::LineState& line : state.lines) {
      lines.emplace_back(LineStateJson(line, currency));
    }
    order["lines"] = std::move(lines);
  }
  json::array captures;
  for (const domain::CaptureRecord& capture : state.captures) {
    captures.emplace_back(
        json::object{{"processor", capture.processor},
                     {"reference", capture.reference},
                     {"amount", AmountValue(capture.amount.minor_units, capture.amount.currency)},
                     {"currency", capture.amount.currency},
                     {"card_type", capture.card_type},
                     {"card_last_digits", capture.card_last_digits},
                     {"captured_at", TimeValue(capture.captured_at_us)},
                     {"excess", capture.excess}});
  }
  order["captures"] = std::move(captures);
  return order;
}

// A recorded event of the log with its decoded data; kCorruption when it does not decode.
Result<json::object, eventstore::Error> RecordJson(const eventstore::RecordedEvent& record) {
  auto decoded = eventstore::DecodeEvent(record);
  if (!decoded) return Unexpected(decoded.error());
  return json::object{{"position", record.position},
                      {"stream", record.stream},
                      {"version", record.version},
                      {"type", record.event_type},
                      {"recorded_at", FormatTime(record.recorded_at_us)},
                      {"actor", record.actor},
                      {"hash", ToHex(std::span<const uint8_t>(record.hash))},
                      {"data", EventJson(*decoded)}};
}

}  // namespace ledger::server
