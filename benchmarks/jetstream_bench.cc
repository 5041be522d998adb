// jetstream_bench: how fast the JetStream publisher (server/jetstream_publisher.h) moves the log
// into a 3-node JetStream cluster (nats-server processes on loopback ports, R3 file streams),
// against a plain JetStream publisher doing the same work, measured in the same run.
//
// Cases (one JSON object per line on stdout):
//   plain_publisher    the reference: the NATS C client publishing the same subjects, headers
//                      and payloads (read from the log beforehand, held in memory) with the same
//                      window of acknowledgements in flight and the same Nats-Msg-Id, no log
//                      reading, no checkpoint, no expected-sequence condition. Run before and
//                      after ours; the mean is the reference.
//   publish_backlog    the publisher starting on a log of N events (default 100,000; payloads
//                      of a real PaymentCaptured's size) until the stream acknowledged them
//                      all: events/s, and the ratio to the reference. Target: ratio >= 0.8
//                      (the log read and the checkpoint should cost little next to the
//                      cluster's replication).
//   publish_live       appends at half the backlog rate for a few seconds while the publisher
//                      runs: the lag (head - acknowledged, in events) sampled every 10 ms, p50,
//                      p99 and max. Target: p99 below one window (max_in_flight).
//
//   jetstream_bench --dir DIR [--events N] [--window W] [--live-seconds S]
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "eventstore/event_store.h"
#include "eventstore/state_store.h"
#include "server/jetstream_publisher.h"

extern char** environ;

namespace {

using namespace ledger;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "jetstream_bench: %s\n", message.c_str());
  std::exit(1);
}

double Seconds(Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) Die("bind");
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// Three nats-server processes with their own configurations and stores under `dir`.
class Cluster {
 public:
  explicit Cluster(const std::string& dir) {
    std::string program;
    for (const char* candidate : {"/usr/sbin/nats-server", "/usr/bin/nats-server"}) {
      if (::access(candidate, X_OK) == 0) program = candidate;
    }
    if (program.empty()) Die("nats-server is missing (Debian package nats-server)");
    std::vector<uint16_t> cluster_ports;
    for (int i = 0; i < 3; ++i) {
      client_ports_.push_back(FreePort());
      cluster_ports.push_back(FreePort());
    }
    std::string routes;
    for (uint16_t port : cluster_ports) {
      routes += fmt::format("{}nats-route://127.0.0.1:{}", routes.empty() ? "" : ", ", port);
    }
    for (int i = 0; i < 3; ++i) {
      const std::string config_path = fmt::format("{}/n{}.conf", dir, i + 1);
      std::ofstream(config_path) << fmt::format(
          "server_name: n{0}\nlisten: 127.0.0.1:{1}\n"
          "jetstream {{\n  store_dir: \"{2}/n{0}-store\"\n}}\n"
          "cluster {{\n  name: bench\n  listen: 127.0.0.1:{3}\n  routes: [{4}]\n}}\n",
          i + 1, client_ports_[static_cast<size_t>(i)], dir, cluster_ports[static_cast<size_t>(i)],
          routes);
      const std::string log_path = fmt::format("{}/n{}.log", dir, i + 1);
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                       O_WRONLY | O_CREAT | O_APPEND, 0644);
      posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
      std::vector<std::string> arguments = {program, "-c", config_path};
      std::vector<char*> argv;
      for (std::string& argument : arguments) argv.push_back(argument.data());
      argv.push_back(nullptr);
      pid_t pid = 0;
      if (posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ) != 0) {
        Die("cannot start nats-server");
      }
      posix_spawn_file_actions_destroy(&actions);
      pids_.push_back(pid);
    }
  }
  ~Cluster() {
    for (pid_t pid : pids_) {
      ::kill(pid, SIGTERM);
      int status = 0;
      ::waitpid(pid, &status, 0);
    }
  }
  std::vector<std::string> urls() const {
    std::vector<std::string> urls;
    for (uint16_t port : client_ports_) urls.push_back(fmt::format("nats://127.0.0.1:{}", port));
    return urls;
  }

 private:
  std::vector<uint16_t> client_ports_;
  std::vector<pid_t> pids_;
};

struct Connection {
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
};

// Connects and waits (30 s) for the cluster's meta leader; `closure` gets the acknowledgements.
Connection Connect(const std::vector<std::string>& urls, jsPubAckHandler handler, void* closure) {
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    Connection out;
    natsOptions* options = nullptr;
    natsOptions_Create(&options);
    std::vector<const char*> servers;
    for (const std::string& url : urls) servers.push_back(url.c_str());
    natsOptions_SetServers(options, servers.data(), static_cast<int>(servers.size()));
    natsStatus status = natsConnection_Connect(&out.connection, options);
    natsOptions_Destroy(options);
    if (status == NATS_OK) {
      jsOptions js_options;
      jsOptions_Init(&js_options);
      js_options.Wait = 5'000;
      js_options.PublishAsync.AckHandler = handler;
      js_options.PublishAsync.AckHandlerClosure = closure;
      natsConnection_JetStream(&out.js, out.connection, &js_options);
      jsAccountInfo* info = nullptr;
      status = js_GetAccountInfo(&info, out.js, nullptr, nullptr);
      jsAccountInfo_Destroy(info);
      if (status == NATS_OK) return out;
      jsCtx_Destroy(out.js);
      natsConnection_Destroy(out.connection);
    }
    if (Clock::now() > deadline) Die("the cluster has no meta leader after 30 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void Disconnect(Connection& connection) {
  jsCtx_Destroy(connection.js);
  natsConnection_Destroy(connection.connection);
}

// The reference: the same messages published with a window of `window` acknowledgements.
struct PlainPublisher {
  std::mutex mutex;
  std::condition_variable changed;
  size_t outstanding = 0;
  uint64_t failures = 0;

  static void OnAck(jsCtx*, natsMsg* message, jsPubAck*, jsPubAckErr* failure, void* closure) {
    auto* self = static_cast<PlainPublisher*>(closure);
    {
      std::lock_guard lock(self->mutex);
      --self->outstanding;
      if (failure != nullptr) ++self->failures;
    }
    self->changed.notify_all();
    natsMsg_Destroy(message);
  }
};

double RunPlain(const std::vector<std::string>& urls, const std::string& stream_name,
                const std::vector<eventstore::RecordedEvent>& events, size_t window) {
  PlainPublisher plain;
  Connection connection = Connect(urls, &PlainPublisher::OnAck, &plain);
  jsStreamConfig stream;
  jsStreamConfig_Init(&stream);
  const std::string subjects_text = stream_name + ".>";
  const char* subjects[] = {subjects_text.c_str()};
  stream.Name = stream_name.c_str();
  stream.Subjects = subjects;
  stream.SubjectsLen = 1;
  stream.Replicas = 3;
  stream.Duplicates = int64_t{120} * 1'000'000'000;
  jsStreamInfo* info = nullptr;
  if (js_AddStream(&info, connection.js, &stream, nullptr, nullptr) != NATS_OK) {
    Die("creating the reference stream");
  }
  jsStreamInfo_Destroy(info);
  const auto start = Clock::now();
  for (const eventstore::RecordedEvent& event : events) {
    {
      std::unique_lock lock(plain.mutex);
      plain.changed.wait(lock, [&] { return plain.outstanding < window; });
      ++plain.outstanding;
    }
    const std::string subject = server::SubjectFor(stream_name, event);
    natsMsg* message = nullptr;
    natsMsg_Create(&message, subject.c_str(), nullptr, event.payload.data(),
                   static_cast<int>(event.payload.size()));
    const std::string event_id = event.event_id.ToString();
    natsMsgHeader_Set(message, server::kHeaderPosition, std::to_string(event.position).c_str());
    natsMsgHeader_Set(message, server::kHeaderStream, event.stream.c_str());
    natsMsgHeader_Set(message, server::kHeaderVersion, std::to_string(event.version).c_str());
    natsMsgHeader_Set(message, server::kHeaderEventId, event_id.c_str());
    natsMsgHeader_Set(message, server::kHeaderEventType, event.event_type.c_str());
    natsMsgHeader_Set(message, server::kHeaderHash, ToHex(event.hash).c_str());
    natsMsgHeader_Set(message, server::kHeaderPreviousHash, ToHex(event.previous_hash).c_str());
    natsMsgHeader_Set(message, server::kHeaderRecordedAt,
                      std::to_string(event.recorded_at_us).c_str());
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MsgId = event_id.c_str();
    options.MaxWait = 5'000;
    if (js_PublishMsgAsync(connection.js, &message, &options) != NATS_OK) Die("plain publish");
    natsMsg_Destroy(message);
  }
  {
    std::unique_lock lock(plain.mutex);
    plain.changed.wait(lock, [&] { return plain.outstanding == 0; });
  }
  const double seconds = Seconds(Clock::now() - start);
  if (plain.failures != 0) Die(fmt::format("{} plain publishes failed", plain.failures));
  js_DeleteStream(connection.js, stream_name.c_str(), nullptr, nullptr);
  Disconnect(connection);
  return static_cast<double>(events.size()) / seconds;
}

std::vector<eventstore::NewEvent> MakeBatch(uint64_t first, size_t count) {
  std::vector<eventstore::NewEvent> events;
  for (size_t i = 0; i < count; ++i) {
    const uint64_t n = first + i;
    events.push_back(
        eventstore::NewEvent{.event_id = EventId::FromName("jetstream-bench", std::to_string(n)),
                             .event_type = "PaymentCaptured",
                             // About the size of an encoded PaymentCaptured.
                             .payload = fmt::format("{:0>200}", n),
                             .correlation_id = {},
                             .causation_id = {},
                             .actor = "bench",
                             .schema_version = 1});
  }
  return events;
}

uint64_t Percentile(std::vector<uint64_t> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1,
                         static_cast<size_t>(fraction * static_cast<double>(values.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  uint64_t event_count = 100'000;
  size_t window = 256;
  double live_seconds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--dir") {
      dir = argv[i + 1];
    } else if (flag == "--events") {
      event_count = std::stoull(argv[i + 1]);
    } else if (flag == "--window") {
      window = std::stoul(argv[i + 1]);
    } else if (flag == "--live-seconds") {
      live_seconds = std::stod(argv[i + 1]);
    } else {
      Die("usage: jetstream_bench --dir DIR [--events N] [--window W] [--live-seconds S]");
    }
  }
  if (dir.empty()) Die("--dir is required");
  std::filesystem::create_directories(dir);

  auto store = eventstore::OpenRocksDbEventStore(dir + "/log");
  if (!store) Die(store.error().ToString());
  auto state = eventstore::OpenRocksDbStateStore(dir + "/state");
  if (!state) Die(state.error().ToString());
  for (uint64_t n = 0; n < event_count; n += 1'000) {
    const std::string stream = fmt::format("order-EDX-{}", 100'000 + n / 1'000);
    auto appended = (*store)->Append(stream, eventstore::ExpectedVersion::Any(),
                                     MakeBatch(n, std::min<uint64_t>(1'000, event_count - n)));
    if (!appended) Die(appended.error().ToString());
  }
  std::vector<eventstore::RecordedEvent> events;
  events.reserve(event_count);
  (void)(*store)->ScanAll(1, event_count, [&](const eventstore::RecordedEvent& event) {
    events.push_back(event);
    return true;
  });

  Cluster cluster(dir);
  const double plain_before = RunPlain(cluster.urls(), "PLAIN1", events, window);
  fmt::print(stderr, "plain publisher (before): {:.0f} events/s\n", plain_before);

  server::JetStreamConfig config;
  config.enabled = true;
  config.urls = cluster.urls();
  config.stream = "LEDGER";
  config.max_in_flight = window;
  auto opened = server::JetStreamPublisher::Open(**store, **state, config);
  if (!opened) Die(opened.error().ToString());
  std::unique_ptr<server::JetStreamPublisher> publisher = std::move(*opened);
  const auto start = Clock::now();
  publisher->Start();
  while (!publisher->WaitForAcknowledged(event_count, 60'000)) {
    const server::JetStreamStats stats = publisher->Stats();
    fmt::print(stderr, "still publishing: acknowledged {}, last error '{}'\n",
               stats.acknowledged_position, stats.last_error);
  }
  const double backlog_seconds = Seconds(Clock::now() - start);
  const double ours = static_cast<double>(event_count) / backlog_seconds;

  // Live: appends of 100 events at half the backlog rate, the lag sampled every 10 ms.
  std::atomic<bool> appending = true;
  const double live_rate = ours / 2;
  std::thread appender([&] {
    uint64_t n = event_count;
    const auto live_start = Clock::now();
    while (appending) {
      const auto due =
          live_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                           static_cast<double>(n - event_count) / live_rate));
      std::this_thread::sleep_until(due);
      const std::string stream = fmt::format("order-EDX-live-{}", n / 1'000);
      auto appended =
          (*store)->Append(stream, eventstore::ExpectedVersion::Any(), MakeBatch(n, 100));
      if (!appended) Die(appended.error().ToString());
      n += 100;
    }
  });
  std::vector<uint64_t> lags;
  const auto live_end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(live_seconds));
  while (Clock::now() < live_end) {
    lags.push_back(publisher->Stats().lag);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  appending = false;
  appender.join();
  const uint64_t live_head = (*store)->HeadPosition();
  const bool caught_up = publisher->WaitForAcknowledged(live_head, 60'000);
  const server::JetStreamStats stats = publisher->Stats();
  publisher->Stop();

  const double plain_after = RunPlain(cluster.urls(), "PLAIN2", events, window);
  fmt::print(stderr, "plain publisher (after): {:.0f} events/s\n", plain_after);
  const double reference = (plain_before + plain_after) / 2;
  fmt::print(
      "{{\"case\":\"plain_publisher\",\"events\":{},\"window\":{},"
      "\"events_per_second_before\":{:.0f},\"events_per_second_after\":{:.0f},"
      "\"events_per_second\":{:.0f}}}\n",
      event_count, window, plain_before, plain_after, reference);
  fmt::print(
      "{{\"case\":\"publish_backlog\",\"events\":{},\"window\":{},\"seconds\":{:.3f},"
      "\"events_per_second\":{:.0f},\"reference_events_per_second\":{:.0f},\"ratio\":{:.3f}}}\n",
      event_count, window, backlog_seconds, ours, reference, ours / reference);
  fmt::print(
      "{{\"case\":\"publish_live\",\"append_events_per_second\":{:.0f},\"seconds\":{:.1f},"
      "\"lag_events_p50\":{},\"lag_events_p99\":{},\"lag_events_max\":{},\"caught_up\":{},"
      "\"published\":{},\"retries\":{},\"duplicates\":{}}}\n",
      live_rate, live_seconds, Percentile(lags, 0.5), Percentile(lags, 0.99), Percentile(lags, 1.0),
      caught_up ? "true" : "false", stats.published, stats.retries, stats.duplicates);
  return 0;
}
