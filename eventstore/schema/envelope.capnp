# The record the log stores at each position.
#
# Numbering rule: fields are only ever added, with the next free number, never renumbered,
# retyped or reused. Stored on disk: a renumbered field silently misreads every old record.
@0xb86d129376c5c1fe;

$import "/capnp/c++.capnp".namespace("ledger::eventstore::schema");

struct Envelope {
  eventId @0 :Data;          # 16 bytes, the writer's idempotency key.
  stream @1 :Text;           # e.g. "order-EDX-100042".
  version @2 :UInt64;        # Within the stream, from 0.
  position @3 :UInt64;       # Within the whole log, from 1.
  eventType @4 :Text;        # e.g. "OrderCreated"; selects the payload's schema.
  recordedAtUs @5 :Int64;    # Commit time, microseconds since the Unix epoch.
  correlationId @6 :Data;    # 16 bytes; all zero when none.
  causationId @7 :Data;      # 16 bytes; all zero when none.
  actor @8 :Text;
  schemaVersion @9 :UInt32;  # Version of the payload's schema.
  payload @10 :Data;         # The event, encoded with the struct named by eventType.
  previousHash @11 :Data;    # 32 bytes: the hash of the record at position - 1 (zero at 1).
  hash @12 :Data;            # 32 bytes: SHA-256 over previousHash and the canonical bytes.
}
