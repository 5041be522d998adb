// Module: what fulfills (and revokes) the lines of one kind of product: a course seat through the
// LMS Enrollment API, an entitlement through the LMS Entitlement API, enrollment codes minted
// locally, ... The process manager hands each line to the first configured module that supports
// it (see router.h) and records what the module says as LineFulfilled / FulfillmentFailed /
// LineRevoked / RevocationFailed.
//
// A module never throws and never decides what happens next: it reports one outcome per line,
// with a failure kind, a message for support and whether an automatic retry may help. Every
// external call carries an Idempotency-Key derived from (order number, line id, operation), so
// that a retry of an attempt whose answer was lost performs the effect at most once.
//
// Thread safety: every Module implementation is safe to call from several threads at once.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "domain/events.h"
#include "domain/order_state.h"

namespace ledger::fulfillment {

// Why a line could not be fulfilled or revoked.
struct Failure {
  domain::FailureKind kind = domain::FailureKind::kUnknown;
  // One or two sentences for support: what was attempted, the partner's HTTP status and its own
  // message where there was one. Valid UTF-8, at most kFailureMessageBytesMax bytes.
  std::string message{};
  // Whether trying again later, unchanged, may succeed: network failures, timeouts, 5xx, 408 and
  // 429 answers. Configuration errors and other 4xx answers need a human first.
  bool retryable = false;

  friend bool operator==(const Failure&, const Failure&) = default;
};

inline constexpr size_t kFailureMessageBytesMax = 1'024;

// What a successful fulfillment produced.
struct Fulfillment {
  // The partner's id for what it created (the entitlement uuid); empty when it has none.
  std::string external_reference{};
  // Enrollment codes minted for the line; empty for other products.
  std::vector<std::string> codes{};

  friend bool operator==(const Fulfillment&, const Fulfillment&) = default;
};

struct LineOutcome {
  std::string line_id{};
  // The module that produced the outcome; empty when no module supports the line.
  std::string module{};
  Result<Fulfillment, Failure> result;

  bool succeeded() const { return result.has_value(); }
};

// What a successful revocation says, e.g. that nothing outside the ledger had to be undone.
struct Revocation {
  std::string note{};

  friend bool operator==(const Revocation&, const Revocation&) = default;
};

struct RevokeOutcome {
  std::string line_id{};
  std::string module{};
  Result<Revocation, Failure> result;

  bool succeeded() const { return result.has_value(); }
};

class Module {
 public:
  virtual ~Module() = default;

  // The module's configuration name, recorded in the events: "enrollment", "course_entitlement",
  // "enrollment_code", "coupon", "donation".
  virtual std::string_view name() const = 0;

  // Whether this module fulfills lines like `line` (by product type).
  virtual bool Supports(const domain::Line& line) const = 0;

  // Fulfills `lines` (all supported, all from `order`). Returns exactly one outcome per line, in
  // the order of `lines`. Blocks for the external calls, each bounded by the module's timeouts.
  virtual std::vector<LineOutcome> Fulfill(const domain::OrderCreated& order,
                                           std::span<const domain::Line> lines) = 0;

  // Undoes a fulfilled line of `order`: `line` carries what fulfillment recorded (external
  // reference, codes). Blocks like Fulfill.
  virtual RevokeOutcome Revoke(const domain::OrderCreated& order,
                               const domain::LineState& line) = 0;
};

// The operations an Idempotency-Key names. Never change the text: keys derived from it are in
// flight at partners (a retry after an upgrade must send the key its first attempt sent).
inline constexpr std::string_view kOperationEnroll = "enroll";
inline constexpr std::string_view kOperationUnenroll = "unenroll";
inline constexpr std::string_view kOperationCreateEntitlement = "create-entitlement";
inline constexpr std::string_view kOperationRevokeEntitlement = "revoke-entitlement";

// Appends `field` length-prefixed ("3:abc"), so that keys built from several fields never
// collide: ("a-1", "2") and ("a", "1-2") give different texts.
void AppendKeyField(std::string& out, std::string_view field);

// The Idempotency-Key of one external call: a UUID text derived from (order number, line id,
// operation) only, so every attempt of the same operation on the same line sends the same key.
std::string IdempotencyKey(std::string_view order_number, std::string_view line_id,
                           std::string_view operation);

// The value of the line's attribute `name`; empty when the line has none.
std::string_view FindAttribute(const domain::Line& line, std::string_view name);

// `text` cut to at most `bytes_max` bytes on a character boundary, with control characters
// replaced by spaces and invalid UTF-8 bytes by '?': safe to put in an event's message.
std::string SanitizeMessage(std::string_view text, size_t bytes_max);

// Helpers for module implementations.
LineOutcome Succeeded(const domain::Line& line, std::string_view module, Fulfillment fulfillment);
LineOutcome Failed(const domain::Line& line, std::string_view module, Failure failure);

}  // namespace ledger::fulfillment
