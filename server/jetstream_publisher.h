// JetStreamPublisher: follows the committed log from its own checkpoint and publishes every event,
// exactly once and in position order, into a replicated NATS JetStream stream, so that services
// that outgrow the ledger's own subscriptions can read the log from a NATS cluster instead.
//
// What a message is (README.md, "Publishing to NATS JetStream", says the same for consumers):
//   subject   <subject_prefix>.<stream token>.<event type token>, e.g.
//             ledger.order-EDX-100042.PaymentCaptured. A token keeps [A-Za-z0-9_-] and writes
//             every other byte as %XX (uppercase hex), because '.', '*', '>' and whitespace are
//             not allowed inside a NATS subject token ('%' itself becomes %25, so the mapping
//             is reversible); an empty name is the token "%".
//   payload   the event's stored payload bytes, unchanged.
//   headers   Ledger-Position, Ledger-Stream (the name, unescaped), Ledger-Version,
//             Ledger-Event-Id, Ledger-Event-Type, Ledger-Hash and Ledger-Previous-Hash (64 hex
//             digits each: a consumer can check that consecutive messages link),
//             Ledger-Recorded-At-Us, and Nats-Msg-Id = the event id, so that JetStream drops a
//             copy sent again within its duplicate window; when the message's stream sequence
//             is not its position (the stream was purged before), the id is followed by "@" and
//             sequence - position (see below).
//
// Exactly once, in order. Messages are published asynchronously, up to max_in_flight without an
// acknowledgement. Each carries Nats-Expected-Last-Sequence = the stream sequence of the message
// before it (the first message into an empty stream carries none), so the stream accepts a
// message only directly after its predecessor: if one publish fails (timeout, leader change,
// lost quorum) every later one in flight is rejected too, and the stream never holds a gap
// followed by later events. On any failure, and at every (re)start, the publisher stops sending,
// waits for the outstanding acknowledgements (at most ack_timeout_ms), drops the rest, and asks
// the stream for its last message: the Ledger-Position in it is where the stream ends, and
// publishing resumes after it with that message's sequence as the expected last sequence. The
// stream is thus the authority on what has been published; the checkpoint in the state store
// (key js/checkpoint/<stream>) advances only past positions acknowledged contiguously, and is
// what the lag and a restart with NATS unreachable start from. Its last message must also carry
// the hash our log has at that position; otherwise the stream belongs to another ledger and
// nothing is published (last_error says so).
//
// A stream that lost messages. A stream deleted (or gone with a server's store) is created
// again with the configuration and gets the log from position 1; so does an empty one (purged)
// after positions were acknowledged, unless it has limits. While connected the publisher asks
// for the stream's state every second, so a deletion or a purge is noticed while the ledger is
// quiet too, not at the next event. A stream that holds some but not all of positions 1 to its
// end (its head purged while publishing went on, messages deleted) is not repaired: publishing
// goes on at its end, and last_error says which positions it lacks, judged from one snapshot of
// the stream's state (a message deleted inside it, or a first message that is not position 1),
// and that an operator who purges the stream (all of it) makes the ledger publish the whole log
// again. The publisher never purges or deletes anything. A stream with limits or a retention
// that remove messages (set by an operator; the publisher creates none) is not expected to hold
// the whole log: there a missing head is no loss.
//
// The Nats-Msg-Id of a message is the event id when its stream sequence equals its position,
// else the event id, "@" and the difference (sequence - position, the same for every message
// published since the stream's last purge). A predecessor and its successor compute the same id
// for the same message at the same place, so the duplicate window still drops a killed
// publisher's copies; and positions published again after a purge (which keeps the last
// sequence, and the purged messages' ids in the duplicate window) get new sequences, hence new
// ids, and are not mistaken for copies.
//
// Why the expected sequence rather than stopping at the first failure alone: with a window of
// acknowledgements in flight, the server may already have stored later messages when the
// failure of an earlier one is known; only a condition checked by the server itself keeps them
// out. Nats-Msg-Id is the second line of defence: the messages a killed publisher left in flight
// inside the cluster may land after its successor read the stream's last message; the successor's
// copies are then answered as duplicates (or rejected by the sequence check), and either answer
// makes it read the stream's end again. Such a resend happens at most ack_timeout_ms (5 s by
// default) plus one reconnect after the first send, far inside the duplicate window (120 s by
// default, at least 2 x ack_timeout_ms enforced by the configuration).
//
// NATS unreachable: the publisher retries with backoff (reconnect_backoff_ms_min doubling to
// _max) on its own thread; the ledger keeps serving, and Stats() shows the lag growing and, in
// last_error, why (the connection's state and the client's last error), also while messages
// sent before the connection broke wait for their answers.
//
// Thread safety: every public method may be called from any thread. One thread publishes; the
// NATS client calls back on its own threads to report acknowledgements.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "eventstore/event_store.h"
#include "eventstore/state_store.h"

namespace ledger::server {

// The [jetstream] table of ledgerd's TOML configuration.
struct JetStreamConfig {
  bool enabled = false;
  // NATS servers to connect to (any of them; the client learns the rest of the cluster).
  std::vector<std::string> urls = {"nats://127.0.0.1:4222"};
  // The JetStream stream: created with these settings if missing, updated when replicas or the
  // duplicate window differ, refused when its storage or subjects differ.
  std::string stream = "LEDGER";
  std::string subject_prefix = "ledger";
  int64_t replicas = 3;
  bool memory_storage = false;  // storage = "file" (the default) or "memory".
  int64_t duplicate_window_s = 120;
  // Publishes sent and not yet acknowledged, at most.
  size_t max_in_flight = 256;
  // How long one publish waits for its acknowledgement before it counts as failed.
  int64_t ack_timeout_ms = 5'000;
  // Backoff between attempts to connect, create the stream or resume after a failure.
  int64_t reconnect_backoff_ms_min = 100;
  int64_t reconnect_backoff_ms_max = 5'000;
};

// Reads the [jetstream] table of a TOML document (the defaults when there is none). Unknown keys,
// wrong types and values out of range are errors naming the key and its line.
Result<JetStreamConfig, std::string> ParseJetStreamConfig(std::string_view toml_document);

// A name as one NATS subject token (see the header comment); SubjectTokenDecode reverses it.
std::string SubjectToken(std::string_view name);
std::string SubjectTokenDecode(std::string_view token);
// The subject an event is published to.
std::string SubjectFor(std::string_view subject_prefix, const eventstore::RecordedEvent& event);

// Header names, stable: consumers read them.
inline constexpr char kHeaderPosition[] = "Ledger-Position";
inline constexpr char kHeaderStream[] = "Ledger-Stream";
inline constexpr char kHeaderVersion[] = "Ledger-Version";
inline constexpr char kHeaderEventId[] = "Ledger-Event-Id";
inline constexpr char kHeaderEventType[] = "Ledger-Event-Type";
inline constexpr char kHeaderHash[] = "Ledger-Hash";
inline constexpr char kHeaderPreviousHash[] = "Ledger-Previous-Hash";
inline constexpr char kHeaderRecordedAt[] = "Ledger-Recorded-At-Us";

struct JetStreamStats {
  // Messages the stream acknowledged as newly stored, since Start.
  uint64_t published = 0;
  // The last position the stream is known to hold, every position before it too (the
  // checkpoint).
  uint64_t acknowledged_position = 0;
  uint64_t head_position = 0;
  uint64_t lag = 0;  // head_position - acknowledged_position.
  uint64_t in_flight = 0;
  bool connected = false;
  // Times the publisher had to start over: failed connects, stream checks, publishes.
  uint64_t retries = 0;
  // Acknowledgements that said "duplicate" (each makes the publisher re-read the stream's end).
  uint64_t duplicates = 0;
  // The last problem met, empty when there was none since the last success; followed by what
  // the stream lacks of positions 1 to its end (while it lacks it) and by a lost connection's
  // state (while it lasts), each kept on its own so that neither overwrites the other.
  std::string last_error;
};

class JetStreamPublisher {
 public:
  // Reads the checkpoint. Does not connect: that happens on the publisher's thread after Start.
  static eventstore::StoreResult<std::unique_ptr<JetStreamPublisher>> Open(
      eventstore::EventStore& store, eventstore::StateStore& state, JetStreamConfig config);

  virtual ~JetStreamPublisher() = default;

  // Starts the publishing thread. Called once.
  virtual void Start() = 0;
  // Stops publishing, waits (at most ack_timeout_ms) for acknowledgements in flight, saves the
  // checkpoint and closes the connection. Idempotent; the destructor calls it.
  virtual void Stop() = 0;
  // A consistent copy of the counters, for /metrics and /healthz.
  virtual JetStreamStats Stats() const = 0;
  // Waits until the stream holds every position up to `position`, or the timeout passes;
  // returns whether it does.
  virtual bool WaitForAcknowledged(uint64_t position, int64_t timeout_ms) = 0;
};

// A message of the stream as a consumer reads it back.
struct JetStreamMessage {
  uint64_t sequence = 0;  // The stream's sequence number.
  std::string subject;
  uint64_t position = 0;  // 0 when the message has no Ledger-Position header.
  std::string stream;
  uint64_t version = 0;
  std::string event_id;
  std::string event_type;
  std::string hash;  // Hex, as published.
  std::string previous_hash;
  int64_t recorded_at_us = 0;
  std::string payload;
};

// Reads the stream the publisher writes: for consumers (server/jetstream_consume_main.cc), the
// tests and the benchmark. One thread at a time.
class JetStreamReader {
 public:
  // Connects to the servers; fails with a text when none answers within the timeout.
  static Result<std::unique_ptr<JetStreamReader>, std::string> Connect(
      const std::vector<std::string>& urls, std::string stream, int64_t timeout_ms = 5'000);

  virtual ~JetStreamReader() = default;

  // The stream's first and last sequence (both 0 when it never held a message).
  virtual Result<std::pair<uint64_t, uint64_t>, std::string> Bounds() = 0;
  // The sequence of the first message whose Ledger-Position is >= `position` (binary search
  // over the headers, which increase with the sequence), or last sequence + 1 when none is.
  virtual Result<uint64_t, std::string> SequenceOfPosition(uint64_t position) = 0;
  // Delivers the messages from `from_sequence` on, in order, through an ordered consumer,
  // until `visitor` returns false or no message came for `idle_timeout_ms`.
  virtual Result<void, std::string> Consume(
      uint64_t from_sequence, int64_t idle_timeout_ms,
      const std::function<bool(const JetStreamMessage&)>& visitor) = 0;
};

}  // namespace ledger::server
