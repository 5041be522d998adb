// The audit endpoints through a Router, in process (no sockets): digests, proofs and export
// pages checked with the same verifiers an auditor runs offline; errors; the periodic digest
// writer's file.
#include <catch2/catch.hpp>

#include <fstream>

#include "eventstore/audit_export.h"
#include "eventstore/audit_proof.h"
#include "eventstore/digest.h"
#include "projections/merkle_projection.h"
#include "projections/projection_runner.h"
#include "server/audit_api.h"
#include "tests/audit/audit_test_support.h"

namespace ledger::audit_testing {
namespace {

class AuditServer {
 public:
  AuditServer() : dir_("audit-api"), key_(eventstore::SigningKey::FromSeed({})) {
    store_ = MustOpen(dir_.Child("log"));
    FillOrders(*store_, 10);
    auto state = eventstore::OpenRocksDbStateStore(dir_.Child("state"));
    REQUIRE(state);
    state_ = std::move(*state);
    auto runner = projections::ProjectionRunner::Open(*store_, *state_,
                                                      projections::MerkleProjectionFactory());
    REQUIRE(runner);
    runner_ = std::move(*runner);
    runner_->Start();
    api_ = std::make_unique<server::AuditApi>(*store_, *runner_, key_,
                                              server::AuditApiOptions{.wait_ms = 10'000});
    api_->Register(router_);
  }
  ~AuditServer() { runner_->Stop(); }

  server::HttpServerResponse Get(const std::string& path,
                                 std::map<std::string, std::string, std::less<>> query = {}) {
    server::HttpServerRequest request;
    request.method = "GET";
    request.path = path;
    request.target = path;
    std::string segment;
    for (char c : path.substr(1) + "/") {
      if (c == '/') {
        request.segments.push_back(segment);
        segment.clear();
      } else {
        segment += c;
      }
    }
    request.query = std::move(query);
    return router_.Dispatch(request);
  }

  eventstore::EventStore& store() { return *store_; }
  server::AuditApi& api() { return *api_; }
  const eventstore::SigningKey& key() const { return key_; }
  std::string Child(std::string_view name) const { return dir_.Child(name); }

 private:
  TempDir dir_;
  eventstore::SigningKey key_;
  std::unique_ptr<eventstore::EventStore> store_;
  std::unique_ptr<eventstore::StateStore> state_;
  std::unique_ptr<projections::ProjectionRunner> runner_;
  std::unique_ptr<server::AuditApi> api_;
  server::Router router_;
};

TEST_CASE("audit api: digest, proofs and export pages verify offline", "[audit_api]") {
  AuditServer server;
  const uint64_t head = server.store().HeadPosition();

  auto answer = server.Get("/v1/audit/public-key");
  REQUIRE(answer.status == 200);
  CHECK(eventstore::ParsePublicKey(answer.body) == server.key().public_key());

  answer = server.Get("/v1/audit/digest", {{"position", "20"}});
  REQUIRE(answer.status == 200);
  auto old_digest = eventstore::ParseDigestJson(answer.body);
  REQUIRE(old_digest);
  CHECK(old_digest->digest.position == 20);
  CHECK(eventstore::VerifyDigestSignature(old_digest->digest, server.key().public_key()));

  answer = server.Get("/v1/audit/proof", {{"position", "7"}});
  REQUIRE(answer.status == 200);
  auto proof = eventstore::ParseProofJson(answer.body);
  REQUIRE(proof);
  REQUIRE(proof->inclusion);
  CHECK(eventstore::CheckInclusionProof(*proof->inclusion));
  REQUIRE(proof->inclusion->digest);
  const eventstore::Digest& head_digest = proof->inclusion->digest->digest;
  CHECK(head_digest.tree_size == head);
  CHECK(head_digest.root == proof->inclusion->root);
  CHECK(eventstore::VerifyDigestSignature(head_digest, server.key().public_key()));

  answer = server.Get("/v1/audit/consistency", {{"from_size", "20"}});
  REQUIRE(answer.status == 200);
  proof = eventstore::ParseProofJson(answer.body);
  REQUIRE(proof);
  REQUIRE(proof->consistency);
  CHECK(proof->consistency->from_root == old_digest->digest.root);
  CHECK(proof->consistency->to_size == head);
  CHECK(eventstore::CheckConsistencyProof(*proof->consistency));

  // A saved digest named by its position: the proof is in that digest's tree.
  answer = server.Get("/v1/audit/proof", {{"position", "7"}, {"digest", "20"}});
  REQUIRE(answer.status == 200);
  proof = eventstore::ParseProofJson(answer.body);
  REQUIRE(proof);
  REQUIRE(proof->inclusion);
  CHECK(proof->inclusion->tree_size == 20);
  CHECK(eventstore::CheckInclusionProof(*proof->inclusion));

  answer = server.Get("/v1/audit/consistency", {{"from_size", "20"}, {"to_size", "30"}});
  REQUIRE(answer.status == 200);
  proof = eventstore::ParseProofJson(answer.body);
  REQUIRE(proof);
  CHECK(eventstore::CheckConsistencyProof(*proof->consistency));
  CHECK_FALSE(proof->consistency->digest);

  // Export pages re-serialized line by line are the export ledgerctl writes offline.
  answer = server.Get("/v1/audit/export", {{"from", "5"}, {"limit", "10"}});
  REQUIRE(answer.status == 200);
  CHECK(answer.body.find("\"next_position\":15") != std::string::npos);
  std::ostringstream offline;
  REQUIRE(eventstore::WriteExport(server.store(), 5, 14, 0, offline));
  const std::vector<std::string> lines = SplitLines(offline.str());
  for (size_t i = 1; i < lines.size(); ++i) {
    CHECK(answer.body.find(lines[i]) != std::string::npos);
  }
}

TEST_CASE("audit api: bad parameters, positions beyond the head", "[audit_api]") {
  AuditServer server;
  const std::string beyond = std::to_string(server.store().HeadPosition() + 1);
  CHECK(server.Get("/v1/audit/digest", {{"position", "x"}}).status == 400);
  CHECK(server.Get("/v1/audit/digest", {{"position", beyond}}).status == 404);
  CHECK(server.Get("/v1/audit/proof").status == 400);
  CHECK(server.Get("/v1/audit/proof", {{"position", "0"}}).status == 400);
  CHECK(server.Get("/v1/audit/proof", {{"position", "9"}, {"tree_size", "8"}}).status == 400);
  CHECK(server.Get("/v1/audit/proof", {{"position", "9"}, {"digest", "8"}}).status == 400);
  // Both a tree size and a digest: ambiguous, refused instead of one silently winning.
  const auto both =
      server.Get("/v1/audit/proof", {{"position", "2"}, {"tree_size", "9"}, {"digest", "3"}});
  CHECK(both.status == 400);
  CHECK(both.body.find("give tree_size or digest, not both") != std::string::npos);
  const auto not_a_size = server.Get("/v1/audit/proof", {{"position", "2"}, {"digest", "abc"}});
  CHECK(not_a_size.status == 400);
  CHECK(not_a_size.body.find("digest must be a tree size") != std::string::npos);
  CHECK(server.Get("/v1/audit/proof", {{"position", beyond}}).status == 404);
  CHECK(server.Get("/v1/audit/consistency", {{"from_size", "0"}}).status == 400);
  CHECK(server.Get("/v1/audit/consistency", {{"from_size", "5"}, {"to_size", beyond}}).status ==
        404);
  CHECK(server.Get("/v1/audit/export", {{"limit", "100000"}}).status == 400);
  const auto error = server.Get("/v1/audit/export", {{"from", "x"}});
  CHECK(error.body.find("\"code\":\"invalid_parameter\"") != std::string::npos);
  // Positions start at 1; the next one is an empty page, past it the log has none (as for
  // ledgerctl export).
  CHECK(server.Get("/v1/audit/export", {{"from", "0"}}).status == 400);
  const auto next = server.Get("/v1/audit/export", {{"from", beyond}});
  CHECK(next.status == 200);
  CHECK(next.body.find("\"events\":[]") != std::string::npos);
  const auto past =
      server.Get("/v1/audit/export", {{"from", std::to_string(server.store().HeadPosition() + 2)}});
  CHECK(past.status == 400);
  CHECK(past.body.find("past the log's head") != std::string::npos);
  // A parameter an endpoint does not take is refused, not ignored.
  const auto unknown = server.Get("/v1/audit/digest", {{"postion", "3"}});
  CHECK(unknown.status == 400);
  CHECK(unknown.body.find("unknown query parameter \\\"postion\\\": /v1/audit/digest takes "
                          "position") != std::string::npos);
  CHECK(server.Get("/v1/audit/public-key", {{"x", "1"}}).status == 400);
}

TEST_CASE("audit api: the digest writer appends a digest when the head moved", "[audit_api]") {
  AuditServer server;
  const std::string path = server.Child("audit/digests.jsonl");
  server::DigestWriter writer(server.api(), path, std::chrono::hours(1));
  REQUIRE(writer.WriteOnce());
  REQUIRE(writer.WriteOnce());  // The head did not move: nothing new.
  FillOrders(server.store(), 2, 31);
  REQUIRE(writer.WriteOnce());
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  const std::vector<std::string> lines = SplitLines(text.str());
  REQUIRE(lines.size() == 2);
  auto first = eventstore::ParseDigestJson(lines[0]);
  auto second = eventstore::ParseDigestJson(lines[1]);
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->digest.position < second->digest.position);
  CHECK(second->digest.position == server.store().HeadPosition());
  CHECK(eventstore::VerifyDigestSignature(second->digest, server.key().public_key()));
  // Start and Stop with a thread: the first digest is written at once.
  server::DigestWriter periodic(server.api(), server.Child("periodic.jsonl"),
                                std::chrono::hours(1));
  periodic.Start();
  periodic.Stop();
  std::ifstream periodic_file(server.Child("periodic.jsonl"));
  std::string line;
  CHECK(std::getline(periodic_file, line));
}

}  // namespace
}  // namespace ledger::audit_testing
