// AppendRecordJson, the JSON writer of the server-sent event stream, against RecordJson, the
// JSON tree GET /v1/events serializes: the same bytes for every event type, for strings that
// need escaping (quotes, backslashes, every control character) or carry multi-byte UTF-8, for
// times at the calendar's edges and for amounts in known and unknown currencies.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/text.h"
#include "domain/events.h"
#include "eventstore/event_codec.h"
#include "server/api_json.h"

namespace ledger::server {
namespace {

using namespace domain;

// Every control character, the quote, the backslash, DEL, the slash, and UTF-8 of two, three
// and four bytes.
std::string Awkward(std::string_view tag) {
  std::string text(tag);
  text += " \"quoted\" back\\slash /slash ";
  for (int c = 1; c < 0x20; ++c) text += static_cast<char>(c);
  text += "\x7f caf\xc3\xa9 \xe2\x82\xac 49 \xf0\x9f\x98\x80 end";
  return text;
}

eventstore::RecordedEvent Record(const Event& event, uint64_t position, int64_t recorded_at_us) {
  eventstore::RecordedEvent record;
  record.position = position;
  record.stream = Awkward("stream");
  record.version = position * 7;
  record.event_type = std::string(EventTypeName(event));
  record.recorded_at_us = recorded_at_us;
  record.actor = Awkward("actor");
  record.schema_version = eventstore::kEventSchemaVersion;
  record.payload = eventstore::EncodeEventPayload(event);
  for (size_t i = 0; i < record.hash.size(); ++i) record.hash[i] = static_cast<uint8_t>(i * 37);
  return record;
}

// The record written both ways is the same text, and that text parses back to the tree.
void CheckSameJson(const eventstore::RecordedEvent& record) {
  auto tree = RecordJson(record);
  REQUIRE(tree);
  auto decoded = eventstore::DecodeEvent(record);
  REQUIRE(decoded);
  std::string written = "prefix";
  AppendRecordJson(record, *decoded, written);
  REQUIRE(written.starts_with("prefix"));
  written.erase(0, 6);
  CHECK(written == boost::json::serialize(*tree));
  CHECK(boost::json::parse(written) == boost::json::value(*tree));
}

std::vector<Event> EveryEventType() {
  const std::string text = Awkward("field");
  Line seat{.line_id = "1",
            .product_type = "Seat",
            .sku = text,
            .title = Awkward("title"),
            .quantity = 3,
            .unit_price_minor = 4'900,
            .attributes = {{"course_key", "course-v1:edX+DemoX+Demo"},
                           {Awkward("name"), Awkward("value")},
                           {"certificate_type", "verified"},
                           {"course_key", "repeated: the last value wins, the first place"}}};
  Line donation{.line_id = "2\n",
                .product_type = "Donation",
                .sku = "",
                .title = "",
                .quantity = -1,
                .unit_price_minor = -12'345,
                .attributes = {}};
  return {
      PaymentCaptured{.order_number = Awkward("EDX-1"),
                      .processor = "paypal",
                      .reference = text,
                      .amount = {.minor_units = 4'900, .currency = "USD"},
                      .card_type = text,
                      .card_last_digits = "4242",
                      .captured_at_us = 1'795'000'000'123'456,
                      .excess = true},
      PaymentCaptured{.order_number = "EDX-2",
                      .amount = {.minor_units = -7, .currency = "XYZ"},  // Unknown currency.
                      .captured_at_us = 0},
      PaymentCaptured{.order_number = "EDX-3",
                      .amount = {.minor_units = 1'234'567, .currency = "JPY"},
                      .captured_at_us = -5},
      OrderCreated{.order_number = "EDX-4",
                   .user = {.id = -42, .username = text, .email = Awkward("email")},
                   .lines = {seat, donation},
                   .shipping_method = text,
                   .shipping_charge_minor = 1,
                   .billing_address = {.first_name = text,
                                       .last_name = "L\xc3\xb6vel\xc3\xa2\x63\x65",
                                       .line1 = "1 \"Main\"",
                                       .line2 = "",
                                       .city = "\\",
                                       .state = "\t",
                                       .postcode = "02139",
                                       .country = "US"},
                   .total_minor = 14'701,
                   .currency = "BHD",
                   .partner = text,
                   .basket_id = INT64_MAX,
                   .placed_at_us = 951'782'400'000'000},  // 2000-02-29.
      OrderCreated{.order_number = "EDX-5", .currency = "ABC"},
      PostCheckout{.order_number = "EDX-6", .synchronous = true},
      PostCheckout{.order_number = "EDX-7", .synchronous = false},
      LineFulfilled{.order_number = "EDX-8",
                    .line_id = text,
                    .module = "enrollment",
                    .attempt = UINT32_MAX,
                    .external_reference = text,
                    .codes = {text, "", "CODE-2"},
                    .fulfilled_at_us = 1},
      LineFulfilled{.order_number = "EDX-9", .line_id = "1", .module = "m", .attempt = 1},
      FulfillmentFailed{.order_number = "EDX-10",
                        .line_id = "1",
                        .module = text,
                        .attempt = 2,
                        .kind = FailureKind::kTimeout,
                        .message = text,
                        .retryable = true,
                        .next_retry_at_us = 253'402'300'799'999'999,  // 9999-12-31T23:59:59.999999
                        .failed_at_us = 946'684'799'999'999},         // 1999-12-31T23:59:59.999999
      FulfillmentRetryRequested{.order_number = "EDX-11",
                                .requested_by = text,
                                .reason = text,
                                .line_ids = {"1", text},
                                .automatic = true,
                                .requested_at_us = 1'709'164'800'000'000},  // 2024-02-29.
      LineRevoked{.order_number = "EDX-12",
                  .line_id = "1",
                  .module = "m",
                  .refund_reference = text,
                  .revoked_at_us = 4'102'444'800'000'000},  // 2100-01-01 (not a leap year).
      RevocationFailed{.order_number = "EDX-13",
                       .line_id = text,
                       .module = "m",
                       .kind = FailureKind::kServer,
                       .message = text,
                       .refund_reference = "",
                       .failed_at_us = 253'402'300'800'000'000,  // Year 10000.
                       .attempt = 4'294'967'295,
                       .retryable = true,
                       .next_retry_at_us = 1},
      RevocationRequested{.order_number = "EDX-14",
                          .line_id = text,
                          .refund_reference = text,
                          .requested_by = "ops:grace",
                          .requested_at_us = 1'795'000'000'000'000},
  };
}

TEST_CASE("AppendRecordJson writes what RecordJson serializes, for every event type") {
  uint64_t position = 1;
  for (const Event& event : EveryEventType()) {
    INFO(EventTypeName(event) << " at position " << position);
    CheckSameJson(Record(event, position, 1'795'000'000'000'001));
    ++position;
  }
  // Records with no time ("") and the largest positions and versions.
  eventstore::RecordedEvent record = Record(PostCheckout{.order_number = "EDX-1"}, 1, 0);
  CheckSameJson(record);
  record.position = UINT64_MAX;
  record.version = UINT64_MAX;
  record.recorded_at_us = -1;
  CheckSameJson(record);
}

TEST_CASE("AppendRecordJson writes times as FormatRfc3339 does") {
  eventstore::RecordedEvent record = Record(PostCheckout{.order_number = "EDX-1"}, 1, 0);
  std::vector<int64_t> times = {1,
                                999'999,
                                1'000'000,
                                86'399'999'999,
                                86'400'000'000,
                                68'169'600'000'000,   // 1972-02-29.
                                951'868'800'000'000,  // 2000-03-01.
                                4'107'542'400'000'000,
                                253'402'300'799'999'999,
                                253'402'300'800'000'000,
                                400'000'000'000'000'000};
  std::mt19937_64 random(6);
  std::uniform_int_distribution<int64_t> any_time(1, 253'402'300'799'999'999);
  for (int i = 0; i < 2'000; ++i) times.push_back(any_time(random));
  for (const int64_t time_us : times) {
    INFO(time_us);
    record.recorded_at_us = time_us;
    auto decoded = eventstore::DecodeEvent(record);
    REQUIRE(decoded);
    std::string written;
    AppendRecordJson(record, *decoded, written);
    const boost::json::value parsed = boost::json::parse(written);
    REQUIRE(parsed.at("recorded_at").as_string() == FormatRfc3339(time_us));
  }
}

}  // namespace
}  // namespace ledger::server
