// The JetStream publisher against a real 3-node JetStream cluster on loopback ports (see
// nats_cluster.h): every event arrives once, in position order, with the log's hashes, also
// when the events are appended while it publishes, after a restart, when NATS is unreachable at
// start, and when one node and then two nodes of the cluster stop and come back. Also the
// subject mapping and the [jetstream] configuration table.
#include <fcntl.h>
#include <fmt/format.h>
#include <nats/nats.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "base/bytes.h"
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

// What an operator can do to the stream behind the publisher's back: delete it, or purge it
// (everything, or the messages before `purge_before_sequence`).
void AlterStream(const NatsCluster& cluster, const std::string& stream, bool remove,
                 uint64_t purge_before_sequence = 0) {
  auto closer = [](natsConnection* connection) { natsConnection_Destroy(connection); };
  natsConnection* raw = nullptr;
  const std::string url = cluster.urls().front();
  REQUIRE(natsConnection_ConnectTo(&raw, url.c_str()) == NATS_OK);
  std::unique_ptr<natsConnection, decltype(closer)> connection(raw, closer);
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_JetStream(&js, connection.get(), nullptr) == NATS_OK);
  jsOptions options;
  jsOptions_Init(&options);
  options.Wait = 10'000;
  options.Stream.Purge.Sequence = purge_before_sequence;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus status = remove ? js_DeleteStream(js, stream.c_str(), &options, &code)
                                   : js_PurgeStream(js, stream.c_str(), &options, &code);
  jsCtx_Destroy(js);
  INFO("code " << code);
  REQUIRE(status == NATS_OK);
}

// The messages the stream holds (its last sequence when nothing was removed), 0 on any error.
uint64_t StreamMessages(const NatsCluster& cluster, const std::string& stream) {
  auto reader = server::JetStreamReader::Connect(cluster.urls(), stream, 2'000);
  if (!reader) return 0;
  auto bounds = (*reader)->Bounds();
  if (!bounds || bounds->second < bounds->first) return 0;
  return bounds->second - bounds->first + 1;
}

// Waits until the publisher noticed what happened to its stream (a retry), then until the
// stream holds the whole log again with every position acknowledged.
void RequireRepublished(JetStreamPublisher& publisher, eventstore::EventStore& store,
                        const NatsCluster& cluster, const std::string& stream,
                        uint64_t retries_before) {
  const bool noticed = Eventually([&] { return publisher.Stats().retries > retries_before; }, 30s);
  INFO("last error: " << publisher.Stats().last_error);
  REQUIRE(noticed);
  const bool whole = Eventually(
      [&] {
        return publisher.Stats().acknowledged_position == store.HeadPosition() &&
               StreamMessages(cluster, stream) == store.HeadPosition();
      },
      60s);
  INFO("acknowledged " << publisher.Stats().acknowledged_position << ", stream holds "
                       << StreamMessages(cluster, stream) << ", head " << store.HeadPosition());
  REQUIRE(whole);
  CHECK(CheckStreamEqualsLog(store, cluster.urls(), stream, "ledger"));
}

TEST_CASE("a stream deleted or lost is created again and gets the whole log, without a restart",
          "[jetstream][cluster]") {
  TempDir dir("js-deleted");
  NatsCluster cluster(dir.path());
  Ledger ledger = OpenLedger(dir);
  BackgroundAppender before(*ledger.store, "before", 7);
  before.Start(30);
  before.Join();
  std::unique_ptr<JetStreamPublisher> publisher =
      StartPublisher(ledger, TestConfig(cluster, "DELETED"));
  RequireCaughtUp(*publisher, *ledger.store, 60s);
  const uint64_t retries_before = publisher->Stats().retries;

  SECTION("deleted while the ledger is quiet") { AlterStream(cluster, "DELETED", /*remove=*/true); }
  SECTION("every server restarted with an empty store") {
    for (size_t node = 0; node < cluster.size(); ++node) cluster.Kill(node);
    for (size_t node = 0; node < cluster.size(); ++node) {
      std::filesystem::remove_all(fmt::format("{}/n{}-store", dir.path(), node + 1));
    }
    cluster.StartAll();
    cluster.WaitForMetaLeader();
  }
  RequireRepublished(*publisher, *ledger.store, cluster, "DELETED", retries_before);
  // And publishing goes on after the log's end.
  BackgroundAppender after(*ledger.store, "after", 8);
  after.Start(20);
  after.Join();
  RequireCaughtUp(*publisher, *ledger.store, 60s);
  publisher->Stop();
  CHECK(CheckStreamEqualsLog(*ledger.store, cluster.urls(), "DELETED", "ledger"));
}

TEST_CASE("a purged stream gets the purged positions again, in order and once",
          "[jetstream][cluster]") {
  TempDir dir("js-purged");
  NatsCluster cluster(dir.path());
  Ledger ledger = OpenLedger(dir);
  BackgroundAppender before(*ledger.store, "before", 9);
  before.Start(30);
  before.Join();
  std::unique_ptr<JetStreamPublisher> publisher =
      StartPublisher(ledger, TestConfig(cluster, "PURGED"));
  RequireCaughtUp(*publisher, *ledger.store, 60s);
  const uint64_t retries_before = publisher->Stats().retries;
  // The duplicate window (30 s here) outlives the purge: the event ids published a moment ago
  // are still remembered, so the positions must go out again without being dropped as copies.

  SECTION("purged while the ledger is quiet") {
    AlterStream(cluster, "PURGED", /*remove=*/false);
    RequireRepublished(*publisher, *ledger.store, cluster, "PURGED", retries_before);
  }
  SECTION("purged, then new events at once (they land after the purge, before any check)") {
    AlterStream(cluster, "PURGED", /*remove=*/false);
    BackgroundAppender after(*ledger.store, "after", 10);
    after.Start(20);
    after.Join();
    // Either the stream check saw it empty first (then the log was published again), or new
    // events landed first: then the stream lacks its head, which is reported, not repaired, and
    // the operator's purge of the whole stream makes the ledger publish the log again.
    const bool settled = Eventually(
        [&] {
          const server::JetStreamStats stats = publisher->Stats();
          return stats.acknowledged_position == ledger.store->HeadPosition() &&
                 (stats.last_error.find("lacks positions 1 to") != std::string::npos ||
                  StreamMessages(cluster, "PURGED") == ledger.store->HeadPosition());
        },
        60s);
    INFO("last error: " << publisher->Stats().last_error);
    REQUIRE(settled);
    if (StreamMessages(cluster, "PURGED") != ledger.store->HeadPosition()) {
      const uint64_t retries = publisher->Stats().retries;
      AlterStream(cluster, "PURGED", /*remove=*/false);
      RequireRepublished(*publisher, *ledger.store, cluster, "PURGED", retries);
    } else {
      CHECK(CheckStreamEqualsLog(*ledger.store, cluster.urls(), "PURGED", "ledger"));
    }
  }
  SECTION(
      "the head purged (messages before sequence 11): reported, publishing goes on at the end") {
    AlterStream(cluster, "PURGED", /*remove=*/false, 11);
    BackgroundAppender after(*ledger.store, "after", 11);
    after.Start(20);
    after.Join();
    const uint64_t head = ledger.store->HeadPosition();
    const bool reported = Eventually(
        [&] {
          const server::JetStreamStats stats = publisher->Stats();
          return stats.acknowledged_position == head &&
                 stats.last_error.find("lacks positions 1 to 10 ") != std::string::npos;
        },
        30s);
    INFO("acknowledged " << publisher->Stats().acknowledged_position << " of " << head
                         << ", last error: " << publisher->Stats().last_error);
    REQUIRE(reported);
    CHECK(publisher->Stats().last_error.find("purge the stream") != std::string::npos);
    // Not repaired: the stream keeps positions 11 to the head, once each, and no Resume ran.
    CHECK(StreamMessages(cluster, "PURGED") == head - 10);
    CHECK(publisher->Stats().retries == retries_before);
    {
      auto reader = server::JetStreamReader::Connect(cluster.urls(), "PURGED", 2'000);
      REQUIRE(reader.has_value());
      std::vector<uint64_t> positions;
      auto consumed = (*reader)->Consume(1, 1'000, [&](const server::JetStreamMessage& message) {
        positions.push_back(message.position);
        return true;
      });
      REQUIRE(consumed.has_value());
      REQUIRE(positions.size() == head - 10);
      for (size_t i = 0; i < positions.size(); ++i) CHECK(positions[i] == 11 + i);
    }
    // The documented way out: purge the whole stream, and the ledger publishes the whole log.
    AlterStream(cluster, "PURGED", /*remove=*/false);
    RequireRepublished(*publisher, *ledger.store, cluster, "PURGED", retries_before);
    CHECK(Eventually(
        [&] { return publisher->Stats().last_error.find("lacks") == std::string::npos; }, 5s));
  }
  SECTION("purged while ledgerd was stopped: the restart publishes the log again") {
    publisher->Stop();
    AlterStream(cluster, "PURGED", /*remove=*/false);
    publisher = StartPublisher(ledger, TestConfig(cluster, "PURGED"));
    // A new publisher counts from 0: its first Resume already sees the loss.
    const bool whole = Eventually(
        [&] { return StreamMessages(cluster, "PURGED") == ledger.store->HeadPosition(); }, 60s);
    INFO("stream holds " << StreamMessages(cluster, "PURGED") << ", acknowledged "
                         << publisher->Stats().acknowledged_position << ", last error "
                         << publisher->Stats().last_error);
    REQUIRE(whole);
    RequireCaughtUp(*publisher, *ledger.store, 60s);
  }
  BackgroundAppender more(*ledger.store, "more", 12);
  more.Start(10);
  more.Join();
  RequireCaughtUp(*publisher, *ledger.store, 60s);
  CHECK(publisher->Stats().lag == 0);
  publisher->Stop();
  CHECK(CheckStreamEqualsLog(*ledger.store, cluster.urls(), "PURGED", "ledger"));
}

struct ConsumeRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

ConsumeRun RunConsume(const TempDir& dir, const NatsCluster& cluster, const std::string& stream,
                      const std::string& arguments) {
  const std::string out_path = dir.Child("consume.out");
  const std::string err_path = dir.Child("consume.err");
  const std::string command =
      fmt::format("{} --urls {} --stream {} --idle-ms 1000 {} >{} 2>{}", LEDGER_JETSTREAM_CONSUME,
                  cluster.urls().front(), stream, arguments, out_path, err_path);
  const int status = std::system(command.c_str());
  REQUIRE(WIFEXITED(status));
  const auto read = [](const std::string& path) {
    std::ifstream file(path);
    std::string text;
    for (std::string line; std::getline(file, line);) text += line + "\n";
    return text;
  };
  return {WEXITSTATUS(status), read(out_path), read(err_path)};
}

TEST_CASE("jetstream_consume --from-position says when the stream no longer holds the position",
          "[jetstream][cluster]") {
  TempDir dir("js-consume-gap");
  NatsCluster cluster(dir.path());
  Ledger ledger = OpenLedger(dir);
  BackgroundAppender appender(*ledger.store, "gap", 13);
  appender.Start(30);
  appender.Join();
  std::unique_ptr<JetStreamPublisher> publisher =
      StartPublisher(ledger, TestConfig(cluster, "GAP"));
  RequireCaughtUp(*publisher, *ledger.store, 60s);
  publisher->Stop();  // Else it would publish the purged positions again.
  const uint64_t head = ledger.store->HeadPosition();
  AlterStream(cluster, "GAP", /*remove=*/false, 11);  // Positions 1-10 gone.

  const ConsumeRun gap = RunConsume(dir, cluster, "GAP", "--from-position 1");
  INFO("stderr: " << gap.err);
  CHECK(gap.exit_code == 1);
  CHECK(gap.out.empty());
  CHECK(gap.err.find("does not hold position 1") != std::string::npos);
  CHECK(gap.err.find("positions 1 to 10 are missing") != std::string::npos);

  const ConsumeRun held = RunConsume(dir, cluster, "GAP", "--from-position 11");
  INFO("stderr: " << held.err);
  CHECK(held.exit_code == 0);
  CHECK(static_cast<uint64_t>(std::count(held.out.begin(), held.out.end(), '\n')) == head - 10);
  CHECK(held.out.find("\"position\":11,") != std::string::npos);
}

// The message the publisher sends for `event` (subject, headers, payload), without Nats-Msg-Id.
natsMsg* MessageFor(const eventstore::RecordedEvent& event) {
  const std::string subject = server::SubjectFor("ledger", event);
  natsMsg* message = nullptr;
  REQUIRE(natsMsg_Create(&message, subject.c_str(), nullptr, event.payload.data(),
                         static_cast<int>(event.payload.size())) == NATS_OK);
  const std::pair<const char*, std::string> headers[] = {
      {server::kHeaderPosition, std::to_string(event.position)},
      {server::kHeaderStream, event.stream},
      {server::kHeaderVersion, std::to_string(event.version)},
      {server::kHeaderEventId, event.event_id.ToString()},
      {server::kHeaderEventType, event.event_type},
      {server::kHeaderHash, ToHex(event.hash)},
      {server::kHeaderPreviousHash, ToHex(event.previous_hash)},
      {server::kHeaderRecordedAt, std::to_string(event.recorded_at_us)},
  };
  for (const auto& [name, value] : headers) {
    REQUIRE(natsMsgHeader_Set(message, name, value.c_str()) == NATS_OK);
  }
  return message;
}

// Publishes `event` as the publisher would, with `message_id` and, when not 0, the expected last
// sequence; returns whether the stream answered "duplicate" (REQUIREs an acknowledgement).
bool PublishByHand(const NatsCluster& cluster, const std::string& stream,
                   const eventstore::RecordedEvent& event, const std::string& message_id,
                   uint64_t expected_last_sequence) {
  natsConnection* connection = nullptr;
  REQUIRE(natsConnection_ConnectTo(&connection, cluster.urls().front().c_str()) == NATS_OK);
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_JetStream(&js, connection, nullptr) == NATS_OK);
  natsMsg* message = MessageFor(event);
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MsgId = message_id.c_str();
  options.ExpectStream = stream.c_str();
  options.ExpectLastSeq = expected_last_sequence;
  options.MaxWait = 10'000;
  jsPubAck* ack = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus status = js_PublishMsg(&ack, js, message, &options, &code);
  const bool duplicate = ack != nullptr && ack->Duplicate;
  jsPubAck_Destroy(ack);
  natsMsg_Destroy(message);
  jsCtx_Destroy(js);
  natsConnection_Destroy(connection);
  INFO("publishing position " << event.position << " by hand: code " << code);
  REQUIRE(status == NATS_OK);
  return duplicate;
}

// The Nats-Msg-Id stored with the message at `sequence`.
std::string StoredMessageId(const NatsCluster& cluster, const std::string& stream,
                            uint64_t sequence) {
  natsConnection* connection = nullptr;
  REQUIRE(natsConnection_ConnectTo(&connection, cluster.urls().front().c_str()) == NATS_OK);
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_JetStream(&js, connection, nullptr) == NATS_OK);
  natsMsg* message = nullptr;
  const natsStatus status = js_GetMsg(&message, js, stream.c_str(), sequence, nullptr, nullptr);
  std::string id;
  const char* value = nullptr;
  if (status == NATS_OK && natsMsgHeader_Get(message, "Nats-Msg-Id", &value) == NATS_OK &&
      value != nullptr) {
    id = value;
  }
  natsMsg_Destroy(message);
  jsCtx_Destroy(js);
  natsConnection_Destroy(connection);
  REQUIRE(status == NATS_OK);
  return id;
}

TEST_CASE("a restart in the middle of publishing the log again after a purge: no position twice",
          "[jetstream][cluster]") {
  TempDir dir("js-republish-restart");
  NatsCluster cluster(dir.path());
  Ledger ledger = OpenLedger(dir);
  BackgroundAppender before(*ledger.store, "before", 16);
  before.Start(30);
  before.Join();
  std::unique_ptr<JetStreamPublisher> publisher =
      StartPublisher(ledger, TestConfig(cluster, "REPUBLISH"));
  RequireCaughtUp(*publisher, *ledger.store, 60s);
  publisher->Stop();
  const std::vector<eventstore::RecordedEvent> log = ReadLog(*ledger.store);
  const uint64_t head = log.size();
  // Published into a new stream: sequence = position, the id is the event id.
  CHECK(StoredMessageId(cluster, "REPUBLISH", head) == log.back().event_id.ToString());

  // Purged (the stream keeps its last sequence, `head`, and the ids in its duplicate window);
  // a publisher then published positions 1 to 10 again and was killed with position 11 in
  // flight, done here by hand: the base is `head`, so the ids are "<event id>@<head>".
  AlterStream(cluster, "REPUBLISH", /*remove=*/false);
  const auto id_after_purge = [&](uint64_t position) {
    return fmt::format("{}@{}", log[position - 1].event_id.ToString(), head);
  };
  for (uint64_t position = 1; position <= 10; ++position) {
    CHECK_FALSE(PublishByHand(cluster, "REPUBLISH", log[position - 1], id_after_purge(position),
                              head + position - 1));
  }

  // The successor goes on at position 11 with the same base, and more events follow.
  publisher = StartPublisher(ledger, TestConfig(cluster, "REPUBLISH"));
  BackgroundAppender after(*ledger.store, "after", 17);
  after.Start(20);
  after.Join();
  RequireCaughtUp(*publisher, *ledger.store, 60s);
  server::JetStreamStats stats = publisher->Stats();
  CHECK(stats.duplicates == 0);
  CHECK(stats.last_error.find("lacks") == std::string::npos);
  CHECK(StoredMessageId(cluster, "REPUBLISH", head + 11) == id_after_purge(11));
  // The killed publisher's position 11, landing late, is dropped as a duplicate: the successor
  // computed the same id for it.
  CHECK(PublishByHand(cluster, "REPUBLISH", log[10], id_after_purge(11), 0));
  publisher->Stop();
  CHECK(CheckStreamEqualsLog(*ledger.store, cluster.urls(), "REPUBLISH", "ledger"));
}

TEST_CASE("jetstream_consume --follow prints each position once when the log is published again",
          "[jetstream][cluster]") {
  TempDir dir("js-consume-follow");
  NatsCluster cluster(dir.path());
  Ledger ledger = OpenLedger(dir);
  BackgroundAppender before(*ledger.store, "before", 18);
  before.Start(30);
  before.Join();
  std::unique_ptr<JetStreamPublisher> publisher =
      StartPublisher(ledger, TestConfig(cluster, "FOLLOW"));
  RequireCaughtUp(*publisher, *ledger.store, 60s);

  const std::string out_path = dir.Child("follow.out");
  const std::string urls = cluster.urls().front();
  const char* const argv[] = {
      LEDGER_JETSTREAM_CONSUME, "--urls", urls.c_str(), "--stream", "FOLLOW",
      "--from-position",        "5",      "--follow",   nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, LEDGER_JETSTREAM_CONSUME, &actions, nullptr,
                                  const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(spawned == 0);
  const auto positions = [&] {
    std::vector<uint64_t> found;
    std::ifstream file(out_path);
    for (std::string line; std::getline(file, line);) {
      const size_t at = line.find("\"position\":");
      if (at != std::string::npos) found.push_back(std::stoull(line.substr(at + 11)));
    }
    return found;
  };
  const uint64_t head = ledger.store->HeadPosition();
  const bool read_all = Eventually([&] { return positions().size() == head - 4; }, 30s);
  // Purged: the ledger publishes positions 1 to the head again, then new ones.
  AlterStream(cluster, "FOLLOW", /*remove=*/false);
  BackgroundAppender after(*ledger.store, "after", 19);
  after.Start(20);
  after.Join();
  RequireCaughtUp(*publisher, *ledger.store, 60s);
  const uint64_t new_head = ledger.store->HeadPosition();
  const bool read_new = Eventually([&] { return positions().size() >= new_head - 4; }, 30s);
  std::this_thread::sleep_for(500ms);  // Anything printed twice would show now.
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  publisher->Stop();
  CHECK(read_all);
  CHECK(read_new);
  const std::vector<uint64_t> printed = positions();
  REQUIRE(printed.size() == new_head - 4);
  for (size_t i = 0; i < printed.size(); ++i) CHECK(printed[i] == 5 + i);
}

TEST_CASE("with NATS gone, the last error says why nothing is acknowledged",
          "[jetstream][cluster]") {
  TempDir dir("js-gone");
  NatsCluster cluster(dir.path());
  Ledger ledger = OpenLedger(dir);
  JetStreamConfig config = TestConfig(cluster, "GONE");
  // Longer than the test looks (5 s) before the messages in flight time out; after that,
  // last_error names the connection too (Publish ends the session with it).
  config.ack_timeout_ms = 6'000;
  config.duplicate_window_s = 120;
  std::unique_ptr<JetStreamPublisher> publisher = StartPublisher(ledger, config);
  BackgroundAppender appender(*ledger.store, "gone", 14);
  appender.Start(10);
  appender.Join();
  RequireCaughtUp(*publisher, *ledger.store, 60s);

  for (size_t node = 0; node < cluster.size(); ++node) cluster.Kill(node);
  BackgroundAppender more(*ledger.store, "more", 15);
  more.Start(10);
  more.Join();
  const bool explained = Eventually(
      [&] {
        const server::JetStreamStats stats = publisher->Stats();
        return !stats.connected && stats.lag > 0 &&
               stats.last_error.find("connection to NATS") != std::string::npos;
      },
      5s);
  const server::JetStreamStats stats = publisher->Stats();
  INFO("connected " << stats.connected << ", in flight " << stats.in_flight << ", lag " << stats.lag
                    << ", last error '" << stats.last_error << "'");
  CHECK(explained);

  cluster.StartAll();
  cluster.WaitForMetaLeader();
  RequireCaughtUp(*publisher, *ledger.store, 90s);
  CHECK(publisher->Stats().last_error.empty());
  publisher->Stop();
  CHECK(CheckStreamEqualsLog(*ledger.store, cluster.urls(), "GONE", "ledger"));
}

}  // namespace
}  // namespace ledger::jetstream_testing
