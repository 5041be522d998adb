#include "tests/jetstream/nats_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "base/bytes.h"

extern char** environ;

namespace ledger::jetstream_testing {
namespace {

using namespace std::chrono_literals;

// Claims `port` for this process's lifetime among the test processes of this machine: an
// exclusive flock on a file named after it, never released before exit. Test processes run side
// by side (ctest -j) and pick ports at random from one range, and two clusters drew the same
// port (a node of one died with "address already in use" on 127.0.0.1:24313).
bool ClaimPort(uint16_t port) {
  static const std::filesystem::path dir = [] {
    std::filesystem::path path = std::filesystem::temp_directory_path() / "orderledger-test-ports";
    std::error_code ignored;
    std::filesystem::create_directories(path, ignored);
    return path;
  }();
  const std::string file = (dir / fmt::format("{}", port)).string();
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return true;  // No claims possible here: the bind check alone decides.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;
  }
  return true;  // The descriptor stays open, and the claim with it.
}

// Debian installs it in /usr/sbin, which is not on every user's PATH.
std::string NatsServerPath() {
  for (const char* candidate :
       {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  FAIL("nats-server is missing (Debian package nats-server)");
  return {};
}

}  // namespace

uint16_t FreePort() {
  // Below the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 on
  // Linux by default): a port that bind(0) hands out is free now, but any process's next
  // outgoing connection may take it before nats-server binds it (a node of a CI run died with
  // "address already in use" on its cluster port, and the cluster never got its third peer).
  // Ports here are only ever taken by a bind that names them.
  static std::mt19937 random(static_cast<uint32_t>(::getpid()) ^
                             static_cast<uint32_t>(std::random_device{}()));
  std::uniform_int_distribution<int> pick(20'000, 32'000);
  // Nothing binds a port between this check and nats-server's start, so the same port could be
  // picked twice for one cluster (a node refused its configuration: "Duplicate route entry").
  static std::set<uint16_t> handed_out;
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(pick(random)));
    const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    const uint16_t port = ntohs(address.sin_port);
    if (bound && !handed_out.contains(port) && ClaimPort(port)) {
      handed_out.insert(port);
      return port;
    }
  }
  FAIL("no free port in 20000-32000 after 200 tries");
  return 0;
}

NatsCluster::NatsCluster(const std::string& dir, size_t nodes, bool start) {
  for (size_t i = 0; i < nodes; ++i) {
    nodes_.push_back(Node{.name = fmt::format("n{}", i + 1),
                          .client_port = FreePort(),
                          .cluster_port = FreePort(),
                          .config_path = fmt::format("{}/n{}.conf", dir, i + 1),
                          .log_path = fmt::format("{}/n{}.log", dir, i + 1),
                          .pid = -1});
  }
  std::string routes;
  for (const Node& node : nodes_) {
    routes +=
        fmt::format("{}nats-route://127.0.0.1:{}", routes.empty() ? "" : ", ", node.cluster_port);
  }
  for (const Node& node : nodes_) {
    std::ofstream config(node.config_path);
    config << fmt::format(
        "server_name: {0}\n"
        "listen: 127.0.0.1:{1}\n"
        "jetstream {{\n  store_dir: \"{2}/{0}-store\"\n  max_memory_store: 64MB\n"
        "  max_file_store: 1GB\n}}\n"
        "cluster {{\n  name: ledger-test\n  listen: 127.0.0.1:{3}\n  routes: [{4}]\n}}\n",
        node.name, node.client_port, dir, node.cluster_port, routes);
    REQUIRE(config.good());
  }
  if (start) {
    StartAll();
    WaitForMetaLeader();
    // A meta leader needs two nodes of three; the tests need all three.
    for (Node& node : nodes_) {
      int status = 0;
      if (::waitpid(node.pid, &status, WNOHANG) == node.pid) {
        node.pid = -1;
        std::ifstream log(node.log_path);
        std::string text;
        for (std::string line; std::getline(log, line);) {
          text += line + "\n";
          if (text.size() > 8'000) text.erase(0, text.size() - 2'000);
        }
        FAIL("NATS node " << node.name << " exited at start; its log ends:\n" << text);
      }
    }
  }
}

NatsCluster::~NatsCluster() {
  for (Node& node : nodes_) {
    if (node.pid <= 0) continue;
    ::kill(node.pid, SIGKILL);
    int status = 0;
    ::waitpid(node.pid, &status, 0);
    node.pid = -1;
  }
}

std::vector<std::string> NatsCluster::urls() const {
  std::vector<std::string> urls;
  for (const Node& node : nodes_)
    urls.push_back(fmt::format("nats://127.0.0.1:{}", node.client_port));
  return urls;
}

void NatsCluster::Start(size_t index) {
  Node& node = nodes_.at(index);
  REQUIRE(node.pid <= 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, node.log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  const std::string program = NatsServerPath();
  std::vector<std::string> arguments = {program, "-c", node.config_path};
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(spawned == 0);
  node.pid = pid;
}

void NatsCluster::StartAll() {
  for (size_t i = 0; i < nodes_.size(); ++i) Start(i);
}

void NatsCluster::Kill(size_t index) {
  Node& node = nodes_.at(index);
  REQUIRE(node.pid > 0);
  REQUIRE(::kill(node.pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(node.pid, &status, 0) == node.pid);
  node.pid = -1;
}

void NatsCluster::WaitForMetaLeader() {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::string last_problem;
  for (;;) {
    for (const std::string& url : urls()) {
      natsConnection* connection = nullptr;
      natsOptions* options = nullptr;
      natsOptions_Create(&options);
      natsOptions_SetURL(options, url.c_str());
      natsOptions_SetTimeout(options, 500);
      natsOptions_SetAllowReconnect(options, false);
      natsStatus status = natsConnection_Connect(&connection, options);
      natsOptions_Destroy(options);
      if (status == NATS_OK) {
        jsOptions js_options;
        jsOptions_Init(&js_options);
        js_options.Wait = 1'000;
        jsCtx* js = nullptr;
        status = natsConnection_JetStream(&js, connection, &js_options);
        jsAccountInfo* info = nullptr;
        jsErrCode code = static_cast<jsErrCode>(0);
        if (status == NATS_OK) status = js_GetAccountInfo(&info, js, nullptr, &code);
        jsAccountInfo_Destroy(info);
        jsCtx_Destroy(js);
        natsConnection_Destroy(connection);
        if (status == NATS_OK) return;
      }
      last_problem = fmt::format("{}: {}", url, natsStatus_GetText(status));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      FAIL("the NATS cluster has no JetStream meta leader after 30 s; last: " << last_problem);
    }
    std::this_thread::sleep_for(100ms);
  }
}

std::vector<eventstore::RecordedEvent> ReadLog(eventstore::EventStore& store) {
  std::vector<eventstore::RecordedEvent> log;
  uint64_t next = 1;
  for (;;) {
    auto page = store.ReadAll(next, 10'000);
    REQUIRE(page.has_value());
    if (page->events.empty()) break;
    next = page->next_position;
    for (auto& event : page->events) log.push_back(std::move(event));
  }
  return log;
}

bool CheckStreamEqualsLog(eventstore::EventStore& store, const std::vector<std::string>& urls,
                          const std::string& stream, const std::string& subject_prefix,
                          std::optional<uint64_t> messages_expected) {
  std::vector<eventstore::RecordedEvent> log = ReadLog(store);
  if (messages_expected) {
    REQUIRE(*messages_expected <= log.size());
    log.resize(*messages_expected);
  }
  auto reader = server::JetStreamReader::Connect(urls, stream);
  if (!reader) FAIL("connecting the reader: " << reader.error());
  auto bounds = (*reader)->Bounds();
  if (!bounds) FAIL("stream bounds: " << bounds.error());
  std::vector<server::JetStreamMessage> messages;
  if (bounds->second > 0) {
    auto consumed =
        (*reader)->Consume(bounds->first, 10'000, [&](const server::JetStreamMessage& message) {
          messages.push_back(message);
          return message.sequence < bounds->second;
        });
    if (!consumed) FAIL("consuming: " << consumed.error());
  }
  bool ok = true;
  const auto check = [&](bool condition) {
    CHECK(condition);
    ok = ok && condition;
  };
  check(messages.size() == log.size());
  for (size_t i = 0; i < std::min(messages.size(), log.size()); ++i) {
    const server::JetStreamMessage& message = messages[i];
    const eventstore::RecordedEvent& event = log[i];
    INFO("message " << i << " (sequence " << message.sequence << ", position " << message.position
                    << ")");
    check(message.sequence == bounds->first + i);
    check(message.position == event.position);
    check(message.hash == ToHex(event.hash));
    check(message.previous_hash == ToHex(event.previous_hash));
    check(message.event_id == event.event_id.ToString());
    check(message.stream == event.stream);
    check(message.version == event.version);
    check(message.event_type == event.event_type);
    check(message.recorded_at_us == event.recorded_at_us);
    check(message.payload == event.payload);
    check(message.subject == server::SubjectFor(subject_prefix, event));
    if (!ok) break;  // One mismatch says enough; the rest would repeat it.
  }
  return ok;
}

std::string StreamNameFor(uint64_t index) {
  switch (index % 5) {
    case 0:
      return fmt::format("order-EDX-{}", 100'000 + index);
    case 1:
      return fmt::format("order-EDX.{}", index);  // '.' separates subject tokens.
    case 2:
      return fmt::format("order {}*>", index);  // Whitespace and wildcards.
    case 3:
      return fmt::format("order-%{}-caf\xc3\xa9", index);  // '%' and UTF-8.
    default:
      return fmt::format("order-EDX-{}", 200'000 + index / 5);
  }
}

}  // namespace ledger::jetstream_testing
