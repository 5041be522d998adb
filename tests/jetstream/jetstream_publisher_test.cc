// The JetStream publisher against a real 3-node JetStream cluster on loopback ports (see
// nats_cluster.h): every event arrives once, in position order, with the log's hashes, also
// when the events are appended while it publishes, after a restart, when NATS is unreachable at
// start, and when one node and then two nodes of the cluster stop and come back. Also the
// subject mapping and the [jetstream] configuration table.
#include <fmt/format.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "eventstore/event_store.h"
#include "eventstore/state_store.h"
#include "server/jetstream_publisher.h"
#include "tests/eventstore/store_test_support.h"
#include "tests/jetstream/nats_cluster.h"

namespace ledger::jetstream_testing {
namespace {

using namespace std::chrono_literals;
using eventstore::testing::Scaled;
using eventstore::testing::TempDir;
using server::JetStreamConfig;
using server::JetStreamPublisher;

// Appends batches of 1-8 events to streams whose names need escaping, until stopped. Its thread
// makes no Catch2 assertion (Catch2 v2's assertions are not thread-safe: a failing REQUIRE on the
// main thread while this one asserted once ended in a SIGSEGV); a failed append is kept and
// checked by Stop and Join, on the caller's thread.
class BackgroundAppender {
 public:
  BackgroundAppender(eventstore::EventStore& store, std::string prefix, uint64_t seed)
      : store_(store), prefix_(std::move(prefix)), random_(seed) {}
  ~BackgroundAppender() { Finish(); }

  // Appends until `events` more were appended, as fast as the store allows; with 0, until Stop,
  // one batch per millisecond at most (thousands of events per second, not a flood that
  // outruns the publisher and loads the machine for nothing).
  void Start(uint64_t events = 0) {
    limit_ = events;
    thread_ = std::thread([this] {
      while (!stop_ && (limit_ == 0 || appended_ < limit_)) {
        if (!AppendOne()) return;
        if (limit_ == 0) std::this_thread::sleep_for(1ms);
      }
    });
  }
  void Stop() {
    Finish();
    CheckNoFailure();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
    CheckNoFailure();
  }
  uint64_t appended() const { return appended_; }

 private:
  void Finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void CheckNoFailure() {
    std::lock_guard lock(failure_mutex_);
    INFO("background append failed: " << failure_);
    CHECK(failure_.empty());
  }
  bool AppendOne() {
    const uint64_t batch = 1 + random_() % 8;
    std::vector<eventstore::NewEvent> events;
    for (uint64_t i = 0; i < batch; ++i) {
      eventstore::NewEvent event =
          eventstore::testing::MakeEvent(fmt::format("{}/{}/{}", prefix_, appended_, i));
      static constexpr const char* kTypes[] = {"PaymentCaptured", "OrderCreated", "Line.Fulfilled"};
      event.event_type = kTypes[(appended_ + i) % 3];
      events.push_back(std::move(event));
    }
    const std::string stream = StreamNameFor(random_() % 50);
    auto appended = store_.Append(stream, eventstore::ExpectedVersion::Any(), events);
    if (!appended) {
      std::lock_guard lock(failure_mutex_);
      failure_ = appended.error().message;
      return false;
    }
    appended_ += batch;
    return true;
  }

  eventstore::EventStore& store_;
  const std::string prefix_;
  std::mt19937_64 random_;
  std::atomic<bool> stop_ = false;
  std::atomic<uint64_t> appended_ = 0;
  uint64_t limit_ = 0;
  std::thread thread_;
  std::mutex failure_mutex_;
  std::string failure_;
};

JetStreamConfig TestConfig(const NatsCluster& cluster, const std::string& stream) {
  JetStreamConfig config;
  config.enabled = true;
  config.urls = cluster.urls();
  config.stream = stream;
  config.subject_prefix = "ledger";
  config.replicas = 3;
  config.duplicate_window_s = 30;
  config.max_in_flight = 64;
  config.ack_timeout_ms = static_cast<int64_t>(Scaled(1'000, 3'000));
  config.reconnect_backoff_ms_min = 20;
  config.reconnect_backoff_ms_max = 500;
  return config;
}

struct Ledger {
  std::unique_ptr<eventstore::EventStore> store;
  std::unique_ptr<eventstore::StateStore> state;
};

Ledger OpenLedger(const TempDir& dir) {
  Ledger ledger;
  ledger.store = eventstore::testing::MustOpenRocksDb(dir.Child("log"));
  auto state = eventstore::OpenRocksDbStateStore(dir.Child("state"));
  REQUIRE(state.has_value());
  ledger.state = std::move(*state);
  return ledger;
}

std::unique_ptr<JetStreamPublisher> StartPublisher(Ledger& ledger, JetStreamConfig config) {
  auto opened = JetStreamPublisher::Open(*ledger.store, *ledger.state, std::move(config));
  REQUIRE(opened.has_value());
  (*opened)->Start();
  return std::move(*opened);
}

// Waits until the publisher has everything up to the head; fails naming its state otherwise.
void RequireCaughtUp(JetStreamPublisher& publisher, eventstore::EventStore& store,
                     std::chrono::seconds timeout) {
  const uint64_t head = store.HeadPosition();
  if (publisher.WaitForAcknowledged(head, std::chrono::milliseconds(timeout).count())) return;
  const server::JetStreamStats stats = publisher.Stats();
  FAIL("the publisher did not reach position " << head << " within " << timeout.count()
                                               << " s: acknowledged " << stats.acknowledged_position
                                               << ", retries " << stats.retries << ", last error '"
                                               << stats.last_error << "'");
}

// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
template <typename Condition>
bool Eventually(Condition condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

TEST_CASE("subject tokens escape what NATS does not allow in a token, reversibly", "[jetstream]") {
  CHECK(server::SubjectToken("order-EDX-100042") == "order-EDX-100042");
  CHECK(server::SubjectToken("order-EDX.1") == "order-EDX%2E1");
  CHECK(server::SubjectToken("a b*>\t%") == "a%20b%2A%3E%09%25");
  CHECK(server::SubjectToken("caf\xc3\xa9") == "caf%C3%A9");
  CHECK(server::SubjectToken("") == "%");
  for (std::string name : {"order-EDX.1", "a b*>\t%", "caf\xc3\xa9", "", "%2E", "x%"}) {
    INFO(name);
    CHECK(server::SubjectTokenDecode(server::SubjectToken(name)) == name);
  }
  eventstore::RecordedEvent event;
  event.stream = "order-EDX.7";
  event.event_type = "PaymentCaptured";
  CHECK(server::SubjectFor("ledger", event) == "ledger.order-EDX%2E7.PaymentCaptured");
}

TEST_CASE("the [jetstream] table: defaults, every key, and errors naming the key", "[jetstream]") {
  auto defaults = server::ParseJetStreamConfig("[server]\nlisten = \"127.0.0.1:1\"\n");
  REQUIRE(defaults.has_value());
  CHECK_FALSE(defaults->enabled);
  CHECK(defaults->replicas == 3);
  CHECK(defaults->duplicate_window_s == 120);

  auto full = server::ParseJetStreamConfig(R"(
[jetstream]
enabled = true
urls = ["nats://a:4222", "nats://b:4222"]
stream = "ORDERS"
subject_prefix = "shop.ledger"
replicas = 1
storage = "memory"
duplicate_window_s = 60
max_in_flight = 32
ack_timeout_ms = 2000
reconnect_backoff_ms_min = 10
reconnect_backoff_ms_max = 1000
)");
  REQUIRE(full.has_value());
  CHECK(full->enabled);
  CHECK(full->urls == std::vector<std::string>{"nats://a:4222", "nats://b:4222"});
  CHECK(full->stream == "ORDERS");
  CHECK(full->subject_prefix == "shop.ledger");
  CHECK(full->replicas == 1);
  CHECK(full->memory_storage);
  CHECK(full->duplicate_window_s == 60);
  CHECK(full->max_in_flight == 32);
  CHECK(full->ack_timeout_ms == 2000);

  for (const char* bad :
       {"[jetstream]\nenable = true\n", "[jetstream]\nreplicas = 7\n",
        "[jetstream]\nstream = \"A.B\"\n", "[jetstream]\nurls = []\n",
        "[jetstream]\nsubject_prefix = \"a.*\"\n", "[jetstream]\nstorage = \"tape\"\n",
        "jetstream = 3\n", "[jetstream]\nduplicate_window_s = 1\nack_timeout_ms = 5000\n"}) {
    INFO(bad);
    auto parsed = server::ParseJetStreamConfig(bad);
    CHECK_FALSE(parsed.has_value());
  }
  auto unknown = server::ParseJetStreamConfig("[jetstream]\n\nenable = true\n");
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().find("jetstream.enable (line 3)") != std::string::npos);
  // The message gives each integer's range, which a positive value may still miss.
  auto short_timeout = server::ParseJetStreamConfig("[jetstream]\nack_timeout_ms = 5\n");
  REQUIRE_FALSE(short_timeout.has_value());
  CHECK(short_timeout.error().find("ack_timeout_ms 10-600000") != std::string::npos);
}

TEST_CASE("every event of a workload arrives once, in position order, with the log's hashes",
          "[jetstream][cluster]") {
  TempDir dir("js-workload");
  NatsCluster cluster(dir.path());
  Ledger ledger = OpenLedger(dir);
  // A backlog before the publisher starts, then appends while it publishes.
  BackgroundAppender backlog(*ledger.store, "backlog", 1);
  backlog.Start(Scaled(300, 60));
  backlog.Join();
  std::unique_ptr<JetStreamPublisher> publisher =
      StartPublisher(ledger, TestConfig(cluster, "WORKLOAD"));
  BackgroundAppender live(*ledger.store, "live", 2);
  live.Start(Scaled(2'000, 300));
  live.Join();
  RequireCaughtUp(*publisher, *ledger.store, 60s);
  server::JetStreamStats stats = publisher->Stats();
  CHECK(stats.published == ledger.store->HeadPosition());
  CHECK(stats.lag == 0);
  CHECK(stats.connected);
  CHECK(stats.duplicates == 0);
  publisher->Stop();
  CHECK(CheckStreamEqualsLog(*ledger.store, cluster.urls(), "WORKLOAD", "ledger"));

  SECTION("a restart resumes after the last event published: nothing again, nothing lost") {
    std::unique_ptr<JetStreamPublisher> again =
        StartPublisher(ledger, TestConfig(cluster, "WORKLOAD"));
    BackgroundAppender more(*ledger.store, "more", 3);
    more.Start(50);
    more.Join();
    RequireCaughtUp(*again, *ledger.store, 60s);
    CHECK(again->Stats().published == more.appended());
    again->Stop();
    CHECK(CheckStreamEqualsLog(*ledger.store, cluster.urls(), "WORKLOAD", "ledger"));
  }
}

TEST_CASE("with NATS unreachable the publisher retries with backoff, then catches up",
          "[jetstream][cluster]") {
  TempDir dir("js-unreachable");
  NatsCluster cluster(dir.path(), 3, /*start=*/false);
  Ledger ledger = OpenLedger(dir);
  std::unique_ptr<JetStreamPublisher> publisher =
      StartPublisher(ledger, TestConfig(cluster, "LATE"));
  BackgroundAppender appender(*ledger.store, "late", 4);
  appender.Start(Scaled(200, 50));
  appender.Join();
  REQUIRE(Eventually([&] { return publisher->Stats().retries >= 3; }, 20s));
  server::JetStreamStats waiting = publisher->Stats();
  CHECK_FALSE(waiting.connected);
  CHECK(waiting.acknowledged_position == 0);
  CHECK(waiting.lag == ledger.store->HeadPosition());
  CHECK(waiting.last_error.find("connecting") != std::string::npos);

  cluster.StartAll();
  RequireCaughtUp(*publisher, *ledger.store, 60s);
  CHECK(publisher->Stats().last_error.empty());
  publisher->Stop();
  CHECK(CheckStreamEqualsLog(*ledger.store, cluster.urls(), "LATE", "ledger"));
}

TEST_CASE("a stream the cluster cannot place: the publisher says why, retries, and stops cleanly",
          "[jetstream][cluster]") {
  TempDir dir("js-unplaceable");
  NatsCluster cluster(dir.path());
  Ledger ledger = OpenLedger(dir);
  BackgroundAppender appender(*ledger.store, "unplaceable", 6);
  appender.Start(20);
  appender.Join();
  JetStreamConfig config = TestConfig(cluster, "UNPLACEABLE");
  config.replicas = 5;  // Three nodes.
  std::unique_ptr<JetStreamPublisher> publisher = StartPublisher(ledger, config);
  REQUIRE(Eventually([&] { return publisher->Stats().retries >= 2; }, 30s));
  const server::JetStreamStats stats = publisher->Stats();
  CHECK(stats.acknowledged_position == 0);
  CHECK(stats.last_error.find("creating the stream") != std::string::npos);
  // Stopping before anything was ever published crashed inside libnats (see Settle).
  publisher->Stop();
  publisher.reset();
}

TEST_CASE("one node down: publishing continues, and with two down it waits, then catches up",
          "[jetstream][cluster]") {
  TempDir dir("js-nodes");
  NatsCluster cluster(dir.path());
  Ledger ledger = OpenLedger(dir);
  std::unique_ptr<JetStreamPublisher> publisher =
      StartPublisher(ledger, TestConfig(cluster, "NODES"));
  BackgroundAppender appender(*ledger.store, "nodes", 5);
  appender.Start();
  const auto acknowledged = [&] { return publisher->Stats().acknowledged_position; };
  if (!Eventually([&] { return acknowledged() >= 100; }, 30s)) {
    FAIL("fewer than 100 events acknowledged in 30 s ("
         << acknowledged() << " of " << ledger.store->HeadPosition()
         << "); last error: " << publisher->Stats().last_error);
  }

  // One node of three down: the stream keeps its quorum.
  cluster.Kill(0);
  const uint64_t after_one = acknowledged();
  INFO("acknowledged when node 1 stopped: " << after_one);
  CHECK(Eventually([&] { return acknowledged() >= after_one + 200; }, 30s));

  // Two down: no quorum, nothing can be acknowledged. The publisher notices (a publish times
  // out or the stream cannot be read), says why, and keeps trying with backoff.
  cluster.Kill(1);
  const uint64_t retries_before = publisher->Stats().retries;
  REQUIRE(Eventually(
      [&] {
        const server::JetStreamStats stats = publisher->Stats();
        return stats.retries >= retries_before + 2 && !stats.last_error.empty();
      },
      30s));
  const uint64_t stalled = acknowledged();
  const uint64_t retries_at_stall = publisher->Stats().retries;
  // Appends go on while the stream cannot take them, and the publisher fails twice more.
  const uint64_t head_at_stall = ledger.store->HeadPosition();
  REQUIRE(Eventually(
      [&] {
        return ledger.store->HeadPosition() >= head_at_stall + 50 &&
               publisher->Stats().retries >= retries_at_stall + 2;
      },
      30s));
  CHECK(acknowledged() == stalled);
  CHECK(publisher->Stats().lag >= 50);
  CHECK_FALSE(publisher->Stats().last_error.empty());
  INFO("stalled at " << stalled << ": " << publisher->Stats().last_error);

  cluster.Start(0);
  cluster.Start(1);
  REQUIRE(Eventually([&] { return acknowledged() > stalled + 50; }, 60s));
  appender.Stop();
  RequireCaughtUp(*publisher, *ledger.store, 60s);
  const server::JetStreamStats stats = publisher->Stats();
  CHECK(stats.lag == 0);
  publisher->Stop();
  CHECK(CheckStreamEqualsLog(*ledger.store, cluster.urls(), "NODES", "ledger"));
}

}  // namespace
}  // namespace ledger::jetstream_testing
