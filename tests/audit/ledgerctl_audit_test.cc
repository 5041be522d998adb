// ledgerctl's audit commands, run as the built program on a data directory filled by the test:
// export -> verify --file -> tamper -> exit code 1 naming the line; digests offline and checked
// against the export and the data directory; inclusion and consistency proofs made and checked
// with verify-proof (and a damaged one refused); replay to a position and a time.
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "eventstore/audit_export.h"
#include "eventstore/digest.h"
#include "tests/audit/audit_test_support.h"
#include "tests/support/sample_orders.h"

namespace ledger::audit_testing {
namespace {

struct Run {
  int exit_code = -1;
  std::string out;
};

// Runs ledgerctl with `arguments` (a shell-quoted string), stderr to a file of the directory.
Run Ledgerctl(const TempDir& dir, const std::string& arguments) {
  const std::string command =
      fmt::format("'{}' {} 2>'{}'", LEDGER_LEDGERCTL, arguments, dir.Child("stderr"));
  Run run;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t read = 0;
  while ((read = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.out.append(buffer, read);
  const int status = ::pclose(pipe);
  REQUIRE(WIFEXITED(status));
  run.exit_code = WEXITSTATUS(status);
  std::ifstream errors(dir.Child("stderr"));
  std::stringstream text;
  text << errors.rdbuf();
  UNSCOPED_INFO("ledgerctl " << arguments << " -> " << run.exit_code << "\nstdout: " << run.out
                             << "\nstderr: " << text.str());
  return run;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::trunc);
  file << text;
}

// A data directory with orders, closed again so that ledgerctl can open it.
class DataDir {
 public:
  DataDir() : dir_("ledgerctl-audit") {
    std::filesystem::create_directories(dir_.Child("data"));
    auto store = MustOpen(dir_.Child("data") + "/log");
    FillOrders(*store, 12);
    head_ = store->HeadPosition();
    // The ledger's signing key, as ledgerd's first start makes it.
    REQUIRE(eventstore::SigningKey::LoadOrCreate(dir_.Child("data") + "/" +
                                                 std::string(eventstore::kDefaultSigningKeyFile)));
  }
  const TempDir& dir() const { return dir_; }
  std::string File(std::string_view name) const { return dir_.Child(name); }
  uint64_t head() const { return head_; }
  Run Ctl(const std::string& arguments) const {
    return Ledgerctl(dir_, fmt::format("--data-dir '{}' {}", dir_.Child("data"), arguments));
  }
  Run Offline(const std::string& arguments) const { return Ledgerctl(dir_, arguments); }

 private:
  TempDir dir_;
  uint64_t head_ = 0;
};

TEST_CASE("ledgerctl: export, verify --file, tamper, and the line named", "[ledgerctl]") {
  DataDir data;
  const std::string exported = data.File("export.jsonl");
  REQUIRE(data.Ctl(fmt::format("export --out '{}'", exported)).exit_code == 0);
  CHECK(SplitLines(ReadFile(exported)).size() == data.head() + 1);
  Run run = data.Offline(fmt::format("verify --file '{}'", exported));
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("ok:") == 0);

  // Two events swapped: lines 8 and 9 (positions 7 and 8).
  std::vector<std::string> lines = SplitLines(ReadFile(exported));
  std::swap(lines[7], lines[8]);
  const std::string swapped = data.File("swapped.jsonl");
  WriteFile(swapped, JoinLines(lines));
  run = data.Offline(fmt::format("verify --file '{}'", swapped));
  CHECK(run.exit_code == 1);
  CHECK(run.out.find("BROKEN at line 8 (position 7)") != std::string::npos);

  // One byte of a payload changed (as JSON: the base64 text), in line 21.
  lines = SplitLines(ReadFile(exported));
  const size_t at = lines[20].find("\"payload\":\"") + 12;
  lines[20][at] = lines[20][at] == 'A' ? 'B' : 'A';
  WriteFile(swapped, JoinLines(lines));
  run = data.Offline(fmt::format("--json verify --file '{}'", swapped));
  CHECK(run.exit_code == 1);
  CHECK(run.out.find("\"line\":21,\"position\":20") != std::string::npos);

  // One event dropped.
  lines = SplitLines(ReadFile(exported));
  lines.erase(lines.begin() + 30);
  WriteFile(swapped, JoinLines(lines));
  run = data.Offline(fmt::format("verify --file '{}'", swapped));
  CHECK(run.exit_code == 1);
  CHECK(run.out.find("BROKEN at line 31 (position 30)") != std::string::npos);

  // A part of the log.
  REQUIRE(data.Ctl(fmt::format("export --from 10 --to 20 --out '{}'", exported)).exit_code == 0);
  CHECK(SplitLines(ReadFile(exported)).size() == 12);
  CHECK(data.Offline(fmt::format("verify --file '{}'", exported)).exit_code == 0);
  // No such file: the data could not be read.
  CHECK(data.Offline(fmt::format("verify --file '{}'", data.File("none"))).exit_code == 3);
  CHECK(data.Ctl("export --from x").exit_code == 2);
}

TEST_CASE("ledgerctl: what an audit command cannot do is said, not answered as a result",
          "[ledgerctl]") {
  DataDir data;
  const std::string exported = data.File("export.jsonl");
  // One past the head: nothing new since the last export, an empty export. Further: a mistake.
  Run run = data.Ctl(fmt::format("export --from {} --out '{}'", data.head() + 1, exported));
  CHECK(run.exit_code == 0);
  CHECK(data.Offline(fmt::format("verify --file '{}'", exported)).exit_code == 0);
  run = data.Ctl(fmt::format("export --from {} --out '{}'", data.head() + 2, exported));
  CHECK(run.exit_code == 1);
  CHECK(ReadFile(data.File("stderr")).find(fmt::format("past the log's head ({})", data.head())) !=
        std::string::npos);

  // A directory is no export (it opens as an empty stream), and tampering is not the answer.
  run = data.Offline(fmt::format("verify --file '{}'", data.File("data")));
  CHECK(run.exit_code == 3);
  CHECK(ReadFile(data.File("stderr")).find("it is a directory") != std::string::npos);

  // A public key with nothing signed to check it against would be ignored: refused.
  REQUIRE(data.Ctl(fmt::format("export --out '{}'", exported)).exit_code == 0);
  run = data.Offline(
      fmt::format("verify --file '{}' --public-key {}", exported, std::string(64, 'a')));
  CHECK(run.exit_code == 2);
  CHECK(ReadFile(data.File("stderr")).find("--public-key needs --digest") != std::string::npos);
}

TEST_CASE("ledgerctl: digests against an export and the data directory", "[ledgerctl]") {
  DataDir data;
  const std::string digest = data.File("digest.json");
  const std::string exported = data.File("export.jsonl");
  const std::string key_path =
      data.File("data") + "/" + std::string(eventstore::kDefaultSigningKeyFile);

  // ledgerctl never makes a signing key: not the ledger's (ledgerd makes it at its first
  // start), nor one at a mistyped --key, which would sign with a key nobody published.
  REQUIRE(std::filesystem::remove(key_path));
  Run run = data.Ctl(fmt::format("digest --out '{}'", digest));
  CHECK(run.exit_code == 3);
  CHECK_FALSE(std::filesystem::exists(key_path));
  run = data.Ctl(fmt::format("digest --key '{}' --out '{}'", data.File("typo.key"), digest));
  CHECK(run.exit_code == 3);
  CHECK_FALSE(std::filesystem::exists(data.File("typo.key")));
  CHECK(ReadFile(data.File("stderr")).find("there is no signing key at") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(digest));

  REQUIRE(eventstore::SigningKey::LoadOrCreate(key_path));  // As ledgerd's first start does.
  REQUIRE(data.Ctl(fmt::format("digest --out '{}'", digest)).exit_code == 0);
  REQUIRE(data.Ctl(fmt::format("export --out '{}'", exported)).exit_code == 0);
  auto parsed = eventstore::ParseDigestJson(ReadFile(digest));
  REQUIRE(parsed);
  CHECK(parsed->digest.position == data.head());
  REQUIRE(parsed->public_key);
  const std::string key_hex = ToHex(std::span<const uint8_t>(*parsed->public_key));

  run = data.Offline(
      fmt::format("verify --file '{}' --digest '{}' --public-key {}", exported, digest, key_hex));
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("the signed one (chain head and Merkle root") != std::string::npos);
  CHECK(data.Ctl(fmt::format("verify --digest '{}'", digest)).exit_code == 0);

  // Another key pinned: the digest is refused.
  const std::string other_key(64, 'a');
  run = data.Offline(
      fmt::format("verify --file '{}' --digest '{}' --public-key {}", exported, digest, other_key));
  CHECK(run.exit_code == 1);

  // A digest with a changed field (the time, both its forms): the signature fails.
  const std::string text = ReadFile(digest);
  eventstore::Digest later = parsed->digest;
  later.time_us += 365LL * 24 * 3600 * 1'000'000;
  WriteFile(data.File("changed.json"), eventstore::DigestToJson(later, *parsed->public_key));
  CHECK(data.Offline(fmt::format("verify --file '{}' --digest '{}'", exported,
                                 data.File("changed.json")))
            .exit_code == 1);
  // Only "time" changed (time_us is what is signed), or a key added: such a digest verified, with
  // and without an export. It is refused as a digest ledgerctl cannot read, naming the field.
  std::string forged_time = text;
  const size_t time_at = forged_time.find("\"time\":\"") + 8;
  forged_time.replace(time_at, 4, "2030");
  std::string extended = text;
  extended.insert(extended.rfind('}'), ",\"extra\":\"x\"");
  for (const auto& [forged, named] :
       {std::pair{forged_time, "\"time\" 2030"}, std::pair{extended, "unknown field \"extra\""}}) {
    WriteFile(data.File("forged.json"), forged);
    run = data.Offline(
        fmt::format("verify --file '{}' --digest '{}'", exported, data.File("forged.json")));
    CHECK(run.exit_code == 3);
    CHECK(ReadFile(data.File("stderr")).find(named) != std::string::npos);
    CHECK(data.Ctl(fmt::format("verify --digest '{}'", data.File("forged.json"))).exit_code == 3);
  }

  // The ledger grows: the old digest still verifies against the longer log and export.
  {
    auto store = MustOpen(data.File("data") + "/log");
    FillOrders(*store, 3, 77);
  }
  REQUIRE(data.Ctl(fmt::format("export --out '{}'", exported)).exit_code == 0);
  CHECK(data.Offline(fmt::format("verify --file '{}' --digest '{}'", exported, digest)).exit_code ==
        0);
  CHECK(data.Ctl(fmt::format("verify --digest '{}'", digest)).exit_code == 0);
}

TEST_CASE("ledgerctl: an export without the digest's position cannot answer, it is not BROKEN",
          "[ledgerctl]") {
  DataDir data;
  const std::string digest = data.File("digest.json");
  const std::string early = data.File("early.json");
  const std::string exported = data.File("export.jsonl");
  REQUIRE(data.Ctl(fmt::format("digest --out '{}'", digest)).exit_code == 0);
  REQUIRE(data.Ctl(fmt::format("digest --position 5 --out '{}'", early)).exit_code == 0);
  const uint64_t half = data.head() / 2;

  // Intact, but it ends before the digest's position: exit 3, with what to export instead.
  REQUIRE(data.Ctl(fmt::format("export --to {} --out '{}'", half, exported)).exit_code == 0);
  Run run = data.Offline(fmt::format("verify --file '{}' --digest '{}'", exported, digest));
  CHECK(run.exit_code == 3);
  CHECK(run.out.find(fmt::format("cannot check: the export covers positions 1..{}, the digest is "
                                 "of position {}; export up to position {}",
                                 half, data.head(), data.head())) == 0);
  CHECK(run.out.find("BROKEN") == std::string::npos);
  run = data.Offline(fmt::format("--json verify --file '{}' --digest '{}'", exported, digest));
  CHECK(run.exit_code == 3);
  CHECK(run.out.find("\"ok\":false") != std::string::npos);
  CHECK(run.out.find("\"cannot_check\":\"the export covers positions 1..") != std::string::npos);
  // It starts after the digest's position.
  REQUIRE(data.Ctl(fmt::format("export --from 10 --out '{}'", exported)).exit_code == 0);
  run = data.Offline(fmt::format("verify --file '{}' --digest '{}'", exported, early));
  CHECK(run.exit_code == 3);
  CHECK(run.out.find("; export from position 5") != std::string::npos);

  // Broken as well: that is the answer (exit 1), whatever the digest.
  REQUIRE(data.Ctl(fmt::format("export --to {} --out '{}'", half, exported)).exit_code == 0);
  std::vector<std::string> lines = SplitLines(ReadFile(exported));
  std::swap(lines[3], lines[4]);
  WriteFile(exported, JoinLines(lines));
  run = data.Offline(fmt::format("verify --file '{}' --digest '{}'", exported, digest));
  CHECK(run.exit_code == 1);
  CHECK(run.out.find("BROKEN at line 4 (position 3)") == 0);
}

TEST_CASE("ledgerctl: prove and verify-proof, inclusion and consistency", "[ledgerctl]") {
  DataDir data;
  const std::string old_digest = data.File("old.json");
  const std::string new_digest = data.File("new.json");
  REQUIRE(data.Ctl(fmt::format("digest --position 17 --out '{}'", old_digest)).exit_code == 0);
  REQUIRE(data.Ctl(fmt::format("digest --out '{}'", new_digest)).exit_code == 0);

  const std::string proof = data.File("proof.json");
  REQUIRE(data.Ctl(fmt::format("prove --position 9 --digest '{}' --out '{}'", new_digest, proof))
              .exit_code == 0);
  Run run = data.Offline(fmt::format("verify-proof --proof '{}'", proof));
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("is in the tree of") != std::string::npos);
  // Against the older digest the tree is another one.
  CHECK(data.Offline(fmt::format("verify-proof --proof '{}' --digest '{}'", proof, old_digest))
            .exit_code == 1);
  // One character of the path changed.
  std::string text = ReadFile(proof);
  const size_t at = text.find("\"path\":[\"") + 9;
  text[at] = text[at] == '0' ? '1' : '0';
  WriteFile(data.File("bad.json"), text);
  CHECK(data.Offline(fmt::format("verify-proof --proof '{}'", data.File("bad.json"))).exit_code ==
        1);

  const std::string consistency = data.File("consistency.json");
  REQUIRE(data.Ctl(fmt::format("prove --digest '{}' --to-digest '{}' --out '{}'", old_digest,
                               new_digest, consistency))
              .exit_code == 0);
  run = data.Offline(fmt::format("verify-proof --proof '{}' --digest '{}' --to-digest '{}'",
                                 consistency, old_digest, new_digest));
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("is a prefix of") != std::string::npos);
  // The digests the other way round do not fit.
  CHECK(data.Offline(fmt::format("verify-proof --proof '{}' --digest '{}' --to-digest '{}'",
                                 consistency, new_digest, old_digest))
            .exit_code == 1);
  CHECK(data.Ctl("prove --position 0").exit_code == 2);
  // A proof with no digest, checked "with" a key: nothing signed to check the key against.
  const std::string bare = data.File("bare.json");
  REQUIRE(data.Ctl(fmt::format("prove --position 9 --out '{}'", bare)).exit_code == 0);
  CHECK(data.Offline(fmt::format("verify-proof --proof '{}'", bare)).exit_code == 0);
  CHECK(data.Offline(fmt::format("verify-proof --proof '{}' --public-key {}", bare,
                                 std::string(64, 'a')))
            .exit_code == 2);
  // Flags of the other kind of proof are refused, not ignored.
  CHECK(data.Ctl("prove --position 5 --from-size 3").exit_code == 2);
  CHECK(data.Ctl("prove --from-size 3 --tree-size 9").exit_code == 2);
  CHECK(data.Ctl(fmt::format("prove --digest '{}' --from-size 3", old_digest)).exit_code == 2);
}

TEST_CASE("ledgerctl: replay folds every order up to a position", "[ledgerctl]") {
  DataDir data;
  Run run = data.Ctl(fmt::format("--json replay --to {}", data.head()));
  REQUIRE(run.exit_code == 0);
  const std::vector<std::string> all = SplitLines(run.out);
  CHECK(all.size() == 13);  // 12 orders and one orphan payment.
  run = data.Ctl("--json replay --to 3");
  REQUIRE(run.exit_code == 0);
  CHECK(SplitLines(run.out).size() < all.size());
  CHECK(run.out.find("\"position\":") != std::string::npos);
  run = data.Ctl("replay --to 2000-01-01T00:00:00Z");
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("0 orders as of position 0") == 0);
  CHECK(data.Ctl("replay --to yesterday").exit_code == 2);
  // As status --as-of: past the head, or in the future, has no fixed answer yet (not the head's).
  for (const char* json : {"", "--json "}) {
    run = data.Ctl(fmt::format("{}replay --to {}", json, data.head() + 1));
    CHECK(run.exit_code == 2);
    CHECK(run.out.empty());
    CHECK(ReadFile(data.File("stderr"))
              .find(fmt::format("--to {} is past the log's head ({})", data.head() + 1,
                                data.head())) != std::string::npos);
    run = data.Ctl(fmt::format("{}replay --to 2999-01-01T00:00:00Z", json));
    CHECK(run.exit_code == 2);
    CHECK(run.out.empty());
    CHECK(ReadFile(data.File("stderr")).find("--to 2999-01-01T00:00:00Z is in the future") !=
          std::string::npos);
  }
}

TEST_CASE("ledgerctl status shows a revocation that is asked for and not carried out yet",
          "[ledgerctl]") {
  TempDir dir("ledgerctl-revoking");
  std::filesystem::create_directories(dir.Child("data"));
  {
    auto store = MustOpen(dir.Child("data") + "/log");
    eventstore::OrderCommandService service(*store);
    const std::vector<domain::Line> lines = {{.line_id = "1",
                                              .product_type = "Donation",
                                              .sku = "D",
                                              .title = "Donation",
                                              .quantity = 1,
                                              .unit_price_minor = 500,
                                              .attributes = {}}};
    const int64_t t0 = 1'795'000'000'000'000;
    const std::vector<domain::Command> commands = {
        testing::SampleCapture("EDX-77", 500, "USD", t0),
        testing::SamplePlaceOrder("EDX-77", lines, "USD", t0),
        domain::RecordLineFulfilled{.order_number = "EDX-77",
                                    .line_id = "1",
                                    .module = "donation",
                                    .external_reference = "",
                                    .codes = {},
                                    .fulfilled_at_us = t0},
        domain::RequestRevocation{.order_number = "EDX-77",
                                  .line_id = "1",
                                  .refund_reference = "r-77",
                                  .requested_by = "ops",
                                  .requested_at_us = t0}};
    for (const domain::Command& command : commands) REQUIRE(service.Handle(command, {}));
  }
  Run run = Ledgerctl(dir, fmt::format("--data-dir '{}' status EDX-77", dir.Child("data")));
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("Complete, revoking") != std::string::npos);
  run = Ledgerctl(dir, fmt::format("--data-dir '{}' --json status EDX-77", dir.Child("data")));
  CHECK(run.exit_code == 0);
  CHECK(run.out.find("\"revocation_requested\":true") != std::string::npos);
}

}  // namespace
}  // namespace ledger::audit_testing
