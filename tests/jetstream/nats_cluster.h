// Helpers of the JetStream suite: a real NATS JetStream cluster of nats-server processes on
// loopback ports, each with its own configuration file and store directory under a test's
// temporary directory; workloads for the log; and the check that the stream equals the log.
//
// Thread safety: a NatsCluster is used by one test thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eventstore/event_store.h"
#include "server/jetstream_publisher.h"

namespace ledger::jetstream_testing {

class NatsCluster {
 public:
  // Writes the nodes' configurations into `dir` (which must exist) and, when `start`, starts
  // them and waits until the cluster has a JetStream meta leader (REQUIREs it within 30 s).
  explicit NatsCluster(const std::string& dir, size_t nodes = 3, bool start = true);
  // Kills every node still running (SIGKILL) and reaps it, whatever the test's outcome.
  ~NatsCluster();
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  size_t size() const { return nodes_.size(); }
  // Client URLs of every node.
  std::vector<std::string> urls() const;
  // Starts the node (again, on its own store directory).
  void Start(size_t node);
  // Stops the node with SIGKILL, as a crash, and waits until it is gone.
  void Kill(size_t node);
  void StartAll();
  // Waits (REQUIREs, 30 s) until the cluster answers a JetStream account request, which needs
  // a meta leader.
  void WaitForMetaLeader();

 private:
  struct Node {
    std::string name;
    uint16_t client_port = 0;
    uint16_t cluster_port = 0;
    std::string config_path;
    std::string log_path;
    pid_t pid = -1;
  };
  std::vector<Node> nodes_;
};

// A port on 127.0.0.1 that was free a moment ago, below the ephemeral range (see the .cc).
uint16_t FreePort();

// The log read whole.
std::vector<eventstore::RecordedEvent> ReadLog(eventstore::EventStore& store);

// Reads the stream and checks that it holds exactly the log, in order: message i has sequence
// first + i, position i + 1 and the log's stream, version, id, type, hash, previous hash and
// payload, on the subject SubjectFor(prefix, event). With `messages_expected`, the stream must
// hold that many messages and equal that prefix of the log. Uses Catch2 CHECKs; returns whether
// everything matched.
bool CheckStreamEqualsLog(eventstore::EventStore& store, const std::vector<std::string>& urls,
                          const std::string& stream, const std::string& subject_prefix,
                          std::optional<uint64_t> messages_expected = std::nullopt);

// Stream names that need escaping in subjects ('.', ' ', '*', '>', '%', non-ASCII) next to
// ordinary ones.
std::string StreamNameFor(uint64_t index);

}  // namespace ledger::jetstream_testing
