// The ledger's events: plain aggregates, one per fact the log records about an order. They carry
// the fields of eventstore/schema/events.capnp (the codec maps one to the other field by field),
// plus the few fields marked "Not yet in events.capnp" below.
//
// An order's stream is `order-<order number>` and holds, in this order: its PaymentCaptured
// events, then OrderCreated and PostCheckout (appended together), then fulfillment and
// revocation events. A PaymentCaptured may also follow OrderCreated (flagged `excess`).
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/event_id.h"
#include "domain/money.h"

namespace ledger::domain {

// Why a fulfillment or revocation failed. Never renumber: stored on disk (events.capnp).
enum class FailureKind : uint8_t {
  kUnknown = 0,
  kConfiguration = 1,  // Nobody supports the line, an API key or a line attribute is missing.
  kNetwork = 2,        // The partner system could not be reached.
  kTimeout = 3,        // The partner system did not answer in time.
  kServer = 4,         // The partner system answered with an error.
};

// "unknown", "configuration", "network", "timeout", "server"; "invalid" for a value outside the
// enumeration (which only a damaged record or a bug can produce).
std::string_view FailureKindName(FailureKind kind);
bool IsValidFailureKind(FailureKind kind);

struct User {
  int64_t id = 0;
  std::string username{};
  std::string email{};

  friend bool operator==(const User&, const User&) = default;
};

struct Attribute {
  std::string name{};  // e.g. "course_key", "certificate_type", "id_verification_required".
  std::string value{};

  friend bool operator==(const Attribute&, const Attribute&) = default;
};

struct Address {
  std::string first_name{};
  std::string last_name{};
  std::string line1{};
  std::string line2{};
  std::string city{};
  std::string state{};
  std::string postcode{};
  std::string country{};  // ISO 3166-1 alpha-2.

  friend bool operator==(const Address&, const Address&) = default;
};

struct Line {
  std::string line_id{};
  std::string product_type{};  // See domain/status.h: "Seat", "Course Entitlement", ...
  std::string sku{};
  std::string title{};
  int64_t quantity = 0;
  int64_t unit_price_minor = 0;  // Minor units of the order's currency.
  std::vector<Attribute> attributes{};

  friend bool operator==(const Line&, const Line&) = default;
};

struct PaymentCaptured {
  static constexpr std::string_view kTypeName = "PaymentCaptured";
  std::string order_number{};
  std::string processor{};  // e.g. "cybersource", "paypal".
  std::string reference{};  // The processor's transaction id.
  Money amount{};
  std::string card_type{};
  std::string card_last_digits{};
  int64_t captured_at_us = 0;
  // True when the order already existed: money to hand back.
  bool excess = false;

  friend bool operator==(const PaymentCaptured&, const PaymentCaptured&) = default;
};

struct OrderCreated {
  static constexpr std::string_view kTypeName = "OrderCreated";
  std::string order_number{};
  User user{};
  std::vector<Line> lines{};
  std::string shipping_method{};
  int64_t shipping_charge_minor = 0;  // Minor units of `currency`.
  Address billing_address{};
  int64_t total_minor = 0;  // Minor units of `currency`.
  std::string currency{};
  std::string partner{};  // Partner short code, e.g. "EDX".
  int64_t basket_id = 0;  // 0 when the caller gave no basket id.
  int64_t placed_at_us = 0;

  friend bool operator==(const OrderCreated&, const OrderCreated&) = default;
};

struct PostCheckout {
  static constexpr std::string_view kTypeName = "PostCheckout";
  std::string order_number{};
  bool synchronous = false;  // Whether the placing call waits for the outcome.

  friend bool operator==(const PostCheckout&, const PostCheckout&) = default;
};

struct LineFulfilled {
  static constexpr std::string_view kTypeName = "LineFulfilled";
  std::string order_number{};
  std::string line_id{};
  std::string module{};
  uint32_t attempt = 0;              // From 1.
  std::string external_reference{};  // e.g. the entitlement uuid.
  std::vector<std::string> codes{};  // Enrollment codes minted for the line.
  int64_t fulfilled_at_us = 0;       // Not yet in events.capnp.

  friend bool operator==(const LineFulfilled&, const LineFulfilled&) = default;
};

struct FulfillmentFailed {
  static constexpr std::string_view kTypeName = "FulfillmentFailed";
  std::string order_number{};
  std::string line_id{};
  std::string module{};
  uint32_t attempt = 0;  // From 1.
  FailureKind kind = FailureKind::kUnknown;
  std::string message{};
  bool retryable = false;
  int64_t next_retry_at_us = 0;  // 0 when no automatic retry follows.
  int64_t failed_at_us = 0;      // Not yet in events.capnp.

  friend bool operator==(const FulfillmentFailed&, const FulfillmentFailed&) = default;
};

struct FulfillmentRetryRequested {
  static constexpr std::string_view kTypeName = "FulfillmentRetryRequested";
  std::string order_number{};
  std::string requested_by{};
  std::string reason{};
  std::vector<std::string> line_ids{};  // Always explicit: never "all", never empty.
  bool automatic = false;               // True when the process manager's backoff asked for it.
  int64_t requested_at_us = 0;          // Not yet in events.capnp.

  friend bool operator==(const FulfillmentRetryRequested&,
                         const FulfillmentRetryRequested&) = default;
};

struct LineRevoked {
  static constexpr std::string_view kTypeName = "LineRevoked";
  std::string order_number{};
  std::string line_id{};
  std::string module{};
  std::string refund_reference{};
  int64_t revoked_at_us = 0;  // Not yet in events.capnp.

  friend bool operator==(const LineRevoked&, const LineRevoked&) = default;
};

struct RevocationFailed {
  static constexpr std::string_view kTypeName = "RevocationFailed";
  std::string order_number{};
  std::string line_id{};
  std::string module{};
  FailureKind kind = FailureKind::kUnknown;
  std::string message{};
  std::string refund_reference{};
  int64_t failed_at_us = 0;
  // The line's failed revocation attempts with this one, from 1; 0 in events written before
  // revocations were retried automatically.
  uint32_t attempt = 0;
  bool retryable = false;
  int64_t next_retry_at_us = 0;  // 0 when no automatic retry follows.

  friend bool operator==(const RevocationFailed&, const RevocationFailed&) = default;
};

// Ops asked to revoke a fulfilled line (on refund). Written before any call to the module, so
// that a revocation the ledger dies in the middle of is finished by the process manager after a
// restart instead of being forgotten; LineRevoked or RevocationFailed records its outcome.
struct RevocationRequested {
  static constexpr std::string_view kTypeName = "RevocationRequested";
  std::string order_number{};
  std::string line_id{};
  std::string refund_reference{};
  std::string requested_by{};
  int64_t requested_at_us = 0;
  bool automatic = false;  // True when the process manager's backoff asked for it.

  friend bool operator==(const RevocationRequested&, const RevocationRequested&) = default;
};

using Event =
    std::variant<PaymentCaptured, OrderCreated, PostCheckout, LineFulfilled, FulfillmentFailed,
                 FulfillmentRetryRequested, LineRevoked, RevocationFailed, RevocationRequested>;

// The event's type name, as stored in the envelope's `eventType`: "PaymentCaptured", ...
std::string_view EventTypeName(const Event& event);
// Every event type's name, in the variant's order.
std::vector<std::string_view> EventTypeNames();

// The order number every event carries.
const std::string& EventOrderNumber(const Event& event);

// The stream that holds an order's events: "order-" + order number.
inline constexpr std::string_view kOrderStreamPrefix = "order-";
std::string OrderStreamName(std::string_view order_number);

// A deterministic idempotency key for an event, derived from what makes it the same fact: a
// writer that retries after a crash sends the same id and the store keeps one copy.
//   PaymentCaptured: order number, processor, reference.
//   OrderCreated, PostCheckout: order number.
//   LineFulfilled, LineRevoked: order number, line (each happens once per line).
//   FulfillmentFailed: order number, line, attempt.
//   FulfillmentRetryRequested: order number, requester, time, lines.
//   RevocationFailed: order number, line, refund reference, time.
//   RevocationRequested: order number, line, refund reference, time.
EventId DeterministicEventId(const Event& event);

}  // namespace ledger::domain
