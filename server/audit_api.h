// AuditApi: the audit endpoints of ledgerd (signed digests, Merkle proofs, verifiable exports),
// as handlers on a Router (server/http_server.h), and DigestWriter, which appends a signed
// digest to a file at an interval. Formats: eventstore/FORMAT.md; how an auditor uses them:
// README.md ("Audit: exports, digests and proofs").
//
//   GET /v1/audit/public-key          {algorithm: "ed25519", public_key, key_id}
//   GET /v1/audit/digest[?position=P] a digest of the log at P (default: the head), signed now
//   GET /v1/audit/proof?position=P[&tree_size=N | &digest=D]
//                                     an inclusion proof of the event at P in the tree of N
//                                     events (a digest at position D has the tree of D events);
//                                     without either, in the tree at the head, with the signed
//                                     digest of that tree embedded ("digest")
//   GET /v1/audit/consistency?from_size=M[&to_size=N]
//                                     a consistency proof from the tree of M events to the tree
//                                     of N; without N, to the head, with its signed digest
//   GET /v1/audit/export?from=P[&limit=N]
//                                     {events, next_position, head_position}: a page of the log
//                                     in the export's event form (eventstore/audit_export.h)
//
// Access (server/auth.h): the public key to reader, ops and auditor; everything else to ops and
// auditor. Errors: 400 invalid_parameter; 404 position_not_found (beyond the head); 504
// projection_behind when the Merkle projection does not reach the position within wait_ms;
// 503/500 when the store fails.
//
// Thread safety: handlers and SignDigest may run concurrently; everything they touch is
// thread-safe. DigestWriter's Start/Stop are called by one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "eventstore/digest.h"
#include "eventstore/event_store.h"
#include "projections/projection_runner.h"
#include "server/auth.h"
#include "server/http_server.h"

namespace ledger::server {

struct AuditApiOptions {
  // How long a request waits for the Merkle projection to reach the position it needs.
  int64_t wait_ms = 5'000;
  // Events per GET /v1/audit/export page at most.
  size_t export_events_max = 1'000;
  // Now, in microseconds since the Unix epoch; the system clock when empty.
  std::function<int64_t()> clock_us{};
  // Checks tokens (server/auth.h); null: no checks (in-process tests only). Must outlive the API.
  const Authenticator* auth = nullptr;
};

class AuditApi {
 public:
  // `merkle` runs the Merkle projection (projections/merkle_projection.h), live. Everything
  // passed must outlive the API and the server that calls it.
  AuditApi(eventstore::EventStore& store, projections::ProjectionRunner& merkle,
           const eventstore::SigningKey& key, AuditApiOptions options = {});

  void Register(Router& router);

  // A digest of the log at `position` (the head when nullopt), signed now, once the Merkle
  // projection has reached it. kInvalidArgument beyond the head; kIoError (message
  // "projection_behind: ...") when the projection does not get there within wait_ms.
  // `wait_ms` overrides the options' wait.
  eventstore::StoreResult<eventstore::Digest> SignDigest(std::optional<uint64_t> position,
                                                         std::optional<int64_t> wait_ms = {});

  const eventstore::PublicKey& public_key() const { return key_.public_key(); }

 private:
  HttpServerResponse GetPublicKey(const HttpServerRequest& request);
  HttpServerResponse GetDigest(const HttpServerRequest& request);
  HttpServerResponse GetProof(const HttpServerRequest& request);
  HttpServerResponse GetConsistency(const HttpServerRequest& request);
  HttpServerResponse GetExport(const HttpServerRequest& request);
  // Waits for the projection to reach `position`; an error response when it does not.
  std::optional<HttpServerResponse> WaitForTree(uint64_t position);
  int64_t NowUs() const;

  eventstore::EventStore& store_;
  projections::ProjectionRunner& merkle_;
  const eventstore::SigningKey& key_;
  const AuditApiOptions options_;
};

// Appends a signed digest of the head (one JSON line, DigestToJson's form) to a file every
// `interval`, when the head moved since the last one written; the first at Start. While the
// Merkle projection catches up (after a start on a long log) it tries again every second rather
// than wait, so that Stop is prompt. Other failures are printed on stderr and retried at the next
// tick.
class DigestWriter {
 public:
  DigestWriter(AuditApi& api, std::string path, std::chrono::milliseconds interval);
  ~DigestWriter();
  DigestWriter(const DigestWriter&) = delete;
  DigestWriter& operator=(const DigestWriter&) = delete;

  void Start();
  void Stop();
  // Signs and appends one digest now (when the head moved); an error text on failure.
  // `wait_ms`: how long to wait for the Merkle projection to reach the head.
  Result<void, std::string> WriteOnce(int64_t wait_ms = 5'000);

 private:
  void Run();

  AuditApi& api_;
  const std::string path_;
  const std::chrono::milliseconds interval_;
  std::optional<uint64_t> last_position_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ledger::server
