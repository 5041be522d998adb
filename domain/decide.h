// Decide: the ledger's rules. Given an order's state (folded from its stream, domain/order_state.h)
// and a command, either the events that record the command's outcome or a Rejection. Pure: no
// clock, no I/O; the same state and command always give the same answer.
//
// An empty list of events is an accepted, idempotent repeat: the log already says what the
// command asks (the same capture, the same placement, fulfilling a Complete line, revoking a
// Revoked line). The caller answers as it did the first time, from the state.
//
// The rules, in brief (rejection precedence: domain/rejection.h):
// - CapturePayment: recorded whether or not the order exists; flagged `excess` when the order
//   was already placed. The same (processor, reference) again is a repeat; with other content it
//   is kCaptureReferenceReused.
// - PlaceOrder: the basket must be well formed (lines, positive quantities, no negative amounts,
//   total == sum of quantity x unit price + shipping) and, unless free, covered by captures in
//   its currency. Accepted: OrderCreated then PostCheckout. The same order number again with the
//   same content (placement time and `synchronous` aside) is a repeat; else
//   kDuplicateOrderAttempt.
// - RecordLineFulfilled: Open or failed line -> Complete. A Complete line: a repeat (the first
//   fulfillment's references stay).
// - RecordFulfillmentFailed: Open or failed line -> the error of its kind; the domain numbers the
//   attempt and schedules the next automatic retry. A repeated failure of the same kind is still
//   recorded (a new attempt, a new message, a new retry time); the status simply stays.
// - RequestFulfillmentRetry: only fulfillable lines (Open or failed); none named means all of
//   them.
// - RecordLineRevoked: Complete or Revocation Error -> Revoked. A Revoked line: a repeat.
// - RecordRevocationFailed: Complete or Revocation Error -> Revocation Error.
// - RequestRevocation: a Complete or Revocation Error line with no revocation pending gets one
//   (the line's status stays until its outcome is recorded). A Revoked line, or one whose
//   revocation is pending for the same refund reference: a repeat; pending for another:
//   kRevocationPending.
//
// Thread safety: pure functions.
#pragma once

#include <vector>

#include "base/result.h"
#include "domain/commands.h"
#include "domain/events.h"
#include "domain/order_state.h"
#include "domain/rejection.h"

namespace ledger::domain {

using Decision = Result<std::vector<Event>, Rejection>;

// `state` is the fold of the stream named by ResolveOrderNumber(command) (empty when the stream
// does not exist yet).
Decision Decide(const OrderState& state, const Command& command);

Decision Decide(const OrderState& state, const CapturePayment& command);
Decision Decide(const OrderState& state, const PlaceOrder& command);
Decision Decide(const OrderState& state, const RecordLineFulfilled& command);
Decision Decide(const OrderState& state, const RecordFulfillmentFailed& command);
Decision Decide(const OrderState& state, const RequestFulfillmentRetry& command);
Decision Decide(const OrderState& state, const RecordLineRevoked& command);
Decision Decide(const OrderState& state, const RecordRevocationFailed& command);
Decision Decide(const OrderState& state, const RequestRevocation& command);

// When automatic retry number `retry` (from 1) after a failure at failed_at_us is due: by
// default failed_at_us + 2^(retry-1) seconds for the first kAutomaticRetriesMax retries; 0 (none)
// after that or when the failure is not retryable. A failure passes the line's automatic retries
// so far + 1, of its fulfillment or of its revocation (what ops ask for by hand does not count).
int64_t NextRetryAtUs(uint32_t retry, bool retryable, int64_t failed_at_us,
                      const RetrySchedule& schedule = {});

}  // namespace ledger::domain
