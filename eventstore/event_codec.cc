#include "eventstore/event_codec.h"

#include <capnp/serialize-packed.h>
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "eventstore/capnp_message.h"
#include "eventstore/schema/events.capnp.h"

namespace ledger::eventstore {

namespace {

namespace schema = ledger::eventstore::schema;

// Cap'n Proto's stream readers refuse messages of more segments than this.
constexpr unsigned kSegmentsMax = 512;

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

void Fill(schema::PaymentCaptured::Builder out, const domain::PaymentCaptured& event) {
  out.setOrderNumber(Text(event.order_number));
  out.setProcessor(Text(event.processor));
  out.setReference(Text(event.reference));
  Fill(out.initAmount(), event.amount);
  out.setCardType(Text(event.card_type));
  out.setCardLastDigits(Text(event.card_last_digits));
  out.setCapturedAtUs(event.captured_at_us);
  out.setExcess(event.excess);
}

void Fill(schema::OrderCreated::Builder out, const domain::OrderCreated& event) {
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

void Fill(schema::PostCheckout::Builder out, const domain::PostCheckout& event) {
  out.setOrderNumber(Text(event.order_number));
  out.setSynchronous(event.synchronous);
}

void Fill(schema::LineFulfilled::Builder out, const domain::LineFulfilled& event) {
  out.setOrderNumber(Text(event.order_number));
  out.setLineId(Text(event.line_id));
  out.setModule(Text(event.module));
  out.setAttempt(event.attempt);
  out.setExternalReference(Text(event.external_reference));
  FillTexts(out.initCodes(static_cast<unsigned>(event.codes.size())), event.codes);
  out.setFulfilledAtUs(event.fulfilled_at_us);
}

void Fill(schema::FulfillmentFailed::Builder out, const domain::FulfillmentFailed& event) {
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

void Fill(schema::FulfillmentRetryRequested::Builder out,
          const domain::FulfillmentRetryRequested& event) {
  out.setOrderNumber(Text(event.order_number));
  out.setRequestedBy(Text(event.requested_by));
  out.setReason(Text(event.reason));
  FillTexts(out.initLineIds(static_cast<unsigned>(event.line_ids.size())), event.line_ids);
  out.setAutomatic(event.automatic);
  out.setRequestedAtUs(event.requested_at_us);
}

void Fill(schema::LineRevoked::Builder out, const domain::LineRevoked& event) {
  out.setOrderNumber(Text(event.order_number));
  out.setLineId(Text(event.line_id));
  out.setModule(Text(event.module));
  out.setRefundReference(Text(event.refund_reference));
  out.setRevokedAtUs(event.revoked_at_us);
}

void Fill(schema::RevocationFailed::Builder out, const domain::RevocationFailed& event) {
  out.setOrderNumber(Text(event.order_number));
  out.setLineId(Text(event.line_id));
  out.setModule(Text(event.module));
  out.setKind(ToSchema(event.kind));
  out.setMessage(Text(event.message));
  out.setRefundReference(Text(event.refund_reference));
  out.setFailedAtUs(event.failed_at_us);
  out.setAttempt(event.attempt);
  out.setRetryable(event.retryable);
  out.setNextRetryAtUs(event.next_retry_at_us);
}

void Fill(schema::RevocationRequested::Builder out, const domain::RevocationRequested& event) {
  out.setOrderNumber(Text(event.order_number));
  out.setLineId(Text(event.line_id));
  out.setRefundReference(Text(event.refund_reference));
  out.setRequestedBy(Text(event.requested_by));
  out.setRequestedAtUs(event.requested_at_us);
  out.setAutomatic(event.automatic);
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

domain::PaymentCaptured Read(schema::PaymentCaptured::Reader in) {
  return domain::PaymentCaptured{.order_number = String(in.getOrderNumber()),
                                 .processor = String(in.getProcessor()),
                                 .reference = String(in.getReference()),
                                 .amount = Read(in.getAmount()),
                                 .card_type = String(in.getCardType()),
                                 .card_last_digits = String(in.getCardLastDigits()),
                                 .captured_at_us = in.getCapturedAtUs(),
                                 .excess = in.getExcess()};
}

domain::OrderCreated Read(schema::OrderCreated::Reader in) {
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

domain::PostCheckout Read(schema::PostCheckout::Reader in) {
  return domain::PostCheckout{.order_number = String(in.getOrderNumber()),
                              .synchronous = in.getSynchronous()};
}

domain::LineFulfilled Read(schema::LineFulfilled::Reader in) {
  return domain::LineFulfilled{.order_number = String(in.getOrderNumber()),
                               .line_id = String(in.getLineId()),
                               .module = String(in.getModule()),
                               .attempt = in.getAttempt(),
                               .external_reference = String(in.getExternalReference()),
                               .codes = ReadTexts(in.getCodes()),
                               .fulfilled_at_us = in.getFulfilledAtUs()};
}

domain::FulfillmentFailed Read(schema::FulfillmentFailed::Reader in) {
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

domain::FulfillmentRetryRequested Read(schema::FulfillmentRetryRequested::Reader in) {
  return domain::FulfillmentRetryRequested{.order_number = String(in.getOrderNumber()),
                                           .requested_by = String(in.getRequestedBy()),
                                           .reason = String(in.getReason()),
                                           .line_ids = ReadTexts(in.getLineIds()),
                                           .automatic = in.getAutomatic(),
                                           .requested_at_us = in.getRequestedAtUs()};
}

domain::LineRevoked Read(schema::LineRevoked::Reader in) {
  return domain::LineRevoked{.order_number = String(in.getOrderNumber()),
                             .line_id = String(in.getLineId()),
                             .module = String(in.getModule()),
                             .refund_reference = String(in.getRefundReference()),
                             .revoked_at_us = in.getRevokedAtUs()};
}

domain::RevocationFailed Read(schema::RevocationFailed::Reader in) {
  return domain::RevocationFailed{.order_number = String(in.getOrderNumber()),
                                  .line_id = String(in.getLineId()),
                                  .module = String(in.getModule()),
                                  .kind = FromSchema(in.getKind()),
                                  .message = String(in.getMessage()),
                                  .refund_reference = String(in.getRefundReference()),
                                  .failed_at_us = in.getFailedAtUs(),
                                  .attempt = in.getAttempt(),
                                  .retryable = in.getRetryable(),
                                  .next_retry_at_us = in.getNextRetryAtUs()};
}

domain::RevocationRequested Read(schema::RevocationRequested::Reader in) {
  return domain::RevocationRequested{.order_number = String(in.getOrderNumber()),
                                     .line_id = String(in.getLineId()),
                                     .refund_reference = String(in.getRefundReference()),
                                     .requested_by = String(in.getRequestedBy()),
                                     .requested_at_us = in.getRequestedAtUs(),
                                     .automatic = in.getAutomatic()};
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
  return domain::Event(Read(message.getRoot<Schema>()));
}

// The schema struct of each domain event.
template <typename T>
struct SchemaOf;
template <>
struct SchemaOf<domain::PaymentCaptured> {
  using Type = schema::PaymentCaptured;
};
template <>
struct SchemaOf<domain::OrderCreated> {
  using Type = schema::OrderCreated;
};
template <>
struct SchemaOf<domain::PostCheckout> {
  using Type = schema::PostCheckout;
};
template <>
struct SchemaOf<domain::LineFulfilled> {
  using Type = schema::LineFulfilled;
};
template <>
struct SchemaOf<domain::FulfillmentFailed> {
  using Type = schema::FulfillmentFailed;
};
template <>
struct SchemaOf<domain::FulfillmentRetryRequested> {
  using Type = schema::FulfillmentRetryRequested;
};
template <>
struct SchemaOf<domain::LineRevoked> {
  using Type = schema::LineRevoked;
};
template <>
struct SchemaOf<domain::RevocationFailed> {
  using Type = schema::RevocationFailed;
};
template <>
struct SchemaOf<domain::RevocationRequested> {
  using Type = schema::RevocationRequested;
};

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
      {domain::RevocationRequested::kTypeName, &DecodeAs<schema::RevocationRequested>},
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

void Fill(schema::LineStateSnapshot::Builder out, const domain::LineState& line) {
  Fill(out.initLine(), line.line);
  out.setStatus(static_cast<uint8_t>(line.status));
  out.setAttempts(line.attempts);
  out.setModule(Text(line.module));
  out.setHasLastError(line.last_error_kind.has_value());
  out.setLastErrorKind(ToSchema(line.last_error_kind.value_or(domain::FailureKind::kUnknown)));
  out.setLastErrorMessage(Text(line.last_error_message));
  out.setNextRetryAtUs(line.next_retry_at_us);
  out.setRetryRequested(line.retry_requested);
  out.setExternalReference(Text(line.external_reference));
  FillTexts(out.initCodes(static_cast<unsigned>(line.codes.size())), line.codes);
  out.setRefundReference(Text(line.refund_reference));
  out.setRevocationRequested(line.revocation_requested);
  out.setRevocationFailures(line.revocation_failures);
  out.setAutomaticRetries(line.automatic_retries);
  out.setAutomaticRevocationRetries(line.automatic_revocation_retries);
}

domain::LineState Read(schema::LineStateSnapshot::Reader in) {
  domain::LineState line;
  line.line = Read(in.getLine());
  line.status = static_cast<domain::LineStatus>(in.getStatus());
  line.attempts = in.getAttempts();
  line.module = String(in.getModule());
  if (in.getHasLastError()) line.last_error_kind = FromSchema(in.getLastErrorKind());
  line.last_error_message = String(in.getLastErrorMessage());
  line.next_retry_at_us = in.getNextRetryAtUs();
  line.retry_requested = in.getRetryRequested();
  line.external_reference = String(in.getExternalReference());
  line.codes = ReadTexts(in.getCodes());
  line.refund_reference = String(in.getRefundReference());
  line.revocation_requested = in.getRevocationRequested();
  line.revocation_failures = in.getRevocationFailures();
  line.automatic_retries = in.getAutomaticRetries();
  line.automatic_revocation_retries = in.getAutomaticRevocationRetries();
  return line;
}

bool IsKnownStatus(domain::LineStatus status) {
  for (domain::LineStatus known : domain::AllLineStatuses()) {
    if (known == status) return true;
  }
  return false;
}

bool IsKnownStatus(domain::OrderStatus status) {
  for (domain::OrderStatus known : domain::AllOrderStatuses()) {
    if (known == status) return true;
  }
  return false;
}

std::optional<std::string> SnapshotProblem(const domain::OrderState& state) {
  if (!IsKnownStatus(state.status)) return "the order status is out of range";
  for (const domain::LineState& line : state.lines) {
    if (!IsKnownStatus(line.status)) return "a line status is out of range";
    if (line.last_error_kind && !domain::IsValidFailureKind(*line.last_error_kind)) {
      return "a failure kind is out of range";
    }
  }
  return std::nullopt;
}

// Words enough for most snapshots of `state` in one segment: Cap'n Proto's default first segment
// (1024 words, zeroed on allocation) costs more to clear than a typical snapshot takes to fill.
// Too few words is no error: the builder adds a segment.
unsigned SnapshotWordsEstimate(const domain::OrderState& state) {
  size_t text_bytes = state.order_number.size();
  for (const domain::CaptureRecord& capture : state.captures) {
    text_bytes += capture.processor.size() + capture.reference.size() + capture.card_type.size() +
                  capture.card_last_digits.size() + capture.amount.currency.size();
  }
  if (state.placement) {
    const domain::OrderCreated& placement = *state.placement;
    const domain::Address& address = placement.billing_address;
    text_bytes += placement.user.username.size() + placement.user.email.size() +
                  placement.shipping_method.size() + placement.currency.size() +
                  placement.partner.size() + address.first_name.size() + address.last_name.size() +
                  address.line1.size() + address.line2.size() + address.city.size() +
                  address.state.size() + address.postcode.size() + address.country.size();
  }
  size_t texts = 0;
  for (const domain::LineState& line : state.lines) {
    text_bytes += line.line.line_id.size() + line.line.product_type.size() + line.line.sku.size() +
                  line.line.title.size() + line.module.size() + line.last_error_message.size() +
                  line.external_reference.size() + line.refund_reference.size();
    for (const domain::Attribute& attribute : line.line.attributes) {
      text_bytes += attribute.name.size() + attribute.value.size();
    }
    for (const std::string& code : line.codes) text_bytes += code.size();
    texts += 2 * line.line.attributes.size() + line.codes.size();
  }
  // Each text rounds up to whole words (NUL included); structs and pointers around them.
  const size_t words = 96 + text_bytes / 8 + texts + 24 * state.captures.size() +
                       48 * state.lines.size() + (state.placement ? 48 : 0);
  return static_cast<unsigned>(std::min<size_t>(words, 1 << 16));
}

// The snapshot of `state`, flat or packed alike.
void FillSnapshot(schema::OrderStateSnapshot::Builder out, const domain::OrderState& state) {
  out.setOrderNumber(Text(state.order_number));
  out.setEventsApplied(state.events_applied);
  auto captures = out.initCaptures(static_cast<unsigned>(state.captures.size()));
  for (unsigned i = 0; i < captures.size(); ++i) {
    const domain::CaptureRecord& capture = state.captures[i];
    captures[i].setProcessor(Text(capture.processor));
    captures[i].setReference(Text(capture.reference));
    Fill(captures[i].initAmount(), capture.amount);
    captures[i].setCardType(Text(capture.card_type));
    captures[i].setCardLastDigits(Text(capture.card_last_digits));
    captures[i].setCapturedAtUs(capture.captured_at_us);
    captures[i].setExcess(capture.excess);
  }
  out.setHasPlacement(state.placement.has_value());
  if (state.placement) {
    domain::OrderCreated placement = *state.placement;
    placement.lines.clear();
    Fill(out.initPlacement(), placement);
  }
  out.setPostCheckoutRequested(state.post_checkout_requested);
  out.setPostCheckoutSynchronous(state.post_checkout_synchronous);
  auto lines = out.initLines(static_cast<unsigned>(state.lines.size()));
  for (unsigned i = 0; i < lines.size(); ++i) Fill(lines[i], state.lines[i]);
  out.setStatus(static_cast<uint8_t>(state.status));
  out.setTotalMinor(state.amounts.total_minor);
  out.setCapturedMinor(state.amounts.captured_minor);
  out.setDueMinor(state.amounts.due_minor);
  out.setOverpaidMinor(state.amounts.overpaid_minor);
  out.setRefundedMinor(state.amounts.refunded_minor);
  out.setRetryRequests(state.retry_requests);
}

// Reads a snapshot from `message`: nullopt on success, else what is wrong.
std::optional<std::string> ReadSnapshot(capnp::MessageReader& message, domain::OrderState& state) {
  auto in = message.getRoot<schema::OrderStateSnapshot>();
  state.order_number = String(in.getOrderNumber());
  state.events_applied = in.getEventsApplied();
  for (auto capture : in.getCaptures()) {
    state.captures.push_back(
        domain::CaptureRecord{.processor = String(capture.getProcessor()),
                              .reference = String(capture.getReference()),
                              .amount = Read(capture.getAmount()),
                              .card_type = String(capture.getCardType()),
                              .card_last_digits = String(capture.getCardLastDigits()),
                              .captured_at_us = capture.getCapturedAtUs(),
                              .excess = capture.getExcess()});
  }
  if (in.getHasPlacement()) state.placement = Read(in.getPlacement());
  state.post_checkout_requested = in.getPostCheckoutRequested();
  state.post_checkout_synchronous = in.getPostCheckoutSynchronous();
  for (auto line : in.getLines()) state.lines.push_back(Read(line));
  state.status = static_cast<domain::OrderStatus>(in.getStatus());
  state.amounts = domain::OrderAmounts{.total_minor = in.getTotalMinor(),
                                       .captured_minor = in.getCapturedMinor(),
                                       .due_minor = in.getDueMinor(),
                                       .overpaid_minor = in.getOverpaidMinor(),
                                       .refunded_minor = in.getRefundedMinor()};
  state.retry_requests = in.getRetryRequests();
  return SnapshotProblem(state);
}

Error SnapshotCorruption(const std::string& problem) {
  return Error{.code = ErrorCode::kCorruption,
               .message = fmt::format("order snapshot is corrupt: {}", problem),
               .current_version = std::nullopt,
               .position = 0};
}

}  // namespace

std::string EncodeOrderState(const domain::OrderState& state) {
  capnp::MallocMessageBuilder message(SnapshotWordsEstimate(state));
  FillSnapshot(message.initRoot<schema::OrderStateSnapshot>(), state);
  // Written straight into the string: one copy of the segments, not two.
  std::string bytes(capnp::computeSerializedSizeInWords(message) * sizeof(capnp::word), '\0');
  kj::ArrayOutputStream stream(
      kj::arrayPtr(reinterpret_cast<kj::byte*>(bytes.data()), bytes.size()));
  capnp::writeMessage(stream, message);
  LEDGER_ASSERT(stream.getArray().size() == bytes.size(), "capnp size mismatch");
  return bytes;
}

Result<domain::OrderState, Error> DecodeOrderState(std::string_view bytes) {
  domain::OrderState state;
  auto problem = internal::ReadMessage(
      bytes, [&](capnp::MessageReader& message) { return ReadSnapshot(message, state); });
  if (problem) return Unexpected(SnapshotCorruption(*problem));
  return state;
}

void AppendPackedOrderState(const domain::OrderState& state, std::string& out) {
  capnp::MallocMessageBuilder message(SnapshotWordsEstimate(state));
  FillSnapshot(message.initRoot<schema::OrderStateSnapshot>(), state);
  // Packed straight into `out`. Packing never grows a word by more than its tag byte, plus a
  // count byte per run of literal words: 10 bytes per 8 bounds it.
  const size_t flat_bytes = capnp::computeSerializedSizeInWords(message) * sizeof(capnp::word);
  const size_t start = out.size();
  out.resize(start + flat_bytes + flat_bytes / 4 + 16);
  kj::ArrayOutputStream stream(
      kj::arrayPtr(reinterpret_cast<kj::byte*>(out.data() + start), out.size() - start));
  capnp::writePackedMessage(stream, message);
  out.resize(start + stream.getArray().size());
}

Result<domain::OrderState, Error> DecodePackedOrderState(std::string_view bytes) {
  domain::OrderState state;
  std::optional<std::string> problem;
  try {
    kj::ArrayInputStream stream(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
    // Unpacking: a packed byte stands for at most 128 words (a tag and a count of 255 more
    // zero words in two bytes), which bounds the segment sizes the reader may allocate.
    capnp::ReaderOptions unpacking;
    unpacking.traversalLimitInWords =
        std::min<uint64_t>(internal::kTraversalWordsMax, bytes.size() * 128 + 64);
    unpacking.nestingLimit = internal::kNestingMax;
    capnp::PackedMessageReader unpacked(stream, unpacking);
    // Reading: over the unpacked segments, with the traversal bound of their size (see
    // internal::TraversalWordsFor).
    std::vector<kj::ArrayPtr<const capnp::word>> segments;
    uint64_t words = 0;
    for (unsigned id = 0; id < kSegmentsMax; ++id) {
      auto segment = unpacked.getSegment(id);
      if (segment.size() == 0) break;
      segments.push_back(segment);
      words += segment.size();
    }
    capnp::ReaderOptions reading;
    reading.traversalLimitInWords = internal::TraversalWordsFor(words);
    reading.nestingLimit = internal::kNestingMax;
    capnp::SegmentArrayMessageReader message(kj::arrayPtr(segments.data(), segments.size()),
                                             reading);
    if (segments.empty()) {
      problem = "the message is empty";
    } else {
      problem = ReadSnapshot(message, state);
    }
    // The snapshot must be the whole of the bytes: trailing garbage is damage too.
    if (!problem && stream.tryGetReadBuffer().size() != 0) {
      problem = "bytes follow the snapshot";
    }
  } catch (const kj::Exception& exception) {
    problem = std::string(exception.getDescription().cStr());
  }
  if (problem) return Unexpected(SnapshotCorruption(*problem));
  return state;
}

std::string EncodeEventPayload(const domain::Event& event) {
  if (auto problem = Problem(event)) {
    LEDGER_ASSERT(false, fmt::format("encoding a malformed event: {}", *problem).c_str());
  }
  capnp::MallocMessageBuilder message;
  std::visit(
      [&message](const auto& typed) {
        using Event = std::decay_t<decltype(typed)>;
        Fill(message.initRoot<typename SchemaOf<Event>::Type>(), typed);
      },
      event);
  return internal::MessageBytes(message);
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
  std::optional<domain::Event> event;
  auto problem = internal::ReadMessage(record.payload, [&](capnp::MessageReader& message) {
    event = decoder(message);
    return Problem(*event);
  });
  if (problem) return Unexpected(PayloadCorrupt(record, *problem));
  return std::move(*event);
}

}  // namespace ledger::eventstore
