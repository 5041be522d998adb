#include "eventstore/event_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <kj/exception.h>

#include <cstring>
#include <vector>

#include "base/bytes.h"
#include "eventstore/schema/events.capnp.h"

namespace ledger::eventstore {

namespace {

namespace schema = ledger::eventstore::schema;

capnp::Text::Reader Text(const std::string& text) {
  return capnp::Text::Reader(text.data(), text.size());
}
std::string String(capnp::Text::Reader text) { return std::string(text.cStr(), text.size()); }

// --- Encoding: domain struct -> Cap'n Proto builder -------------------------------------------

void Fill(schema::Money::Builder out, const domain::Money& money) {
  out.setMinorUnits(money.minor_units);
  out.setCurrency(Text(money.currency));
}

void Fill(schema::User::Builder out, const domain::User& user) {
  out.setId(user.id);
  out.setUsername(Text(user.username));
  out.setEmail(Text(user.email));
}

void Fill(schema::Address::Builder out, const domain::Address& address) {
  out.setFirstName(Text(address.first_name));
  out.setLastName(Text(address.last_name));
  out.setLine1(Text(address.line1));
  out.setLine2(Text(address.line2));
  out.setCity(Text(address.city));
  out.setState(Text(address.state));
  out.setPostcode(Text(address.postcode));
  out.setCountry(Text(address.country));
}

void Fill(schema::Line::Builder out, const domain::Line& line) {
  out.setLineId(Text(line.line_id));
  out.setProductType(Text(line.product_type));
  out.setSku(Text(line.sku));
  out.setTitle(Text(line.title));
  out.setQuantity(line.quantity);
  out.setUnitPrice(line.unit_price_minor);
  auto attributes = out.initAttributes(static_cast<unsigned>(line.attributes.size()));
  for (unsigned i = 0; i < attributes.size(); ++i) {
    attributes[i].setName(Text(line.attributes[i].name));
    attributes[i].setValue(Text(line.attributes[i].value));
  }
}

void FillTexts(capnp::List<capnp::Text>::Builder out, const std::vector<std::string>& texts) {
  for (unsigned i = 0; i < out.size(); ++i) out.set(i, Text(texts[i]));
}

schema::FailureKind ToSchema(domain::FailureKind kind) {
  return static_cast<schema::FailureKind>(static_cast<uint16_t>(kind));
}

void Encode(capnp::MessageBuilder& message, const domain::PaymentCaptured& event) {
  auto out = message.initRoot<schema::PaymentCaptured>();
  out.setOrderNumber(Text(event.order_number));
  out.setProcessor(Text(event.processor));
  out.setReference(Text(event.reference));
  Fill(out.initAmount(), event.amount);
  out.setCardType(Text(event.card_type));
  out.setCardLastDigits(Text(event.card_last_digits));
  out.setCapturedAtUs(event.captured_at_us);
  out.setExcess(event.excess);
}

void Encode(capnp::MessageBuilder& message, const domain::OrderCreated& event) {
  auto out = message.initRoot<schema::OrderCreated>();
  out.setOrderNumber(Text(event.order_number));
  Fill(out.initUser(), event.user);
  auto lines = out.initLines(static_cast<unsigned>(event.lines.size()));
  for (unsigned i = 0; i < lines.size(); ++i) Fill(lines[i], event.lines[i]);
  out.setShippingMethod(Text(event.shipping_method));
  out.setShippingCharge(event.shipping_charge_minor);
  Fill(out.initBillingAddress(), event.billing_address);
  out.setTotal(event.total_minor);
  out.setCurrency(Text(event.currency));
  out.setPartner(Text(event.partner));
  out.setBasketId(event.basket_id);
  out.setPlacedAtUs(event.placed_at_us);
}

void Encode(capnp::MessageBuilder& message, const domain::PostCheckout& event) {
  auto out = message.initRoot<schema::PostCheckout>();
  out.setOrderNumber(Text(event.order_number));
  out.setSynchronous(event.synchronous);
}

void Encode(capnp::MessageBuilder& message, const domain::LineFulfilled& event) {
  auto out = message.initRoot<schema::LineFulfilled>();
  out.setOrderNumber(Text(event.order_number));
  out.setLineId(Text(event.line_id));
  out.setModule(Text(event.module));
  out.setAttempt(event.attempt);
  out.setExternalReference(Text(event.external_reference));
  FillTexts(out.initCodes(static_cast<unsigned>(event.codes.size())), event.codes);
  out.setFulfilledAtUs(event.fulfilled_at_us);
}

void Encode(capnp::MessageBuilder& message, const domain::FulfillmentFailed& event) {
  auto out = message.initRoot<schema::FulfillmentFailed>();
  out.setOrderNumber(Text(event.order_number));
  out.setLineId(Text(event.line_id));
  out.setModule(Text(event.module));
  out.setAttempt(event.attempt);
  out.setKind(ToSchema(event.kind));
  out.setMessage(Text(event.message));
  out.setRetryable(event.retryable);
  out.setNextRetryAtUs(event.next_retry_at_us);
  out.setFailedAtUs(event.failed_at_us);
}

void Encode(capnp::MessageBuilder& message, const domain::FulfillmentRetryRequested& event) {
  auto out = message.initRoot<schema::FulfillmentRetryRequested>();
  out.setOrderNumber(Text(event.order_number));
  out.setRequestedBy(Text(event.requested_by));
  out.setReason(Text(event.reason));
  FillTexts(out.initLineIds(static_cast<unsigned>(event.line_ids.size())), event.line_ids);
  out.setAutomatic(event.automatic);
  out.setRequestedAtUs(event.requested_at_us);
}

void Encode(capnp::MessageBuilder& message, const domain::LineRevoked& event) {
  auto out = message.initRoot<schema::LineRevoked>();
  out.setOrderNumber(Text(event.order_number));
  out.setLineId(Text(event.line_id));
  out.setModule(Text(event.module));
  out.setRefundReference(Text(event.refund_reference));
  out.setRevokedAtUs(event.revoked_at_us);
}

void Encode(capnp::MessageBuilder& message, const domain::RevocationFailed& event) {
  auto out = message.initRoot<schema::RevocationFailed>();
  out.setOrderNumber(Text(event.order_number));
  out.setLineId(Text(event.line_id));
  out.setModule(Text(event.module));
  out.setKind(ToSchema(event.kind));
  out.setMessage(Text(event.message));
  out.setRefundReference(Text(event.refund_reference));
  out.setFailedAtUs(event.failed_at_us);
}

// --- Decoding: Cap'n Proto reader -> domain struct --------------------------------------------

domain::Money Read(schema::Money::Reader in) {
  return domain::Money{.minor_units = in.getMinorUnits(), .currency = String(in.getCurrency())};
}

domain::User Read(schema::User::Reader in) {
  return domain::User{
      .id = in.getId(), .username = String(in.getUsername()), .email = String(in.getEmail())};
}

domain::Address Read(schema::Address::Reader in) {
  return domain::Address{.first_name = String(in.getFirstName()),
                         .last_name = String(in.getLastName()),
                         .line1 = String(in.getLine1()),
                         .line2 = String(in.getLine2()),
                         .city = String(in.getCity()),
                         .state = String(in.getState()),
                         .postcode = String(in.getPostcode()),
                         .country = String(in.getCountry())};
}

domain::Line Read(schema::Line::Reader in) {
  domain::Line line{.line_id = String(in.getLineId()),
                    .product_type = String(in.getProductType()),
                    .sku = String(in.getSku()),
                    .title = String(in.getTitle()),
                    .quantity = in.getQuantity(),
                    .unit_price_minor = in.getUnitPrice(),
                    .attributes = {}};
  for (auto attribute : in.getAttributes()) {
    line.attributes.push_back(domain::Attribute{.name = String(attribute.getName()),
                                                .value = String(attribute.getValue())});
  }
  return line;
}

std::vector<std::string> ReadTexts(capnp::List<capnp::Text>::Reader in) {
  std::vector<std::string> texts;
  texts.reserve(in.size());
  for (auto text : in) texts.push_back(String(text));
  return texts;
}

domain::FailureKind FromSchema(schema::FailureKind kind) {
  return static_cast<domain::FailureKind>(static_cast<uint16_t>(kind));
}

domain::Event Decode(schema::PaymentCaptured::Reader in) {
  return domain::PaymentCaptured{.order_number = String(in.getOrderNumber()),
                                 .processor = String(in.getProcessor()),
                                 .reference = String(in.getReference()),
                                 .amount = Read(in.getAmount()),
                                 .card_type = String(in.getCardType()),
                                 .card_last_digits = String(in.getCardLastDigits()),
                                 .captured_at_us = in.getCapturedAtUs(),
                                 .excess = in.getExcess()};
}

domain::Event Decode(schema::OrderCreated::Reader in) {
  domain::OrderCreated event{.order_number = String(in.getOrderNumber()),
                             .user = Read(in.getUser()),
                             .lines = {},
                             .shipping_method = String(in.getShippingMethod()),
                             .shipping_charge_minor = in.getShippingCharge(),
                             .billing_address = Read(in.getBillingAddress()),
                             .total_minor = in.getTotal(),
                             .currency = String(in.getCurrency()),
                             .partner = String(in.getPartner()),
                             .basket_id = in.getBasketId(),
                             .placed_at_us = in.getPlacedAtUs()};
  for (auto line : in.getLines()) event.lines.push_back(Read(line));
  return event;
}

domain::Event Decode(schema::PostCheckout::Reader in) {
  return domain::PostCheckout{.order_number = String(in.getOrderNumber()),
                              .synchronous = in.getSynchronous()};
}

domain::Event Decode(schema::LineFulfilled::Reader in) {
  return domain::LineFulfilled{.order_number = String(in.getOrderNumber()),
                               .line_id = String(in.getLineId()),
                               .module = String(in.getModule()),
                               .attempt = in.getAttempt(),
                               .external_reference = String(in.getExternalReference()),
                               .codes = ReadTexts(in.getCodes()),
                               .fulfilled_at_us = in.getFulfilledAtUs()};
}

domain::Event Decode(schema::FulfillmentFailed::Reader in) {
  return domain::FulfillmentFailed{.order_number = String(in.getOrderNumber()),
                                   .line_id = String(in.getLineId()),
                                   .module = String(in.getModule()),
                                   .attempt = in.getAttempt(),
                                   .kind = FromSchema(in.getKind()),
                                   .message = String(in.getMessage()),
                                   .retryable = in.getRetryable(),
                                   .next_retry_at_us = in.getNextRetryAtUs(),
                                   .failed_at_us = in.getFailedAtUs()};
}

domain::Event Decode(schema::FulfillmentRetryRequested::Reader in) {
  return domain::FulfillmentRetryRequested{.order_number = String(in.getOrderNumber()),
                                           .requested_by = String(in.getRequestedBy()),
                                           .reason = String(in.getReason()),
                                           .line_ids = ReadTexts(in.getLineIds()),
                                           .automatic = in.getAutomatic(),
                                           .requested_at_us = in.getRequestedAtUs()};
}

domain::Event Decode(schema::LineRevoked::Reader in) {
  return domain::LineRevoked{.order_number = String(in.getOrderNumber()),
                             .line_id = String(in.getLineId()),
                             .module = String(in.getModule()),
                             .refund_reference = String(in.getRefundReference()),
                             .revoked_at_us = in.getRevokedAtUs()};
}

domain::Event Decode(schema::RevocationFailed::Reader in) {
  return domain::RevocationFailed{.order_number = String(in.getOrderNumber()),
                                  .line_id = String(in.getLineId()),
                                  .module = String(in.getModule()),
                                  .kind = FromSchema(in.getKind()),
                                  .message = String(in.getMessage()),
                                  .refund_reference = String(in.getRefundReference()),
                                  .failed_at_us = in.getFailedAtUs()};
}

// What every event must satisfy, checked before encoding and after decoding.
std::optional<std::string> Problem(const domain::Event& event) {
  if (domain::EventOrderNumber(event).empty()) return "the order number is empty";
  if (const auto* failed = std::get_if<domain::FulfillmentFailed>(&event)) {
    if (!domain::IsValidFailureKind(failed->kind)) return "the failure kind is out of range";
  }
  if (const auto* failed = std::get_if<domain::RevocationFailed>(&event)) {
    if (!domain::IsValidFailureKind(failed->kind)) return "the failure kind is out of range";
  }
  return std::nullopt;
}

template <typename Schema>
domain::Event DecodeAs(capnp::MessageReader& message) {
  return Decode(message.getRoot<Schema>());
}

using Decoder = domain::Event (*)(capnp::MessageReader&);

Decoder FindDecoder(std::string_view event_type) {
  static constexpr std::pair<std::string_view, Decoder> kDecoders[] = {
      {domain::PaymentCaptured::kTypeName, &DecodeAs<schema::PaymentCaptured>},
      {domain::OrderCreated::kTypeName, &DecodeAs<schema::OrderCreated>},
      {domain::PostCheckout::kTypeName, &DecodeAs<schema::PostCheckout>},
      {domain::LineFulfilled::kTypeName, &DecodeAs<schema::LineFulfilled>},
      {domain::FulfillmentFailed::kTypeName, &DecodeAs<schema::FulfillmentFailed>},
      {domain::FulfillmentRetryRequested::kTypeName, &DecodeAs<schema::FulfillmentRetryRequested>},
      {domain::LineRevoked::kTypeName, &DecodeAs<schema::LineRevoked>},
      {domain::RevocationFailed::kTypeName, &DecodeAs<schema::RevocationFailed>},
  };
  for (const auto& [name, decoder] : kDecoders) {
    if (name == event_type) return decoder;
  }
  return nullptr;
}

Error PayloadCorrupt(const RecordedEvent& record, std::string_view what) {
  return Error{.code = ErrorCode::kCorruption,
               .message = fmt::format("payload of {} at position {} is corrupt: {}",
                                      record.event_type, record.position, what),
               .current_version = std::nullopt,
               .position = record.position};
}

}  // namespace

std::string EncodeEventPayload(const domain::Event& event) {
  if (auto problem = Problem(event)) {
    LEDGER_ASSERT(false, fmt::format("encoding a malformed event: {}", *problem).c_str());
  }
  capnp::MallocMessageBuilder message;
  std::visit([&message](const auto& typed) { Encode(message, typed); }, event);
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

NewEvent ToNewEvent(const domain::Event& event, const EventMetadata& metadata) {
  return NewEvent{.event_id = domain::DeterministicEventId(event),
                  .event_type = std::string(domain::EventTypeName(event)),
                  .payload = EncodeEventPayload(event),
                  .correlation_id = metadata.correlation_id,
                  .causation_id = metadata.causation_id,
                  .actor = metadata.actor,
                  .schema_version = kEventSchemaVersion};
}

StoreResult<domain::Event> DecodeEvent(const RecordedEvent& record) {
  const Decoder decoder = FindDecoder(record.event_type);
  if (decoder == nullptr) return Unexpected(PayloadCorrupt(record, "unknown event type"));
  if (record.schema_version != kEventSchemaVersion) {
    return Unexpected(PayloadCorrupt(
        record,
        fmt::format("schema version {} is not {}", record.schema_version, kEventSchemaVersion)));
  }
  const std::string& payload = record.payload;
  if (payload.empty() || payload.size() % sizeof(capnp::word) != 0) {
    return Unexpected(PayloadCorrupt(record, "not a whole number of 8-byte words"));
  }
  thread_local std::vector<capnp::word> aligned;
  aligned.resize(payload.size() / sizeof(capnp::word));
  std::memcpy(aligned.data(), payload.data(), payload.size());
  try {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = (8u << 20) / sizeof(capnp::word);
    options.nestingLimit = 16;
    capnp::FlatArrayMessageReader message(kj::arrayPtr(aligned.data(), aligned.size()), options);
    domain::Event event = decoder(message);
    if (auto problem = Problem(event)) return Unexpected(PayloadCorrupt(record, *problem));
    return event;
  } catch (const kj::Exception& exception) {
    return Unexpected(PayloadCorrupt(record, exception.getDescription().cStr()));
  }
}

}  // namespace ledger::eventstore
