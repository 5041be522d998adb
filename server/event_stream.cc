#include "server/event_stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>

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
  // On the strand: reads and delivers what the log has from next_ on, or parks.
  void Fill(Deliver deliver) {
    {
      std::lock_guard lock(mutex_);
      if (cancelled_) return deliver("", true);
    }
    std::string piece;
    size_t sent = 0;
    // Skipping events the filter drops may take several batches; bounded so that one stream
    // cannot hold a reader thread for long.
    for (int batches = 0; batches < 64 && next_.load() <= hub_->store_.HeadPosition(); ++batches) {
      auto page = hub_->store_.ReadAll(next_.load(), hub_->options_.batch_events_max);
      if (!page) {
        return deliver(piece + ErrorMessage("store_error", page.error().ToString()), true);
      }
      for (const eventstore::RecordedEvent& event : page->events) {
        if (!filter_.Matches(event)) continue;
        auto json = RecordJson(event);
        if (!json)
          return deliver(piece + ErrorMessage("corruption", json.error().ToString()), true);
        piece += fmt::format("id: {}\nevent: {}\ndata: {}\n\n", event.position, event.event_type,
                             boost::json::serialize(*json));
        ++sent;
      }
      next_.store(page->next_position);
      if (sent > 0 || page->events.empty()) break;
    }
    if (sent > 0) {
      hub_->events_sent_.fetch_add(sent);
      return deliver(std::move(piece), false);
    }
    if (next_.load() <= hub_->store_.HeadPosition()) return deliver("", false);  // Keep skipping.
    Park(std::move(deliver));
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
  std::optional<Deliver> pending_;  // Under mutex_: the parked request for a piece.
  bool cancelled_ = false;          // Under mutex_.
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
