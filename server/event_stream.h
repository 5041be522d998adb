// EventStreamHub: the log as server-sent events (GET /v1/subscribe), catch-up then live.
//
// Each subscriber gets a BodyStream (server/http_server.h) that reads the log from its position
// in batches on the hub's reader threads (the next batch while the previous one is written, at
// most one ahead) and, once caught up, parks until the store commits more (one commit listener
// for all subscribers) or a heartbeat is due. Nothing blocks an HTTP thread, and a parked
// subscriber costs a timer and a few hundred bytes.
//
// Wire format, one message per event whose stream starts with the filter's prefix and whose
// type is among the filter's types (all when empty):
//
//   id: <position>
//   event: <type>
//   data: <the event as JSON, as in GET /v1/events>
//
// "id" is the position, so an EventSource that reconnects sends it back as Last-Event-ID and
// resumes right after it: nothing skipped, nothing repeated. While caught up, a comment line
// (": keep-alive") goes out every heartbeat, so that proxies keep the connection and a client
// that left is noticed. A log that cannot be read ends the stream with an "event: error"
// message whose data is {"code", "message"}.
//
// Thread safety: everything may be called from any thread. The hub must outlive its streams'
// use by the HTTP server: stop the server before destroying the hub.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eventstore/event_store.h"
#include "server/http_server.h"

namespace ledger::server {

struct EventFilter {
  std::string stream_prefix;       // "" matches every stream.
  std::vector<std::string> types;  // Empty matches every type.

  bool Matches(const eventstore::RecordedEvent& event) const;
};

struct EventStreamOptions {
  // Events sent in one piece at most. A piece reads at most 64 times as many from the log, when
  // the filter drops events.
  size_t batch_events_max = 1'000;
  int64_t heartbeat_ms = 15'000;
  size_t reader_threads = 2;
};

class EventStreamHub {
 public:
  EventStreamHub(eventstore::EventStore& store, EventStreamOptions options = {});
  // Cancels every stream still open and joins the reader threads.
  ~EventStreamHub();
  EventStreamHub(const EventStreamHub&) = delete;
  EventStreamHub& operator=(const EventStreamHub&) = delete;

  // A stream of the events from `first_position` on (1: the whole log).
  std::shared_ptr<BodyStream> Open(uint64_t first_position, EventFilter filter);

  // For metrics.
  uint64_t streams_open() const;
  uint64_t events_sent() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ledger::server
