// Digests, exports and the Merkle projection on a real ledger, and tampering: one changed byte,
// one dropped event, two events swapped, and a consistent rewrite of the chain, in an export
// file and in a data directory (through RocksDB directly). Each is detected and located.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <sys/stat.h>

#include <random>
#include <sstream>

#include "eventstore/audit_export.h"
#include "eventstore/digest.h"
#include "eventstore/merkle.h"
#include "eventstore/record_codec.h"
#include "eventstore/state_store.h"
#include "projections/merkle_projection.h"
#include "projections/projection_runner.h"
#include "tests/audit/audit_test_support.h"

namespace ledger::audit_testing {
namespace {

using eventstore::Digest;
using eventstore::ExportReport;
using eventstore::SigningKey;

SigningKey TestKey(uint8_t seed_byte = 1) {
  std::array<uint8_t, 32> seed{};
  seed.fill(seed_byte);
  return SigningKey::FromSeed(seed);
}

// A ledger in a temporary directory: the log with orders, the state store with the Merkle
// projection caught up.
class Ledger {
 public:
  explicit Ledger(size_t orders = 30) : dir_("audit") {
    store_ = MustOpen(dir_.Child("log"));
    FillOrders(*store_, orders);
    auto state = eventstore::OpenRocksDbStateStore(dir_.Child("state"));
    REQUIRE(state);
    state_ = std::move(*state);
  }

  eventstore::EventStore& store() { return *store_; }
  std::string log_path() const { return dir_.Child("log"); }

  // The Merkle projection caught up to the head.
  projections::MerkleView Merkle() {
    if (!runner_) {
      auto runner = projections::ProjectionRunner::Open(*store_, *state_,
                                                        projections::MerkleProjectionFactory());
      REQUIRE(runner);
      runner_ = std::move(*runner);
    }
    REQUIRE(runner_->CatchUp());
    return projections::MerkleView(runner_->View());
  }

  Digest SignedDigest(uint64_t position, const SigningKey& key) {
    auto merkle = Merkle();
    auto digest = eventstore::BuildDigest(*store_, merkle, position, 1'800'000'000'000'000);
    REQUIRE(digest);
    key.Sign(*digest);
    return *digest;
  }

  std::string Export(uint64_t from = 1, uint64_t to = UINT64_MAX) {
    std::ostringstream out;
    REQUIRE(eventstore::WriteExport(*store_, from, to, 1'800'000'000'000'000, out));
    return out.str();
  }

  void Close() {
    runner_.reset();
    state_.reset();
    store_.reset();
  }
  void Reopen() { store_ = MustOpen(log_path()); }

 private:
  TempDir dir_;
  std::unique_ptr<eventstore::EventStore> store_;
  std::unique_ptr<eventstore::StateStore> state_;
  std::unique_ptr<projections::ProjectionRunner> runner_;
};

ExportReport Verify(const std::string& text, std::optional<Digest> digest = std::nullopt) {
  std::istringstream input(text);
  return eventstore::VerifyExport(input, std::move(digest));
}

// The export's line `line` (from 1) with its event changed by `change`, hashes left as they were.
std::string ChangeEvent(const std::string& text, size_t line,
                        const std::function<void(RecordedEvent&)>& change, bool rehash = false) {
  std::vector<std::string> lines = SplitLines(text);
  auto event = eventstore::ParseExportEvent(lines[line - 1]);
  REQUIRE(event);
  change(*event);
  if (rehash) event->hash = eventstore::internal::ComputeRecordHash(*event);
  lines[line - 1] = eventstore::ExportEventLine(*event);
  return JoinLines(lines);
}

TEST_CASE("audit: the Merkle projection's root equals the tree over the log", "[audit]") {
  Ledger ledger(20);
  const uint64_t head = ledger.store().HeadPosition();
  REQUIRE(head > 50);
  eventstore::MerkleAccumulator expected;
  REQUIRE(ledger.store().ScanAll(1, head, [&](const RecordedEvent& event) {
    expected.Append(eventstore::MerkleLeafHash(event.position, event.hash));
    return true;
  }));
  auto merkle = ledger.Merkle();
  CHECK(merkle.tree_size_max() == head);
  auto root = eventstore::MerkleSubtreeRoot(merkle, 0, head);
  REQUIRE(root);
  CHECK(*root == expected.Root());
  // More events: the projection continues its tree from the stored edge.
  FillOrders(ledger.store(), 5, 99);
  auto later = ledger.Merkle();
  const uint64_t new_head = ledger.store().HeadPosition();
  REQUIRE(ledger.store().ScanAll(head + 1, new_head, [&](const RecordedEvent& event) {
    expected.Append(eventstore::MerkleLeafHash(event.position, event.hash));
    return true;
  }));
  CHECK(*eventstore::MerkleSubtreeRoot(later, 0, new_head) == expected.Root());
  // Inclusion of every event of the old tree in the new one, and consistency of old and new.
  for (uint64_t position = 1; position <= new_head; position += 7) {
    auto proof = eventstore::MerkleInclusionProof(later, position - 1, new_head);
    REQUIRE(proof);
    auto page = ledger.store().ReadAll(position, 1);
    REQUIRE(page);
    auto computed = eventstore::MerkleRootFromInclusionProof(
        position - 1, new_head, eventstore::MerkleLeafHash(position, page->events.front().hash),
        *proof);
    REQUIRE(computed);
    CHECK(*computed == expected.Root());
  }
  auto consistency = eventstore::MerkleConsistencyProof(later, head, new_head);
  REQUIRE(consistency);
  CHECK(eventstore::MerkleVerifyConsistency(head, new_head, *root, expected.Root(), *consistency));
  // A node beyond the view is refused.
  CHECK_FALSE(later.PerfectSubtree(0, new_head));
}

TEST_CASE("audit: digests sign and verify; a wrong key or a changed field fails", "[audit]") {
  Ledger ledger(10);
  const SigningKey key = TestKey();
  const Digest digest = ledger.SignedDigest(ledger.store().HeadPosition(), key);
  CHECK(digest.tree_size == digest.position);
  CHECK(eventstore::VerifyDigestSignature(digest, key.public_key()));
  CHECK_FALSE(eventstore::VerifyDigestSignature(digest, TestKey(2).public_key()));
  CHECK(eventstore::DigestSigningBytes(digest).size() == 21 + 8 + 8 + 32 + 32 + 8 + 8);

  // Every field is covered by the signature.
  std::vector<std::function<void(Digest&)>> changes = {
      [](Digest& d) { d.position -= 1; },      [](Digest& d) { d.tree_size -= 1; },
      [](Digest& d) { d.root[3] ^= 1; },       [](Digest& d) { d.chain_head[31] ^= 0x80; },
      [](Digest& d) { d.time_us += 1; },       [](Digest& d) { d.key_id[0] ^= 1; },
      [](Digest& d) { d.signature[10] ^= 4; },
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    INFO("change " << i);
    Digest changed = digest;
    changes[i](changed);
    CHECK_FALSE(eventstore::VerifyDigestSignature(changed, key.public_key()));
  }

  // The JSON form round-trips and names the key.
  const std::string json = eventstore::DigestToJson(digest, key.public_key());
  auto parsed = eventstore::ParseDigestJson(json);
  REQUIRE(parsed);
  CHECK(parsed->digest == digest);
  REQUIRE(parsed->public_key);
  CHECK(*parsed->public_key == key.public_key());
  CHECK(eventstore::ParsePublicKey(ToHex(std::span<const uint8_t>(key.public_key()))) ==
        key.public_key());
  CHECK_FALSE(eventstore::ParseDigestJson("{\"digest\":\"orderledger.digest.v1\"}"));
  CHECK_FALSE(eventstore::ParseDigestJson("not json"));
  // A public key that is not the one the key id names is refused.
  std::string other_key = json;
  const std::string key_hex = ToHex(std::span<const uint8_t>(key.public_key()));
  other_key.replace(other_key.find(key_hex), key_hex.size(),
                    ToHex(std::span<const uint8_t>(TestKey(3).public_key())));
  CHECK_FALSE(eventstore::ParseDigestJson(other_key));
}

TEST_CASE("audit: a digest's JSON holds the signed fields only, and the time they sign",
          "[audit]") {
  // A digest as DigestToJson writes it, and has since digests exist (TestKey(), fixed fields):
  // it still reads and verifies.
  const std::string written =
      "{\"digest\":\"orderledger.digest.v1\",\"position\":3,\"tree_size\":3,\"root\":"
      "\"1111111111111111111111111111111111111111111111111111111111111111\",\"chain_head\":"
      "\"2222222222222222222222222222222222222222222222222222222222222222\",\"time\":"
      "\"2026-09-21T14:13:20.123456Z\",\"time_us\":1790000000123456,\"key_id\":"
      "\"34750f98bd59fcfc\",\"public_key\":"
      "\"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\",\"signature\":"
      "\"7aa32e8d66f76b1588bd7d810a0fe717b6b571c3db6cbe3f4087852f24a25ee495e57cac699f83dd6801fa47"
      "f6d720fd7c9dca95d59fc71e6482a4d2162a210f\"}";
  auto parsed = eventstore::ParseDigestJson(written);
  REQUIRE(parsed);
  CHECK(parsed->digest.time_us == 1'790'000'000'123'456);
  CHECK(eventstore::VerifyDigestSignature(parsed->digest, TestKey().public_key()));
  // Without the key it names, as a proof embeds a digest it has no key for.
  std::string keyless = written;
  const size_t key_at = keyless.find(",\"public_key\"");
  keyless.erase(key_at, keyless.find(",\"signature\"") - key_at);
  CHECK(eventstore::ParseDigestJson(keyless));

  // The signature covers time_us, of which "time" is the text: a "time" changed alone left the
  // signed time as it was, and verified. It is refused, naming both.
  for (const char* year : {"2020", "2030"}) {
    INFO("year " << year);
    std::string forged = written;
    forged.replace(forged.find("2026-09-21"), 4, year);
    auto refused = eventstore::ParseDigestJson(forged);
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error(), Catch::Contains("\"time\" " + std::string(year)) &&
                                    Catch::Contains("\"time_us\" 1790000000123456"));
  }
  // Without "time" (people's text only), as digests written by hand may be, it still reads.
  std::string timeless = written;
  timeless.erase(timeless.find("\"time\":"),
                 std::string_view("\"time\":\"2026-09-21T14:13:20.123456Z\",").size());
  CHECK(eventstore::ParseDigestJson(timeless));

  // A key the digest does not define would be read by people and checked by nothing.
  std::string extended = written;
  extended.insert(extended.size() - 1, ",\"extra\":\"x\"");
  auto unknown = eventstore::ParseDigestJson(extended);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error() == "digest: unknown field \"extra\"");
}

TEST_CASE("audit: the signing key file is created once, mode 0600, and reloaded", "[audit]") {
  TempDir dir("audit-key");
  const std::string path = dir.Child("audit/signing.key");
  auto created = SigningKey::LoadOrCreate(path);
  REQUIRE(created);
  struct stat status {};
  REQUIRE(::stat(path.c_str(), &status) == 0);
  CHECK((status.st_mode & 0777) == 0600);
  auto loaded = SigningKey::LoadOrCreate(path);
  REQUIRE(loaded);
  CHECK(loaded->public_key() == created->public_key());
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  auto refused = SigningKey::LoadOrCreate(path);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().find("chmod 600") != std::string::npos);
}

TEST_CASE("audit: an export verifies, alone and against a digest", "[audit]") {
  Ledger ledger(15);
  const SigningKey key = TestKey();
  const uint64_t head = ledger.store().HeadPosition();
  const Digest digest = ledger.SignedDigest(head - 5, key);
  const std::string text = ledger.Export();
  CHECK(SplitLines(text).size() == head + 1);

  ExportReport report = Verify(text);
  INFO(report.problem);
  CHECK(report.ok);
  CHECK(report.events == head);
  CHECK(report.last_position == head);

  report = Verify(text, digest);
  CHECK(report.ok);
  CHECK(report.digest_checked);
  CHECK(report.root_checked);

  // A part of the log: the chain head still pins it; the root needs position 1.
  report = Verify(ledger.Export(head - 20, head - 2), digest);
  CHECK(report.ok);
  CHECK(report.digest_checked);
  CHECK_FALSE(report.root_checked);

  // An export that ends before the digest, or starts after it, cannot prove it.
  CHECK_FALSE(Verify(ledger.Export(1, head - 6), digest).ok);
  CHECK_FALSE(Verify(ledger.Export(head - 4, head), digest).ok);

  // The empty log's digest, and an empty export.
  CHECK(Verify(ledger.Export(head + 1, head)).ok);
}

TEST_CASE("audit: a digest of another history fails the export", "[audit]") {
  Ledger ours(8);
  Ledger theirs(8);
  // Another history of the same length: other orders.
  FillOrders(theirs.store(), 1, 12345);
  FillOrders(ours.store(), 1, 54321);
  const uint64_t position = std::min(ours.store().HeadPosition(), theirs.store().HeadPosition());
  const SigningKey key = TestKey();
  const Digest their_digest = theirs.SignedDigest(position, key);
  const ExportReport report = Verify(ours.Export(), their_digest);
  CHECK_FALSE(report.ok);
  CHECK(report.problem.find("not the one signed") != std::string::npos);
  // And the digest of our own history at that position passes.
  CHECK(Verify(ours.Export(), ours.SignedDigest(position, key)).ok);
}

TEST_CASE("audit: tampering with an export is detected and located", "[audit]") {
  Ledger ledger(10);
  const std::string text = ledger.Export();
  const uint64_t head = ledger.store().HeadPosition();
  const Digest digest = ledger.SignedDigest(head, TestKey());
  REQUIRE(Verify(text).ok);
  const size_t target_line = 12;  // Position 11.

  SECTION("one byte of an event's payload changed") {
    const std::string changed =
        ChangeEvent(text, target_line, [](RecordedEvent& event) { event.payload[3] ^= 0x20; });
    const ExportReport report = Verify(changed);
    CHECK_FALSE(report.ok);
    CHECK(report.line == target_line);
    CHECK(report.position == 11);
    CHECK(report.problem.find("does not match the event's content") != std::string::npos);
  }
  SECTION("one character of the line changed (the stream)") {
    std::vector<std::string> lines = SplitLines(text);
    const size_t at = lines[target_line - 1].find("order-");
    REQUIRE(at != std::string::npos);
    lines[target_line - 1][at + 6] = static_cast<char>(lines[target_line - 1][at + 6] + 1);
    const ExportReport report = Verify(JoinLines(lines));
    CHECK_FALSE(report.ok);
    CHECK(report.line == target_line);
    CHECK(report.position == 11);
  }
  SECTION("fields the hash does not cover: a second form of a text, an unknown key, a time") {
    std::vector<std::string> lines = SplitLines(text);
    std::string& line = lines[target_line - 1];
    auto event = eventstore::ParseExportEvent(line);
    REQUIRE(event);
    const std::string stream_field = "\"stream\":\"" + event->stream + "\"";
    const size_t at = line.find(stream_field);
    REQUIRE(at != std::string::npos);
    const std::string timestamp = "\"recorded_at\":\"";
    REQUIRE(line.find(timestamp) != std::string::npos);
    const std::vector<std::pair<std::string, std::string>> tampered = {
        // The real stream in the base64 form (which a reader would not look at), another shown.
        {std::string(line).replace(at, stream_field.size(),
                                   "\"stream\":\"order-EDX-666\",\"stream_base64\":\"" +
                                       eventstore::EncodeBase64(event->stream) + "\""),
         "both"},
        {"{\"note\":\"approved\"," + line.substr(1), "unknown field"},
        {std::string(line).replace(line.find(timestamp) + timestamp.size(), 4, "1999"),
         "recorded_at"},
    };
    for (const auto& [changed, problem] : tampered) {
      INFO(changed);
      lines[target_line - 1] = changed;
      const ExportReport report = Verify(JoinLines(lines));
      CHECK_FALSE(report.ok);
      CHECK(report.line == target_line);
      CHECK(report.problem.find(problem) != std::string::npos);
    }
  }
  SECTION("an event changed and its own hash recomputed: the next line's link breaks") {
    const std::string changed = ChangeEvent(
        text, target_line, [](RecordedEvent& event) { event.actor = "mallory"; }, true);
    const ExportReport report = Verify(changed);
    CHECK_FALSE(report.ok);
    CHECK(report.line == target_line + 1);
    CHECK(report.position == 12);
    CHECK(report.problem.find("chain is broken") != std::string::npos);
  }
  SECTION("the whole chain rewritten from an event on: only the digest catches it") {
    std::vector<std::string> lines = SplitLines(text);
    Hash256 previous{};
    for (size_t line = 2; line <= lines.size(); ++line) {
      auto event = eventstore::ParseExportEvent(lines[line - 1]);
      REQUIRE(event);
      if (line == target_line) event->recorded_at_us += 1;
      if (line > 2) event->previous_hash = previous;
      event->hash = eventstore::internal::ComputeRecordHash(*event);
      previous = event->hash;
      lines[line - 1] = eventstore::ExportEventLine(*event);
    }
    const std::string rewritten = JoinLines(lines);
    CHECK(Verify(rewritten).ok);
    const ExportReport report = Verify(rewritten, digest);
    CHECK_FALSE(report.ok);
    CHECK(report.position == head);
    CHECK(report.problem.find("not the one signed") != std::string::npos);
  }
  SECTION("one event dropped") {
    std::vector<std::string> lines = SplitLines(text);
    lines.erase(lines.begin() + target_line - 1);
    const ExportReport report = Verify(JoinLines(lines));
    CHECK_FALSE(report.ok);
    CHECK(report.line == target_line);
    CHECK(report.position == 11);
    CHECK(report.problem.find("dropped") != std::string::npos);
  }
  SECTION("the last event dropped") {
    std::vector<std::string> lines = SplitLines(text);
    lines.pop_back();
    const ExportReport report = Verify(JoinLines(lines));
    CHECK_FALSE(report.ok);
    CHECK(report.position == head);
    CHECK(report.problem.find("missing at the end") != std::string::npos);
  }
  SECTION("two events swapped") {
    std::vector<std::string> lines = SplitLines(text);
    std::swap(lines[target_line - 1], lines[target_line]);
    const ExportReport report = Verify(JoinLines(lines));
    CHECK_FALSE(report.ok);
    CHECK(report.line == target_line);
    CHECK(report.position == 11);
  }
  SECTION("two events swapped with positions and chain renumbered: the hashes catch it") {
    std::vector<std::string> lines = SplitLines(text);
    std::swap(lines[target_line - 1], lines[target_line]);
    for (size_t line : {target_line, target_line + 1}) {
      auto event = eventstore::ParseExportEvent(lines[line - 1]);
      REQUIRE(event);
      event->position = line - 1;
      lines[line - 1] = eventstore::ExportEventLine(*event);
    }
    const ExportReport report = Verify(JoinLines(lines));
    CHECK_FALSE(report.ok);
    CHECK(report.line == target_line);
    CHECK(report.position == 11);
  }
  SECTION("garbage and a missing header") {
    std::vector<std::string> lines = SplitLines(text);
    lines[4] = "{\"position\": 4";
    ExportReport report = Verify(JoinLines(lines));
    CHECK_FALSE(report.ok);
    CHECK(report.line == 5);
    lines = SplitLines(text);
    lines.erase(lines.begin());
    report = Verify(JoinLines(lines));
    CHECK_FALSE(report.ok);
    CHECK(report.line == 1);
    CHECK_FALSE(Verify("").ok);
  }
}

TEST_CASE("audit: tampering with a data directory is detected and located", "[audit]") {
  Ledger ledger(10);
  const uint64_t head = ledger.store().HeadPosition();
  const Digest digest = ledger.SignedDigest(head, TestKey());
  auto check = eventstore::CheckLogAgainstDigest(ledger.store(), digest);
  REQUIRE(check);
  REQUIRE(check->ok);
  const std::string log = ledger.log_path();
  ledger.Close();
  constexpr uint64_t kTarget = 11;

  SECTION("one byte changed") {
    {
      // One byte of the payload, the record re-encoded around it with its old hash.
      RawLog raw(log);
      RecordedEvent event;
      REQUIRE(eventstore::internal::DecodeRecord(raw.GetRecord(kTarget), kTarget, event));
      event.payload[5] ^= 0x01;
      raw.PutRecord(kTarget, eventstore::internal::EncodeRecord(event));
    }
    ledger.Reopen();
    check = eventstore::CheckLogAgainstDigest(ledger.store(), digest);
    REQUIRE(check);
    CHECK_FALSE(check->ok);
    CHECK(check->position == kTarget);
  }
  SECTION("one event dropped") {
    {
      RawLog raw(log);
      raw.DeleteRecord(kTarget);
    }
    ledger.Reopen();
    check = eventstore::CheckLogAgainstDigest(ledger.store(), digest);
    REQUIRE(check);
    CHECK_FALSE(check->ok);
    CHECK(check->position == kTarget);
  }
  SECTION("two events swapped") {
    {
      RawLog raw(log);
      const std::string a = raw.GetRecord(kTarget);
      const std::string b = raw.GetRecord(kTarget + 1);
      raw.PutRecord(kTarget, b);
      raw.PutRecord(kTarget + 1, a);
    }
    ledger.Reopen();
    check = eventstore::CheckLogAgainstDigest(ledger.store(), digest);
    REQUIRE(check);
    CHECK_FALSE(check->ok);
    CHECK(check->position == kTarget);
  }
  SECTION("an event changed and the chain rewritten consistently after it") {
    {
      RawLog raw(log);
      Hash256 previous{};
      for (uint64_t position = kTarget; position <= head; ++position) {
        RecordedEvent event;
        REQUIRE(eventstore::internal::DecodeRecord(raw.GetRecord(position), position, event));
        if (position == kTarget) {
          event.actor = "mallory";
        } else {
          event.previous_hash = previous;
        }
        event.hash = eventstore::internal::ComputeRecordHash(event);
        previous = event.hash;
        raw.PutRecord(position, eventstore::internal::EncodeRecord(event));
      }
      raw.PutHead(head, previous);
    }
    ledger.Reopen();
    // The chain alone is whole again ...
    auto verified = ledger.store().Verify(1, head);
    REQUIRE(verified);
    CHECK(verified->ok);
    // ... but not the signed history.
    check = eventstore::CheckLogAgainstDigest(ledger.store(), digest);
    REQUIRE(check);
    CHECK_FALSE(check->ok);
    CHECK(check->problem.find("rewritten") != std::string::npos);
  }
}

}  // namespace
}  // namespace ledger::audit_testing
