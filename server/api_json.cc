#include "server/api_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <iterator>
#include <span>
#include <variant>

#include "base/assert.h"
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
          data["attempt"] = e.attempt;
          data["kind"] = FailureKindName(e.kind);
          data["message"] = e.message;
          data["refund_reference"] = e.refund_reference;
          data["retryable"] = e.retryable;
          data["next_retry_at"] = TimeValue(e.next_retry_at_us);
          data["failed_at"] = TimeValue(e.failed_at_us);
        } else if constexpr (std::is_same_v<T, RevocationRequested>) {
          data["line_id"] = e.line_id;
          data["refund_reference"] = e.refund_reference;
          data["requested_by"] = e.requested_by;
          data["requested_at"] = TimeValue(e.requested_at_us);
          data["automatic"] = e.automatic;
        }
        return data;
      },
      event);
}

json::object LineStateJson(const domain::LineState& line, std::string_view currency) {
  json::object object = LineJson(line.line, currency);
  object["status"] = domain::LineStatusName(line.status);
  object["attempts"] = line.attempts;
  object["automatic_retries"] = line.automatic_retries;
  object["automatic_revocation_retries"] = line.automatic_revocation_retries;
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
  object["revocation_requested"] = line.revocation_requested;
  object["revocation_failures"] = line.revocation_failures;
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
    json::object amounts{{"total", AmountValue(state.amounts.total_minor, currency)},
                         {"captured", AmountValue(state.amounts.captured_minor, currency)},
                         {"due", AmountValue(state.amounts.due_minor, currency)},
                         {"overpaid", AmountValue(state.amounts.overpaid_minor, currency)},
                         {"refunded", AmountValue(state.amounts.refunded_minor, currency)}};
    // Captures in a currency the order does not use count in none of the amounts above, and
    // all of them are to hand back: listed here, not left for a reader to find in `captures`.
    json::array other_currencies;
    for (const domain::Money& captured : domain::CapturedInOtherCurrencies(state)) {
      other_currencies.emplace_back(
          json::object{{"currency", captured.currency},
                       {"captured", AmountValue(captured.minor_units, captured.currency)}});
    }
    amounts["other_currencies"] = std::move(other_currencies);
    order["amounts"] = std::move(amounts);
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

namespace {

// What JSON text a byte of a string becomes, as in Boost.JSON's serializer: 0 for the byte
// itself, 'u' for \u00XX, otherwise the letter after the backslash.
constexpr std::array<char, 256> MakeEscapes() {
  std::array<char, 256> escapes{};
  for (size_t c = 0; c < 0x20; ++c) escapes[c] = 'u';
  escapes['\b'] = 'b';
  escapes['\t'] = 't';
  escapes['\n'] = 'n';
  escapes['\f'] = 'f';
  escapes['\r'] = 'r';
  escapes['"'] = '"';
  escapes['\\'] = '\\';
  return escapes;
}

constexpr std::array<char, 256> kEscapes = MakeEscapes();
constexpr char kHexDigits[] = "0123456789abcdef";

// Writes JSON text as boost::json::serialize writes the same tree: no whitespace, members in the
// order written, integers in decimal. The caller writes a key before each member's value; the
// writer places the commas.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void BeginObject() { Begin('{'); }
  void EndObject() { End('}'); }
  void BeginArray() { Begin('['); }
  void EndArray() { End(']'); }

  // A key of the API's own, which needs no escaping.
  void Key(std::string_view key) {
    Separate();
    out_ += '"';
    out_.append(key);
    out_.append("\":", 2);
    after_key_ = true;
  }
  // A key from the data (an attribute's name).
  void EscapedKey(std::string_view key) {
    Separate();
    AppendString(key);
    out_ += ':';
    after_key_ = true;
  }
  void String(std::string_view text) {
    Separate();
    AppendString(text);
  }
  void Int(int64_t number) { Number(number); }
  void UInt(uint64_t number) { Number(number); }
  void Bool(bool value) {
    Separate();
    out_.append(value ? "true" : "false");
  }
  void Null() {
    Separate();
    out_.append("null");
  }
  // As TimeValue: null when not set.
  void Time(int64_t time_us) {
    if (time_us <= 0) return Null();
    Separate();
    out_ += '"';
    AppendTime(time_us);
    out_ += '"';
  }
  // As FormatTime: "" when not set.
  void TimeString(int64_t time_us) {
    Separate();
    out_ += '"';
    if (time_us > 0) AppendTime(time_us);
    out_ += '"';
  }
  // As AmountValue.
  void Amount(int64_t minor_units, std::string_view currency) {
    auto known = domain::FindCurrency(currency);
    if (!known) return String(std::to_string(minor_units));
    String(domain::FormatMinorUnits(minor_units, *known));
  }
  void Hex(std::span<const uint8_t> bytes) {
    Separate();
    out_ += '"';
    const size_t at = out_.size();
    out_.resize(at + 2 * bytes.size());
    char* hex = out_.data() + at;
    for (const uint8_t byte : bytes) {
      *hex++ = kHexDigits[byte >> 4];
      *hex++ = kHexDigits[byte & 0x0f];
    }
    out_ += '"';
  }
  void Strings(const std::vector<std::string>& strings) {
    BeginArray();
    for (const std::string& text : strings) String(text);
    EndArray();
  }

 private:
  // Deeper than any event's JSON (record, data, lines, line, attributes).
  static constexpr size_t kDepthMax = 8;

  void Begin(char bracket) {
    Separate();
    out_ += bracket;
    LEDGER_ASSERT(depth_ + 1 < kDepthMax, "JSON nested too deep");
    first_[++depth_] = true;
  }
  void End(char bracket) {
    LEDGER_ASSERT(depth_ > 0, "JSON closed more than opened");
    --depth_;
    out_ += bracket;
  }
  // Before a value or a key: a comma unless it is the first in its object or array, or the value
  // of the key just written.
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_[depth_]) out_ += ',';
    first_[depth_] = false;
  }
  template <typename Integer>
  void Number(Integer number) {
    Separate();
    char text[24];
    const auto written = std::to_chars(std::begin(text), std::end(text), number);
    out_.append(text, written.ptr);
  }
  void AppendString(std::string_view text) {
    out_ += '"';
    size_t run = 0;  // Start of the bytes not yet copied.
    for (size_t i = 0; i < text.size(); ++i) {
      const char escape = kEscapes[static_cast<unsigned char>(text[i])];
      if (escape == 0) [[likely]] {
        continue;
      }
      out_.append(text.data() + run, i - run);
      run = i + 1;
      out_ += '\\';
      out_ += escape;
      if (escape == 'u') {
        const auto byte = static_cast<unsigned char>(text[i]);
        out_.append("00");
        out_ += kHexDigits[byte >> 4];
        out_ += kHexDigits[byte & 0x0f];
      }
    }
    out_.append(text.data() + run, text.size() - run);
    out_ += '"';
  }
  // "2026-11-22T12:00:00.000000Z", as FormatRfc3339, without the C library's time zone lock:
  // the civil date from the day number (H. Hinnant's days-to-civil algorithm). Years past 9999
  // take FormatRfc3339 itself.
  void AppendTime(int64_t time_us) {
    constexpr int64_t kYear10000_us = 253'402'300'800'000'000;
    if (time_us >= kYear10000_us) {
      out_.append(FormatRfc3339(time_us));
      return;
    }
    const int64_t seconds = time_us / 1'000'000;
    const int64_t micros = time_us % 1'000'000;
    const int64_t days = seconds / 86'400;
    const int64_t second_of_day = seconds % 86'400;
    const int64_t shifted = days + 719'468;  // Days since 0000-03-01.
    const int64_t era = shifted / 146'097;
    const int64_t day_of_era = shifted - era * 146'097;
    const int64_t year_of_era =
        (day_of_era - day_of_era / 1'460 + day_of_era / 36'524 - day_of_era / 146'096) / 365;
    const int64_t day_of_year =
        day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    const int64_t month_index = (5 * day_of_year + 2) / 153;  // From March.
    const int64_t day = day_of_year - (153 * month_index + 2) / 5 + 1;
    const int64_t month = month_index < 10 ? month_index + 3 : month_index - 9;
    const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
    char text[] = "0000-00-00T00:00:00.000000Z";
    auto digits = [&text](size_t at, size_t count, int64_t value) {
      for (size_t i = count; i-- > 0;) {
        text[at + i] = static_cast<char>('0' + value % 10);
        value /= 10;
      }
    };
    digits(0, 4, year);
    digits(5, 2, month);
    digits(8, 2, day);
    digits(11, 2, second_of_day / 3'600);
    digits(14, 2, second_of_day / 60 % 60);
    digits(17, 2, second_of_day % 60);
    digits(20, 6, micros);
    out_.append(text, sizeof(text) - 1);
  }

  std::string& out_;
  size_t depth_ = 0;
  std::array<bool, kDepthMax> first_{true};
  bool after_key_ = false;
};

void WriteUser(JsonWriter& writer, const domain::User& user) {
  writer.BeginObject();
  writer.Key("id");
  writer.Int(user.id);
  writer.Key("username");
  writer.String(user.username);
  writer.Key("email");
  writer.String(user.email);
  writer.EndObject();
}

void WriteAddress(JsonWriter& writer, const domain::Address& address) {
  writer.BeginObject();
  for (const auto& [key, value] :
       {std::pair<std::string_view, const std::string&>{"first_name", address.first_name},
        {"last_name", address.last_name},
        {"line1", address.line1},
        {"line2", address.line2},
        {"city", address.city},
        {"state", address.state},
        {"postcode", address.postcode},
        {"country", address.country}}) {
    writer.Key(key);
    writer.String(value);
  }
  writer.EndObject();
}

// As LineJson. Attributes go through a JSON object there, so a name that repeats keeps the place
// of its first appearance and the value of its last.
void WriteLine(JsonWriter& writer, const domain::Line& line, std::string_view currency) {
  writer.BeginObject();
  writer.Key("line_id");
  writer.String(line.line_id);
  writer.Key("product_type");
  writer.String(line.product_type);
  writer.Key("sku");
  writer.String(line.sku);
  writer.Key("title");
  writer.String(line.title);
  writer.Key("quantity");
  writer.Int(line.quantity);
  writer.Key("unit_price");
  writer.Amount(line.unit_price_minor, currency);
  writer.Key("attributes");
  writer.BeginObject();
  const std::vector<domain::Attribute>& attributes = line.attributes;
  for (size_t i = 0; i < attributes.size(); ++i) {
    auto same_name = [&](const domain::Attribute& other) {
      return other.name == attributes[i].name;
    };
    if (std::any_of(attributes.begin(), attributes.begin() + static_cast<ptrdiff_t>(i),
                    same_name)) {
      continue;
    }
    const auto last = std::find_if(attributes.rbegin(), attributes.rend(), same_name);
    writer.EscapedKey(attributes[i].name);
    writer.String(last->value);
  }
  writer.EndObject();
  writer.EndObject();
}

// As EventJson.
void WriteEvent(JsonWriter& writer, const domain::Event& event) {
  using namespace domain;
  writer.BeginObject();
  std::visit(
      [&writer](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        writer.Key("order_number");
        writer.String(e.order_number);
        if constexpr (std::is_same_v<T, PaymentCaptured>) {
          writer.Key("processor");
          writer.String(e.processor);
          writer.Key("reference");
          writer.String(e.reference);
          writer.Key("amount");
          writer.Amount(e.amount.minor_units, e.amount.currency);
          writer.Key("currency");
          writer.String(e.amount.currency);
          writer.Key("card_type");
          writer.String(e.card_type);
          writer.Key("card_last_digits");
          writer.String(e.card_last_digits);
          writer.Key("captured_at");
          writer.Time(e.captured_at_us);
          writer.Key("excess");
          writer.Bool(e.excess);
        } else if constexpr (std::is_same_v<T, OrderCreated>) {
          writer.Key("user");
          WriteUser(writer, e.user);
          writer.Key("lines");
          writer.BeginArray();
          for (const Line& line : e.lines) WriteLine(writer, line, e.currency);
          writer.EndArray();
          writer.Key("shipping_method");
          writer.String(e.shipping_method);
          writer.Key("shipping_charge");
          writer.Amount(e.shipping_charge_minor, e.currency);
          writer.Key("billing_address");
          WriteAddress(writer, e.billing_address);
          writer.Key("order_total");
          writer.Amount(e.total_minor, e.currency);
          writer.Key("currency");
          writer.String(e.currency);
          writer.Key("partner");
          writer.String(e.partner);
          writer.Key("basket_id");
          writer.Int(e.basket_id);
          writer.Key("placed_at");
          writer.Time(e.placed_at_us);
        } else if constexpr (std::is_same_v<T, PostCheckout>) {
          writer.Key("synchronous");
          writer.Bool(e.synchronous);
        } else if constexpr (std::is_same_v<T, LineFulfilled>) {
          writer.Key("line_id");
          writer.String(e.line_id);
          writer.Key("module");
          writer.String(e.module);
          writer.Key("attempt");
          writer.UInt(e.attempt);
          writer.Key("external_reference");
          writer.String(e.external_reference);
          writer.Key("codes");
          writer.Strings(e.codes);
          writer.Key("fulfilled_at");
          writer.Time(e.fulfilled_at_us);
        } else if constexpr (std::is_same_v<T, FulfillmentFailed>) {
          writer.Key("line_id");
          writer.String(e.line_id);
          writer.Key("module");
          writer.String(e.module);
          writer.Key("attempt");
          writer.UInt(e.attempt);
          writer.Key("kind");
          writer.String(FailureKindName(e.kind));
          writer.Key("message");
          writer.String(e.message);
          writer.Key("retryable");
          writer.Bool(e.retryable);
          writer.Key("next_retry_at");
          writer.Time(e.next_retry_at_us);
          writer.Key("failed_at");
          writer.Time(e.failed_at_us);
        } else if constexpr (std::is_same_v<T, FulfillmentRetryRequested>) {
          writer.Key("requested_by");
          writer.String(e.requested_by);
          writer.Key("reason");
          writer.String(e.reason);
          writer.Key("line_ids");
          writer.Strings(e.line_ids);
          writer.Key("automatic");
          writer.Bool(e.automatic);
          writer.Key("requested_at");
          writer.Time(e.requested_at_us);
        } else if constexpr (std::is_same_v<T, LineRevoked>) {
          writer.Key("line_id");
          writer.String(e.line_id);
          writer.Key("module");
          writer.String(e.module);
          writer.Key("refund_reference");
          writer.String(e.refund_reference);
          writer.Key("revoked_at");
          writer.Time(e.revoked_at_us);
        } else if constexpr (std::is_same_v<T, RevocationFailed>) {
          writer.Key("line_id");
          writer.String(e.line_id);
          writer.Key("module");
          writer.String(e.module);
          writer.Key("attempt");
          writer.UInt(e.attempt);
          writer.Key("kind");
          writer.String(FailureKindName(e.kind));
          writer.Key("message");
          writer.String(e.message);
          writer.Key("refund_reference");
          writer.String(e.refund_reference);
          writer.Key("retryable");
          writer.Bool(e.retryable);
          writer.Key("next_retry_at");
          writer.Time(e.next_retry_at_us);
          writer.Key("failed_at");
          writer.Time(e.failed_at_us);
        } else if constexpr (std::is_same_v<T, RevocationRequested>) {
          writer.Key("line_id");
          writer.String(e.line_id);
          writer.Key("refund_reference");
          writer.String(e.refund_reference);
          writer.Key("requested_by");
          writer.String(e.requested_by);
          writer.Key("requested_at");
          writer.Time(e.requested_at_us);
          writer.Key("automatic");
          writer.Bool(e.automatic);
        }
      },
      event);
  writer.EndObject();
}

}  // namespace

void AppendRecordJson(const eventstore::RecordedEvent& record, const domain::Event& event,
                      std::string& out) {
  JsonWriter writer(out);
  writer.BeginObject();
  writer.Key("position");
  writer.UInt(record.position);
  writer.Key("stream");
  writer.String(record.stream);
  writer.Key("version");
  writer.UInt(record.version);
  writer.Key("type");
  writer.String(record.event_type);
  writer.Key("recorded_at");
  writer.TimeString(record.recorded_at_us);
  writer.Key("actor");
  writer.String(record.actor);
  writer.Key("hash");
  writer.Hex(std::span<const uint8_t>(record.hash));
  writer.Key("data");
  WriteEvent(writer, event);
  writer.EndObject();
}

}  // namespace ledger::server
