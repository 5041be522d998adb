// ledgerd with a [jetstream] table, killed with SIGKILL while it publishes, several times: after
// each kill the stream is a prefix of the log (in order, nothing twice), and once ledgerd runs to
// the end the stream equals the log. Payments captured into the log between the runs are the
// backlog each run publishes; the kill comes once the stream has grown during the run.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "domain/events.h"
#include "eventstore/event_codec.h"
#include "eventstore/event_store.h"
#include "tests/eventstore/store_test_support.h"
#include "tests/jetstream/nats_cluster.h"
#include "tests/server/ledgerd_process.h"

namespace ledger::jetstream_testing {
namespace {

using namespace std::chrono_literals;
using eventstore::testing::Scaled;

using testing::Child;
using testing::KillAndWait;
using testing::StartLedgerd;
using testing::StopAndWait;

// Captures `count` payments into the log, 20 per order stream (order numbers with a '.', so
// their subjects need escaping).
void CapturePayments(const std::string& log_path, int round, size_t count) {
  std::unique_ptr<eventstore::EventStore> store = eventstore::testing::MustOpenRocksDb(log_path);
  const eventstore::EventMetadata metadata{
      .correlation_id = {}, .causation_id = {}, .actor = "jetstream-test"};
  for (size_t order = 0; order * 20 < count; ++order) {
    const std::string number = "EDX." + std::to_string(round) + "." + std::to_string(order);
    std::vector<eventstore::NewEvent> events;
    for (size_t i = 0; i < 20 && order * 20 + i < count; ++i) {
      domain::PaymentCaptured captured{.order_number = number,
                                       .processor = "paypal",
                                       .reference = "tx-" + std::to_string(i),
                                       .amount = {.minor_units = 4'900, .currency = "USD"},
                                       .card_type = "visa",
                                       .card_last_digits = "1111",
                                       .captured_at_us = 1'790'000'000'000'000,
                                       .excess = false};
      events.push_back(eventstore::ToNewEvent(domain::Event(captured), metadata));
    }
    auto appended = store->Append(std::string(domain::kOrderStreamPrefix) + number,
                                  eventstore::ExpectedVersion::Any(), events);
    REQUIRE(appended.has_value());
  }
}

// The last stream sequence, polled.
uint64_t LastSequence(server::JetStreamReader& reader) {
  auto bounds = reader.Bounds();
  if (!bounds) return 0;  // No stream yet: ledgerd creates it.
  return bounds->second;
}

TEST_CASE(
    "ledgerd killed with SIGKILL mid-publish, again and again: the stream gets every event "
    "once, in order",
    "[jetstream][cluster][crash]") {
  eventstore::testing::TempDir dir("js-ledgerd");
  NatsCluster cluster(dir.path());
  const std::string data_dir = dir.Child("data");
  std::filesystem::create_directories(data_dir);
  const std::string config_path = dir.Child("ledgerd.toml");
  {
    std::ofstream config(config_path);
    config << "[jetstream]\nenabled = true\nurls = [";
    for (const std::string& url : cluster.urls()) config << "\"" << url << "\", ";
    config << "]\nstream = \"LEDGERD\"\nreplicas = 3\nduplicate_window_s = 60\n"
              "max_in_flight = 128\nack_timeout_ms = 2000\nreconnect_backoff_ms_min = 20\n"
              "reconnect_backoff_ms_max = 500\n";
  }
  auto reader = server::JetStreamReader::Connect(cluster.urls(), "LEDGERD");
  REQUIRE(reader.has_value());
  std::mt19937_64 random(20261122);
  constexpr int kRounds = 5;
  const size_t backlog = Scaled(4'000, 600);
  int behind_at_kill = 0;
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    CapturePayments(data_dir + "/log", round, backlog);
    const uint64_t before = LastSequence(**reader);
    const Child ledgerd = StartLedgerd(data_dir, config_path);
    // Kill once the stream has grown by a random part of the backlog.
    const uint64_t grow_by = 1 + random() % (backlog / 2);
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (LastSequence(**reader) < before + grow_by) {
      if (std::chrono::steady_clock::now() > deadline) {
        KillAndWait(ledgerd);
        FAIL("the stream did not grow by " << grow_by << " within 60 s");
      }
      std::this_thread::sleep_for(2ms);
    }
    KillAndWait(ledgerd);
    // The stream is a prefix of the log: in order, nothing twice, nothing skipped.
    std::unique_ptr<eventstore::EventStore> store =
        eventstore::testing::MustOpenRocksDb(data_dir + "/log");
    const uint64_t last = LastSequence(**reader);
    if (last < store->HeadPosition()) ++behind_at_kill;
    CHECK(CheckStreamEqualsLog(*store, cluster.urls(), "LEDGERD", "ledger", last));
  }
  // Most kills came with events still to publish (a kill right after the last ack is allowed).
  CHECK(behind_at_kill >= kRounds - 1);

  // A last run to the end, stopped with SIGTERM: the stream equals the log.
  const Child ledgerd = StartLedgerd(data_dir, config_path);
  uint64_t head = 0;
  {
    // The store is locked by ledgerd; its head is what the rounds appended.
    head = static_cast<uint64_t>(kRounds) * backlog;
  }
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (LastSequence(**reader) < head) {
    if (std::chrono::steady_clock::now() > deadline) {
      KillAndWait(ledgerd);
      FAIL("ledgerd did not publish up to " << head << " within 60 s");
    }
    std::this_thread::sleep_for(5ms);
  }
  // /healthz shows the publisher caught up (ledgerd reads its own acknowledgements a moment
  // after the stream has them).
  std::string health;
  const auto health_deadline = std::chrono::steady_clock::now() + 10s;
  do {
    auto answer = testing::Send(ledgerd.port, "", "GET", "/healthz");
    REQUIRE(answer);
    health = answer->body;
    if (health.find("\"lag\":0,\"in_flight\":0") != std::string::npos) break;
    std::this_thread::sleep_for(20ms);
  } while (std::chrono::steady_clock::now() < health_deadline);
  INFO(health);
  CHECK(health.find("\"jetstream\":{\"connected\":true,\"acknowledged_position\":" +
                    std::to_string(head) + ",\"lag\":0") != std::string::npos);
  CHECK(StopAndWait(ledgerd) == 0);
  std::unique_ptr<eventstore::EventStore> store =
      eventstore::testing::MustOpenRocksDb(data_dir + "/log");
  CHECK(store->HeadPosition() == head);
  CHECK(CheckStreamEqualsLog(*store, cluster.urls(), "LEDGERD", "ledger"));
}

}  // namespace
}  // namespace ledger::jetstream_testing
