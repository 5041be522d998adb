// The codec between the ledger's domain events (domain/events.h) and the payloads the log
// stores: one Cap'n Proto struct per event type (eventstore/schema/events.capnp), named by the
// envelope's event type.
//
// Events are checked before encoding (a bug if they are malformed) and again after decoding
// (stored bytes are untrusted: a bad payload is kCorruption naming its position).
//
// Thread safety: free functions, safe from any thread.
#pragma once

#include <string>

#include "domain/events.h"
#include "domain/order_state.h"
#include "eventstore/event_store.h"

namespace ledger::eventstore {

// The schema version written with every payload of events.capnp. Adding fields does not change
// it (Cap'n Proto reads old and new records alike); a change of meaning would.
inline constexpr uint32_t kEventSchemaVersion = 1;

// Who and what caused an event: stored in the envelope, not the payload.
struct EventMetadata {
  EventId correlation_id;
  EventId causation_id;
  std::string actor;
};

std::string EncodeEventPayload(const domain::Event& event);

// The event ready to append: its deterministic id (domain::DeterministicEventId), its type name
// and its encoded payload.
NewEvent ToNewEvent(const domain::Event& event, const EventMetadata& metadata);

// Decodes the payload of a recorded event. kCorruption (naming the record's position) for an
// unknown event type, a schema version this build cannot read, or a malformed payload.
StoreResult<domain::Event> DecodeEvent(const RecordedEvent& record);

// An order's folded state as bytes (schema: OrderStateSnapshot), for projections that keep it.
// Decoding untrusted bytes gives kCorruption, never a crash; a decoded snapshot is checked for
// statuses inside their enumerations.
std::string EncodeOrderState(const domain::OrderState& state);
Result<domain::OrderState, Error> DecodeOrderState(std::string_view bytes);

// The same snapshot in Cap'n Proto's packed encoding (zero bytes run-length encoded: about 2.5
// times smaller for an order's state), appended to `out`; and its decoder, with the same checks.
void AppendPackedOrderState(const domain::OrderState& state, std::string& out);
Result<domain::OrderState, Error> DecodePackedOrderState(std::string_view bytes);

}  // namespace ledger::eventstore
