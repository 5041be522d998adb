# The ledger's events: the payloads carried by eventstore/schema/envelope.capnp.
#
# Numbering rule: fields are only ever added, with the next free number, never renumbered,
# retyped or reused; enumerants likewise. Stored on disk: a renumbered field silently misreads
# every old record. Money is always integer minor units with its ISO 4217 currency code.
@0xc16ed1e809d66495;

$import "/capnp/c++.capnp".namespace("ledger::eventstore::schema");

struct Money {
  minorUnits @0 :Int64;
  currency @1 :Text;         # ISO 4217, e.g. "USD".
}

struct User {
  id @0 :Int64;
  username @1 :Text;
  email @2 :Text;
}

struct Attribute {
  name @0 :Text;             # e.g. "course_key", "certificate_type", "id_verification_required".
  value @1 :Text;
}

struct Address {
  firstName @0 :Text;
  lastName @1 :Text;
  line1 @2 :Text;
  line2 @3 :Text;
  city @4 :Text;
  state @5 :Text;
  postcode @6 :Text;
  country @7 :Text;          # ISO 3166-1 alpha-2.
}

struct Line {
  lineId @0 :Text;
  productType @1 :Text;      # "Seat", "Course Entitlement", "Enrollment Code", "Coupon", ...
  sku @2 :Text;
  title @3 :Text;
  quantity @4 :Int64;
  unitPrice @5 :Int64;       # Minor units of the order's currency.
  attributes @6 :List(Attribute);
}

# Why a fulfillment or revocation failed. Never renumber: stored on disk.
enum FailureKind {
  unknown @0;
  configuration @1;
  network @2;
  timeout @3;
  server @4;
}

struct PaymentCaptured {
  orderNumber @0 :Text;
  processor @1 :Text;        # e.g. "cybersource", "paypal".
  reference @2 :Text;        # The processor's transaction id.
  amount @3 :Money;
  cardType @4 :Text;
  cardLastDigits @5 :Text;
  capturedAtUs @6 :Int64;
  # True when the order already existed with other payments covering it: money to hand back.
  excess @7 :Bool;
}

struct OrderCreated {
  orderNumber @0 :Text;
  user @1 :User;
  lines @2 :List(Line);
  shippingMethod @3 :Text;
  shippingCharge @4 :Int64;  # Minor units of `currency`.
  billingAddress @5 :Address;
  total @6 :Int64;           # Minor units of `currency`.
  currency @7 :Text;
  partner @8 :Text;          # Partner short code, e.g. "EDX".
  basketId @9 :Int64;        # 0 when the caller gave the order number itself.
  placedAtUs @10 :Int64;
}

struct PostCheckout {
  orderNumber @0 :Text;
  synchronous @1 :Bool;      # Whether the placing call waits for the outcome.
}

struct LineFulfilled {
  orderNumber @0 :Text;
  lineId @1 :Text;
  module @2 :Text;
  attempt @3 :UInt32;        # From 1.
  externalReference @4 :Text;  # e.g. the entitlement uuid.
  codes @5 :List(Text);      # Enrollment codes minted for the line.
  fulfilledAtUs @6 :Int64;
}

struct FulfillmentFailed {
  orderNumber @0 :Text;
  lineId @1 :Text;
  module @2 :Text;
  attempt @3 :UInt32;
  kind @4 :FailureKind;
  message @5 :Text;
  retryable @6 :Bool;
  nextRetryAtUs @7 :Int64;   # 0 when no automatic retry follows.
  failedAtUs @8 :Int64;
}

struct FulfillmentRetryRequested {
  orderNumber @0 :Text;
  requestedBy @1 :Text;
  reason @2 :Text;
  lineIds @3 :List(Text);
  automatic @4 :Bool;        # True when the process manager's backoff asked for it.
  requestedAtUs @5 :Int64;
}

struct LineRevoked {
  orderNumber @0 :Text;
  lineId @1 :Text;
  module @2 :Text;
  refundReference @3 :Text;
  revokedAtUs @4 :Int64;
}

struct RevocationFailed {
  orderNumber @0 :Text;
  lineId @1 :Text;
  module @2 :Text;
  kind @3 :FailureKind;
  message @4 :Text;
  refundReference @5 :Text;
  failedAtUs @6 :Int64;
  attempt @7 :UInt32;        # The line's failed revocation attempts with this one; 0 in older events.
  retryable @8 :Bool;
  nextRetryAtUs @9 :Int64;   # 0 when no automatic retry follows.
}

struct RevocationRequested {
  orderNumber @0 :Text;
  lineId @1 :Text;
  refundReference @2 :Text;
  requestedBy @3 :Text;
  requestedAtUs @4 :Int64;
  automatic @5 :Bool;  # The process manager's backoff asked for it (ops' requests: false).
}

# --- Snapshots: an order's folded state (domain::OrderState), stored by projections ---------
# Same numbering rule as above: fields are only ever added.

struct LineStateSnapshot {
  line @0 :Line;
  status @1 :UInt8;          # domain::LineStatus numbers.
  attempts @2 :UInt32;
  module @3 :Text;
  hasLastError @4 :Bool;
  lastErrorKind @5 :FailureKind;
  lastErrorMessage @6 :Text;
  nextRetryAtUs @7 :Int64;
  retryRequested @8 :Bool;
  externalReference @9 :Text;
  codes @10 :List(Text);
  refundReference @11 :Text;
  revocationRequested @12 :Bool;  # A RevocationRequested with no outcome recorded yet.
  revocationFailures @13 :UInt32;
  automaticRetries @14 :UInt32;   # FulfillmentRetryRequested events with `automatic` set.
  automaticRevocationRetries @15 :UInt32;  # RevocationRequested events with `automatic` set.
}

struct OrderStateSnapshot {
  orderNumber @0 :Text;
  eventsApplied @1 :UInt64;
  captures @2 :List(PaymentCaptured);  # orderNumber left empty: it is the snapshot's.
  hasPlacement @3 :Bool;
  placement @4 :OrderCreated;          # lines left empty: they are in `lines`.
  postCheckoutRequested @5 :Bool;
  postCheckoutSynchronous @6 :Bool;
  lines @7 :List(LineStateSnapshot);
  status @8 :UInt8;                    # domain::OrderStatus numbers.
  totalMinor @9 :Int64;
  capturedMinor @10 :Int64;
  dueMinor @11 :Int64;
  overpaidMinor @12 :Int64;
  refundedMinor @13 :Int64;
  retryRequests @14 :UInt32;
}
