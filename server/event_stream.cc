#include "server/event_stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>

#include "eventstore/event_codec.h"
#include "server/api_json.h"

namespace ledger::server {

namespace asio = boost::asio;

bool EventFilter::Matches(const eventstore::RecordedEvent& event) const {
  if (!event.stream.starts_with(stream_prefix)) return false;
  return types.empty() || std::find(types.begin(), types.end(), event.event_type) != types.end();
}

namespace {

class LogStream;

}  // namespace

class EventStreamHub::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(eventstore::EventStore& store, EventStreamOptions options)
      : store_(store), options_(options), pool_(std::max<size_t>(1, options.reader_threads)) {}

  void Start() {
    std::weak_ptr<Impl> weak = weak_from_this();
    listener_ = store_.AddCommitListener([weak](uint64_t head) {
      if (auto self = weak.lock()) self->WakeUpTo(head);
    });
  }

  void Shutdown();
  // Called by the store after each commit: wakes the parked streams that have events now.
  void WakeUpTo(uint64_t head);
  void Park(const std::shared_ptr<LogStream>& stream);
  void Unpark(const std::shared_ptr<LogStream>& stream);

  eventstore::EventStore& store_;
  const EventStreamOptions options_;
  asio::thread_pool pool_;
  uint64_t listener_ = 0;
  std::atomic<uint64_t> streams_open_{0};
  std::atomic<uint64_t> events_sent_{0};
  std::mutex mutex_;
  std::set<std::shared_ptr<LogStream>> parked_;  // Under mutex_.
};

namespace {

std::string ErrorMessage(std::string_view code, std::string_view message) {
  return fmt::format("event: error\ndata: {}\n\n", boost::json::serialize(boost::json::object{
                                                       {"code", code}, {"message", message}}));
}

class LogStream : public BodyStream, public std::enable_shared_from_this<LogStream> {
 public:
  LogStream(std::shared_ptr<EventStreamHub::Impl> hub, uint64_t first_position, EventFilter filter)
      : hub_(std::move(hub)),
        next_(std::max<uint64_t>(1, first_position)),
        filter_(std::move(filter)),
        strand_(asio::make_strand(hub_->pool_)),
        heartbeat_(strand_) {
    hub_->streams_open_.fetch_add(1);
  }
  ~LogStream() override { hub_->streams_open_.fetch_sub(1); }

  void Next(Deliver deliver) override {
    asio::post(strand_, [self = shared_from_this(), deliver = std::move(deliver)]() mutable {
      self->Fill(std::move(deliver));
    });
  }

  void Cancel() override {
    std::optional<Deliver> pending;
    {
      std::lock_guard lock(mutex_);
      if (cancelled_) return;
      cancelled_ = true;
      pending.swap(pending_);
    }
    hub_->Unpark(shared_from_this());
    asio::post(strand_, [self = shared_from_this()] { self->heartbeat_.cancel(); });
    if (pending) (*pending)("", true);
  }

  // The store reached `head`: a parked stream with events to read goes back to reading.
  bool WantsUpTo(uint64_t head) const { return next_.load() <= head; }

  void Wake() {
    std::optional<Deliver> pending;
    {
      std::lock_guard lock(mutex_);
      pending.swap(pending_);
    }
    if (!pending) return;
    asio::post(strand_, [self = shared_from_this(), deliver = std::move(*pending)]() mutable {
      self->heartbeat_.cancel();
      self->Fill(std::move(deliver));
    });
  }

  uint64_t next_position() const { return next_.load(); }

 private:
  // SSE messages for the client, `events` of them; `end` when it ends the stream (an error).
  struct Piece {
    std::string text;
    uint64_t events = 0;
    bool end = false;
  };

  // On the strand: reads and delivers what the log has from next_ on, or parks. While the piece
  // is written to the client, the next one is read (Prefetch), so that the reader and the socket
  // work at the same time during a catch-up.
  void Fill(Deliver deliver) {
    {
      std::lock_guard lock(mutex_);
      if (cancelled_) return deliver("", true);
    }
    Piece piece;
    if (prefetched_) {
      piece = std::move(*prefetched_);
      prefetched_.reset();
    } else {
      piece = Read();
    }
    if (piece.events > 0 || piece.end) {
      hub_->events_sent_.fetch_add(piece.events);
      const bool end = piece.end;
      if (!end) {
        asio::post(strand_, [self = shared_from_this()] { self->Prefetch(); });
      }
      return deliver(std::move(piece.text), end);
    }
    if (next_.load() <= hub_->store_.HeadPosition()) return deliver("", false);  // Keep skipping.
    Park(std::move(deliver));
  }

  // On the strand: reads the next piece ahead of the client's request for it. At most one piece
  // waits, so a slow client still reads from the log instead of being buffered for.
  void Prefetch() {
    if (prefetched_) return;
    {
      std::lock_guard lock(mutex_);
      if (cancelled_) return;
    }
    Piece piece = Read();
    if (piece.events > 0 || piece.end) prefetched_ = std::move(piece);
  }

  // On the strand: the messages of up to batch_events_max events from next_ on that the filter
  // keeps, written straight into one string (no JSON tree, no copy of the records); next_ moves
  // past the events read. Skipping events the filter drops reads at most 64 batches, so that one
  // stream cannot hold a reader thread for long. A record that cannot be read ends the piece
  // with an error message after the events before it.
  Piece Read() {
    Piece piece;
    const uint64_t first = next_.load();
    const uint64_t head = hub_->store_.HeadPosition();
    if (first > head) return piece;
    const uint64_t batch_events_max = std::max<uint64_t>(1, hub_->options_.batch_events_max);
    const uint64_t last = std::min(head, first + 64 * batch_events_max - 1);
    piece.text.reserve(piece_bytes_hint_);
    uint64_t next = first;
    std::optional<eventstore::Error> corrupt;
    auto scanned = hub_->store_.ScanAll(first, last, [&](const eventstore::RecordedEvent& record) {
      if (filter_.Matches(record)) {
        auto event = eventstore::DecodeEvent(record);
        if (!event) {
          corrupt = std::move(event).error();
          return false;
        }
        AppendMessage(record, *event, piece.text);
        ++piece.events;
      }
      next = record.position + 1;
      return piece.events < batch_events_max;
    });
    next_.store(next);
    if (corrupt) {
      piece.text += ErrorMessage("corruption", corrupt->ToString());
      piece.end = true;
    } else if (!scanned) {
      piece.text += ErrorMessage("store_error", scanned.error().ToString());
      piece.end = true;
    }
    // The next piece is likely as large: one allocation instead of a series of doublings.
    piece_bytes_hint_ = std::min<size_t>(piece.text.size() + piece.text.size() / 8, 64u << 20);
    return piece;
  }

  static void AppendMessage(const eventstore::RecordedEvent& record, const domain::Event& event,
                            std::string& out) {
    char position[24];
    out.append("id: ");
    out.append(position,
               std::to_chars(std::begin(position), std::end(position), record.position).ptr);
    out.append("\nevent: ");
    out.append(record.event_type);
    out.append("\ndata: ");
    AppendRecordJson(record, event, out);
    out.append("\n\n");
  }

  void Park(Deliver deliver) {
    {
      std::lock_guard lock(mutex_);
      if (cancelled_) return deliver("", true);
      pending_ = std::move(deliver);
    }
    hub_->Park(shared_from_this());
    // A commit between the head check and parking found nobody to wake: check again.
    if (next_.load() <= hub_->store_.HeadPosition()) {
      hub_->Unpark(shared_from_this());
      return Wake();
    }
    heartbeat_.expires_after(std::chrono::milliseconds(hub_->options_.heartbeat_ms));
    heartbeat_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return;
      std::optional<Deliver> pending;
      {
        std::lock_guard lock(self->mutex_);
        pending.swap(self->pending_);
      }
      if (!pending) return;
      self->hub_->Unpark(self);
      (*pending)(": keep-alive\n\n", false);
    });
  }

  const std::shared_ptr<EventStreamHub::Impl> hub_;
  std::atomic<uint64_t> next_;
  const EventFilter filter_;
  // Fill, parking and the heartbeat run on the stream's strand, one at a time.
  asio::strand<asio::thread_pool::executor_type> strand_;
  asio::steady_timer heartbeat_;
  std::mutex mutex_;
  std::optional<Deliver> pending_;   // Under mutex_: the parked request for a piece.
  std::optional<Piece> prefetched_;  // On the strand: read ahead, not yet asked for.
  size_t piece_bytes_hint_ = 0;      // On the strand.
  bool cancelled_ = false;           // Under mutex_.
};

}  // namespace

void EventStreamHub::Impl::WakeUpTo(uint64_t head) {
  std::vector<std::shared_ptr<LogStream>> ready;
  {
    std::lock_guard lock(mutex_);
    for (auto it = parked_.begin(); it != parked_.end();) {
      if ((*it)->WantsUpTo(head)) {
        ready.push_back(*it);
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& stream : ready) stream->Wake();
}

void EventStreamHub::Impl::Park(const std::shared_ptr<LogStream>& stream) {
  std::lock_guard lock(mutex_);
  parked_.insert(stream);
}

void EventStreamHub::Impl::Unpark(const std::shared_ptr<LogStream>& stream) {
  std::lock_guard lock(mutex_);
  parked_.erase(stream);
}

void EventStreamHub::Impl::Shutdown() {
  store_.RemoveCommitListener(listener_);
  std::set<std::shared_ptr<LogStream>> parked;
  {
    std::lock_guard lock(mutex_);
    parked.swap(parked_);
  }
  for (const auto& stream : parked) stream->Cancel();
  pool_.join();
}

EventStreamHub::EventStreamHub(eventstore::EventStore& store, EventStreamOptions options)
    : impl_(std::make_shared<Impl>(store, options)) {
  impl_->Start();
}

EventStreamHub::~EventStreamHub() { impl_->Shutdown(); }

std::shared_ptr<BodyStream> EventStreamHub::Open(uint64_t first_position, EventFilter filter) {
  return std::make_shared<LogStream>(impl_, first_position, std::move(filter));
}

uint64_t EventStreamHub::streams_open() const { return impl_->streams_open_.load(); }

uint64_t EventStreamHub::events_sent() const { return impl_->events_sent_.load(); }

}  // namespace ledger::server
