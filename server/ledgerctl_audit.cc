// ledgerctl's audit subcommands: export, verify --file / --digest, digest, prove, verify-proof
// and replay. What an auditor does with them is in README.md ("Audit: exports, digests and
// proofs"); the formats are in eventstore/FORMAT.md.
//
// verify-proof and verify --file need neither a server nor a data directory: they check what
// they are handed against the hashes and signatures it carries and the digests the auditor kept.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "base/bytes.h"
#include "domain/money.h"
#include "eventstore/audit_export.h"
#include "eventstore/audit_proof.h"
#include "eventstore/digest.h"
#include "eventstore/event_codec.h"
#include "projections/history.h"
#include "projections/merkle_projection.h"
#include "projections/projection_runner.h"
#include "server/ledgerctl.h"

namespace ledger::ctl {
namespace {

namespace json = boost::json;
using eventstore::Digest;
using eventstore::ParsedDigest;
using eventstore::PublicKey;

std::string Hex(std::span<const uint8_t> bytes) { return ToHex(bytes); }

// The arguments of a subcommand: `--name value` pairs, each name at most once, from a list of
// known names. Usage errors name the command.
class Arguments {
 public:
  static std::optional<Arguments> Parse(std::string_view command,
                                        const std::vector<std::string>& args,
                                        std::initializer_list<std::string_view> known, int& code) {
    Arguments parsed;
    for (size_t i = 0; i < args.size(); ++i) {
      bool is_known = false;
      for (std::string_view name : known) is_known = is_known || args[i] == name;
      if (!is_known || i + 1 >= args.size()) {
        code =
            Fail(kExitUsage, fmt::format("{}: {} '{}'", command,
                                         is_known ? "no value for" : "unknown argument", args[i]));
        return std::nullopt;
      }
      if (!parsed.values_.emplace(args[i], args[i + 1]).second) {
        code = Fail(kExitUsage, fmt::format("{}: {} given twice", command, args[i]));
        return std::nullopt;
      }
      ++i;
    }
    return parsed;
  }

  std::optional<std::string> Get(std::string_view name) const {
    auto found = values_.find(std::string(name));
    if (found == values_.end()) return std::nullopt;
    return found->second;
  }
  bool Has(std::string_view name) const { return values_.contains(std::string(name)); }

 private:
  std::map<std::string, std::string> values_;
};

std::optional<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Writes `text` to `path`, or to stdout when `path` is empty. False (after printing why) when
// the file cannot be written.
bool WriteOutput(const std::optional<std::string>& path, const std::string& text) {
  if (!path) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return true;
  }
  std::ofstream file(*path, std::ios::binary | std::ios::trunc);
  file << text;
  file.close();
  if (!file) {
    Fail(kExitData, "cannot write " + *path);
    return false;
  }
  return true;
}

// A digest file: one digest, or JSON Lines of them (ledgerd's periodic file), of which the last
// is used.
Result<ParsedDigest, int> LoadDigest(const std::string& path) {
  auto text = ReadWholeFile(path);
  if (!text) return Unexpected(Fail(kExitData, "cannot read the digest " + path));
  std::string last;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  }
  auto parsed = eventstore::ParseDigestJson(last);
  if (!parsed) return Unexpected(Fail(kExitData, path + ": " + parsed.error()));
  return std::move(*parsed);
}

// --public-key: 64 hex digits, or a file holding them (or GET /v1/audit/public-key's answer).
Result<std::optional<PublicKey>, int> LoadPublicKey(const Arguments& arguments) {
  auto given = arguments.Get("--public-key");
  if (!given) return std::optional<PublicKey>();
  std::optional<PublicKey> key = eventstore::ParsePublicKey(*given);
  if (!key) {
    if (auto text = ReadWholeFile(*given)) key = eventstore::ParsePublicKey(*text);
  }
  if (!key) {
    return Unexpected(
        Fail(kExitUsage, "--public-key takes 64 hex digits or a file holding them, not " + *given));
  }
  return key;
}

// Checks the digest's signature, with the pinned key when there is one, else with the key the
// digest names. Prints and returns kExitNo when it does not verify; `note` says which key.
int CheckSignature(const ParsedDigest& digest, const std::optional<PublicKey>& pinned,
                   std::string& note) {
  const std::optional<PublicKey> key = pinned ? pinned : digest.public_key;
  if (!key) {
    return Fail(kExitUsage, "the digest names no public key: pass --public-key");
  }
  if (!eventstore::VerifyDigestSignature(digest.digest, *key)) {
    return Fail(kExitNo, fmt::format("the digest's signature does not verify with key {}{}",
                                     Hex(eventstore::KeyIdOf(*key)),
                                     pinned ? " (--public-key)" : " (named by the digest)"));
  }
  note = pinned ? fmt::format("signed by the pinned key {}", Hex(eventstore::KeyIdOf(*key)))
                : fmt::format(
                      "signed by key {} (the key the digest names; pin the ledger's key "
                      "with --public-key)",
                      Hex(eventstore::KeyIdOf(*key)));
  return 0;
}

int Pending(const Result<RemoteAnswer, int>& answer) {
  if (!answer) return answer.error();
  if (answer->status / 100 != 2) return RemoteFail(*answer);
  return 0;
}

std::string ExportLineFromJson(const json::value& event, std::string& problem) {
  auto parsed = eventstore::ParseExportEvent(json::serialize(event));
  if (!parsed) {
    problem = parsed.error();
    return {};
  }
  return eventstore::ExportEventLine(*parsed);
}

// The Merkle projection of an offline ledger, caught up to the head.
struct OfflineMerkle {
  Ledger ledger;
  std::unique_ptr<projections::ProjectionRunner> runner;
};

std::optional<OfflineMerkle> OpenMerkle(const Options& options, int& code) {
  auto ledger = OpenLedger(options, true, code);
  if (!ledger) return std::nullopt;
  auto runner = projections::ProjectionRunner::Open(*ledger->store, *ledger->state,
                                                    projections::MerkleProjectionFactory());
  if (!runner) {
    code = DataError(runner.error());
    return std::nullopt;
  }
  ProgressLine progress("merkle");
  auto caught_up =
      (*runner)->CatchUp([&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!caught_up) {
    code = DataError(caught_up.error());
    return std::nullopt;
  }
  return OfflineMerkle{.ledger = std::move(*ledger), .runner = std::move(*runner)};
}

// --- export ---

struct ExportRange {
  uint64_t from = 1;
  uint64_t to = UINT64_MAX;
  std::optional<std::string> out;
};

std::optional<ExportRange> ParseExportArguments(const std::vector<std::string>& args, int& code) {
  auto arguments = Arguments::Parse("export", args, {"--from", "--to", "--out"}, code);
  if (!arguments) return std::nullopt;
  ExportRange range;
  range.out = arguments->Get("--out");
  for (const char* name : {"--from", "--to"}) {
    if (auto text = arguments->Get(name)) {
      auto parsed = ParseDecimal(*text);
      if (!parsed || *parsed == 0) {
        code = Fail(kExitUsage, fmt::format("export: {} needs a position (from 1)", name));
        return std::nullopt;
      }
      (std::string_view(name) == "--from" ? range.from : range.to) = *parsed;
    }
  }
  if (range.to < range.from) {
    code = Fail(kExitUsage, "export: --to before --from");
    return std::nullopt;
  }
  return range;
}

// An export may start one past the head (nothing new since the last one: an empty export, for
// scripts that export from where they stopped); further than that is a mistake (exit 1, as
// digest and prove answer a position past the head).
int CheckExportStart(const ExportRange& range, uint64_t head) {
  if (range.from <= head + 1) return 0;
  return Fail(kExitNo,
              fmt::format("export: --from {} is past the log's head ({})", range.from, head));
}

int ExportSummary(const eventstore::ExportHeader& header, const ExportRange& range) {
  const uint64_t events = header.to_position >= header.from_position
                              ? header.to_position - header.from_position + 1
                              : 0;
  std::fprintf(stderr, "ledgerctl: exported positions %llu..%llu (%llu events) to %s\n",
               static_cast<unsigned long long>(header.from_position),
               static_cast<unsigned long long>(header.to_position),
               static_cast<unsigned long long>(events), range.out ? range.out->c_str() : "stdout");
  return 0;
}

// Where an export goes: stdout, or FILE.partial renamed to FILE once the export is complete, so
// that a failed export leaves no file that looks whole and any earlier FILE as it was. The
// remote export writes a page at a time (memory holds one page whatever the range); the offline
// one streams into stream().
class ExportWriter {
 public:
  explicit ExportWriter(std::optional<std::string> path) : path_(std::move(path)) {}
  ExportWriter(const ExportWriter&) = delete;
  ExportWriter& operator=(const ExportWriter&) = delete;
  ~ExportWriter() {
    if (!file_.is_open()) return;
    file_.close();
    std::error_code ec;
    std::filesystem::remove(Partial(), ec);
  }

  // Where to write: stdout, or FILE.partial (created, or emptied, on the first call). Null after
  // printing why when FILE.partial cannot be created.
  std::ostream* Stream() {
    if (!path_) return &std::cout;
    if (!file_.is_open()) file_.open(Partial(), std::ios::binary | std::ios::trunc);
    if (file_) return &file_;
    Fail(kExitData, "cannot write " + Partial());
    return nullptr;
  }

  // Writes `text` and flushes it; false after printing why when it cannot.
  bool Write(const std::string& text) {
    if (!path_) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      if (std::fflush(stdout) == 0) return true;
      Fail(kExitData, "cannot write the export to stdout");
      return false;
    }
    if (Stream() == nullptr) return false;
    file_ << text;
    file_.flush();
    if (file_) return true;
    Fail(kExitData, "cannot write " + Partial());
    return false;
  }

  // Gives the complete export its name (replacing an earlier FILE); false after printing why
  // when it cannot.
  bool Finish() {
    if (!path_) {
      if (std::cout.flush()) return true;
      Fail(kExitData, "cannot write the export to stdout");
      return false;
    }
    if (Stream() == nullptr) return false;
    file_.close();
    std::error_code ec;
    if (file_) std::filesystem::rename(Partial(), *path_, ec);
    if (!file_ || ec) {
      std::filesystem::remove(Partial(), ec);
      Fail(kExitData, "cannot write " + *path_);
      return false;
    }
    return true;
  }

 private:
  std::string Partial() const { return *path_ + ".partial"; }

  std::optional<std::string> path_;
  std::ofstream file_;
};

int Export(const Options& options, const std::vector<std::string>& args) {
  int code = 0;
  auto range = ParseExportArguments(args, code);
  if (!range) return code;
  auto ledger = OpenLedger(options, false, code);
  if (!ledger) return code;
  if (int failed = CheckExportStart(*range, ledger->store->HeadPosition()); failed != 0) {
    return failed;
  }
  ExportWriter writer(range->out);
  std::ostream* out = writer.Stream();
  if (out == nullptr) return kExitData;
  auto header = eventstore::WriteExport(*ledger->store, range->from, range->to, NowUs(), *out);
  // The writer's destructor removes FILE.partial on the way out.
  if (!header) return DataError(header.error());
  if (!*out) return Fail(kExitData, "cannot write the export");
  if (!writer.Finish()) return kExitData;
  return ExportSummary(*header, *range);
}

int ExportRemote(const Options& options, const std::vector<std::string>& args) {
  int code = 0;
  auto range = ParseExportArguments(args, code);
  if (!range) return code;
  ExportWriter writer(range->out);
  std::optional<eventstore::ExportHeader> header;
  uint64_t next = range->from;
  while (true) {
    auto answer = Remote(options, "GET", fmt::format("/v1/audit/export?from={}&limit=1000", next));
    if (int failed = Pending(answer); failed != 0) return failed;
    const json::object* page = answer->body.if_object();
    const json::value* events = page ? page->if_contains("events") : nullptr;
    const json::value* head = page ? page->if_contains("head_position") : nullptr;
    if (events == nullptr || !events->is_array() || head == nullptr || !head->is_number()) {
      return UnexpectedAnswer("the export page is not {events, head_position}: " +
                              Excerpt(answer->text));
    }
    boost::system::error_code number_ec;
    const auto head_position = head->to_number<uint64_t>(number_ec);
    if (number_ec) {
      return UnexpectedAnswer("the export page's head_position is not a position: " +
                              Excerpt(json::serialize(*head)));
    }
    if (!header) {
      if (int failed = CheckExportStart(*range, head_position); failed != 0) return failed;
      header = eventstore::ExportHeader{
          .from_position = range->from,
          .to_position = std::max(std::min(range->to, head_position), range->from - 1),
          .head_position = head_position,
          .exported_at_us = NowUs()};
      if (!writer.Write(eventstore::ExportHeaderLine(*header) + "\n")) return kExitData;
    }
    std::string lines;
    bool done = events->get_array().empty();
    for (const json::value& event : events->get_array()) {
      if (next > header->to_position) {
        done = true;
        break;
      }
      std::string problem;
      const std::string line = ExportLineFromJson(event, problem);
      if (line.empty())
        return Fail(kExitData, "the server sent an event that is not one: " + problem);
      lines += line + "\n";
      ++next;
    }
    if (!writer.Write(lines)) return kExitData;
    if (done || next > header->to_position) break;
  }
  if (next <= header->to_position) {
    return Fail(kExitData, fmt::format("the server's pages ended at position {} of {}", next - 1,
                                       header->to_position));
  }
  if (!writer.Finish()) return kExitData;
  return ExportSummary(*header, *range);
}

// --- verify --file / --digest ---

// `cannot_check`: why the digest could not be checked against the export (DigestOutsideExport);
// the export was then verified on its own. That is neither ok nor BROKEN: kExitData, as for data
// that cannot answer the question, unless the export is broken anyway.
int PrintExportReport(const Options& options, const std::string& file,
                      const eventstore::ExportReport& report, const std::string& digest_note,
                      const std::optional<std::string>& cannot_check) {
  const bool ok = report.ok && !cannot_check;
  if (options.json) {
    fmt::print(
        "{{\"ok\":{},\"file\":{},\"events\":{},\"from\":{},\"to\":{},\"last_hash\":\"{}\","
        "\"digest_checked\":{},\"root_checked\":{},\"line\":{},\"position\":{},\"problem\":{},"
        "\"cannot_check\":{}}}\n",
        ok, JsonString(file), report.events, report.header.from_position, report.last_position,
        Hex(report.last_hash), report.digest_checked, report.root_checked, report.line,
        report.position, JsonString(report.problem),
        cannot_check ? JsonString(*cannot_check) : "null");
  } else if (!report.ok) {
    fmt::print("BROKEN at line {} (position {}): {}\n", report.line, report.position,
               report.problem);
  } else if (cannot_check) {
    fmt::print(
        "cannot check: {} (the export itself verifies: positions {}..{}, {} events, every hash "
        "and link)\n",
        *cannot_check, report.header.from_position, report.last_position, report.events);
  } else {
    fmt::print(
        "ok: {} holds positions {}..{} ({} events), every hash and link verifies; chain "
        "head {}\n",
        file, report.header.from_position, report.last_position, report.events,
        Hex(report.last_hash));
    if (report.digest_checked) {
      fmt::print("ok: the history up to the digest's position is the signed one ({}{})\n",
                 report.root_checked ? "chain head and Merkle root" : "chain head", digest_note);
    }
  }
  if (!report.ok) return kExitNo;
  return cannot_check ? kExitData : 0;
}

int PrintDigestCheck(const Options& options, const eventstore::DigestCheck& check,
                     const Digest& digest, const std::string& note) {
  if (options.json) {
    fmt::print("{{\"ok\":{},\"digest_position\":{},\"position\":{},\"problem\":{}}}\n", check.ok,
               digest.position, check.position, JsonString(check.problem));
  } else if (check.ok) {
    fmt::print("ok: the ledger's history up to position {} is the one signed at {} ({})\n",
               digest.position, eventstore::FormatRfc3339Us(digest.time_us), note);
  } else if (check.position != 0) {
    fmt::print("BROKEN at position {}: {}\n", check.position, check.problem);
  } else {
    fmt::print("BROKEN: {}\n", check.problem);
  }
  return check.ok ? 0 : kExitNo;
}

int VerifyRemoteDigest(const Options& options, const ParsedDigest& old_digest,
                       const std::optional<PublicKey>& pinned, const std::string& note) {
  const Digest& saved = old_digest.digest;
  // A fresh digest from the ledger, signed by the same key, and a proof that its tree extends
  // the saved one; then the chain hash at the saved position.
  auto fresh_answer = Remote(options, "GET", "/v1/audit/digest");
  if (int failed = Pending(fresh_answer); failed != 0) return failed;
  auto fresh = eventstore::ParseDigestJson(fresh_answer->text);
  if (!fresh) return Fail(kExitData, "the server's digest: " + fresh.error());
  const PublicKey key = pinned ? *pinned : *old_digest.public_key;
  if (!eventstore::VerifyDigestSignature(fresh->digest, key)) {
    return Fail(kExitNo, "the server's fresh digest is not signed by the saved digest's key");
  }
  eventstore::DigestCheck check;
  if (fresh->digest.tree_size < saved.tree_size) {
    check.ok = false;
    check.problem = fmt::format("the ledger's tree has {} events, fewer than the digest's {}",
                                fresh->digest.tree_size, saved.tree_size);
    return PrintDigestCheck(options, check, saved, note);
  }
  if (saved.tree_size > 0) {
    auto answer = Remote(options, "GET",
                         fmt::format("/v1/audit/consistency?from_size={}&to_size={}",
                                     saved.tree_size, fresh->digest.tree_size));
    if (int failed = Pending(answer); failed != 0) return failed;
    auto proof = eventstore::ParseProofJson(answer->text);
    if (!proof || !proof->consistency) {
      return Fail(kExitData, "the server's consistency proof: " +
                                 (proof ? std::string("not one") : proof.error()));
    }
    const eventstore::ConsistencyProof& consistency = *proof->consistency;
    if (consistency.from_size != saved.tree_size || consistency.from_root != saved.root ||
        consistency.to_size != fresh->digest.tree_size ||
        consistency.to_root != fresh->digest.root ||
        !eventstore::CheckConsistencyProof(consistency)) {
      check.ok = false;
      check.problem = fmt::format(
          "the ledger cannot prove that its tree of {} events extends the digest's tree of {}: "
          "the history up to position {} changed",
          fresh->digest.tree_size, saved.tree_size, saved.position);
      return PrintDigestCheck(options, check, saved, note);
    }
    auto event =
        Remote(options, "GET", fmt::format("/v1/audit/export?from={}&limit=1", saved.position));
    if (int failed = Pending(event); failed != 0) return failed;
    const json::object* page = event->body.if_object();
    const json::value* events = page ? page->if_contains("events") : nullptr;
    if (events == nullptr || !events->is_array() || events->get_array().empty()) {
      return Fail(kExitData, "the server did not send the event at the digest's position");
    }
    auto parsed = eventstore::ParseExportEvent(json::serialize(events->get_array().front()));
    if (!parsed || parsed->hash != saved.chain_head) {
      check.ok = false;
      check.position = saved.position;
      check.problem = "the chain hash at the digest's position is not the signed one";
      return PrintDigestCheck(options, check, saved, note);
    }
  }
  return PrintDigestCheck(
      options, check, saved,
      note + fmt::format("; the ledger's tree of {} events extends it", fresh->digest.tree_size));
}

// Why `digest` cannot be checked against the export in `file`, or nullopt when it can: the
// export's header names a range without the digest's position (the digest of the empty log,
// position 0, every export extends). The export may well be intact: it is not broken, it just
// cannot answer the question. A header that cannot be read is VerifyExport's to name.
std::optional<std::string> DigestOutsideExport(const std::string& file, const Digest& digest) {
  if (digest.position == 0) return std::nullopt;
  std::ifstream input(file, std::ios::binary);
  std::string first;
  if (!std::getline(input, first)) return std::nullopt;
  if (!first.empty() && first.back() == '\r') first.pop_back();
  auto header = eventstore::ParseExportHeader(first);
  if (!header) return std::nullopt;
  const uint64_t from = header->from_position;
  const uint64_t to = header->to_position;
  if (digest.position >= from && digest.position <= to) return std::nullopt;
  const std::string covered = to >= from ? fmt::format("covers positions {}..{}", from, to)
                                         : fmt::format("holds no events (from {})", from);
  return fmt::format("the export {}, the digest is of position {}; export {} position {}", covered,
                     digest.position, digest.position > to ? "up to" : "from", digest.position);
}

int AuditVerifyImpl(const Options& options, const std::vector<std::string>& args, bool remote) {
  int code = 0;
  auto arguments = Arguments::Parse("verify", args, {"--file", "--digest", "--public-key"}, code);
  if (!arguments) return code;
  auto pinned = LoadPublicKey(*arguments);
  if (!pinned) return pinned.error();
  // A key pins a digest's signer; with no digest it would be ignored, and "ok" would seem to
  // say it was checked.
  if (*pinned && !arguments->Get("--digest")) {
    return Fail(kExitUsage, "verify: --public-key needs --digest");
  }
  std::optional<ParsedDigest> digest;
  std::string note;
  if (auto path = arguments->Get("--digest")) {
    auto loaded = LoadDigest(*path);
    if (!loaded) return loaded.error();
    digest = std::move(*loaded);
    if (int failed = CheckSignature(*digest, *pinned, note); failed != 0) return failed;
  }
  if (auto file = arguments->Get("--file")) {
    std::error_code ignored;
    // A directory opens as a stream that reads nothing, which would read as an empty export.
    if (std::filesystem::is_directory(*file, ignored)) {
      return Fail(kExitData, "cannot read " + *file + ": it is a directory");
    }
    std::ifstream input(*file, std::ios::binary);
    if (!input) return Fail(kExitData, "cannot read " + *file);
    const std::optional<std::string> cannot_check =
        digest ? DigestOutsideExport(*file, digest->digest) : std::nullopt;
    const auto report = eventstore::VerifyExport(
        input, digest && !cannot_check ? std::optional<Digest>(digest->digest) : std::nullopt);
    return PrintExportReport(options, *file, report, note.empty() ? "" : "; " + note, cannot_check);
  }
  if (!digest) return Fail(kExitUsage, "verify: needs --file or --digest");
  if (remote) return VerifyRemoteDigest(options, *digest, *pinned, note);
  auto ledger = OpenLedger(options, false, code);
  if (!ledger) return code;
  ProgressLine progress("verify");
  auto check = eventstore::CheckLogAgainstDigest(
      *ledger->store, digest->digest,
      [&](uint64_t done, uint64_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!check) return DataError(check.error());
  return PrintDigestCheck(options, *check, digest->digest, note);
}

int VerifyRemote(const Options& options, const std::vector<std::string>& args) {
  if (!IsAuditVerify(args)) {
    return Fail(kExitUsage, "verify with --url checks a saved digest: verify --digest FILE");
  }
  return AuditVerifyImpl(options, args, true);
}

// --- digest ---

int MakeDigest(const Options& options, const std::vector<std::string>& args) {
  int code = 0;
  auto arguments = Arguments::Parse("digest", args, {"--position", "--key", "--out"}, code);
  if (!arguments) return code;
  std::optional<uint64_t> position;
  if (auto text = arguments->Get("--position")) {
    position = ParseDecimal(*text);
    if (!position) return Fail(kExitUsage, "digest: --position needs a position");
  }
  // The ledger first: no signing key is created for a directory that holds none.
  auto merkle = OpenMerkle(options, code);
  if (!merkle) return code;
  const std::string key_path = arguments->Get("--key").value_or(
      options.data_dir + "/" + std::string(eventstore::kDefaultSigningKeyFile));
  // Never a new key: a digest signed by a key nobody published proves nothing (and a mistyped
  // --key would leave one behind). ledgerd creates the ledger's key at its first start.
  auto key = eventstore::SigningKey::Load(key_path);
  if (!key) {
    return Fail(kExitData,
                fmt::format("digest: {} (ledgerd creates the ledger's key in its data directory "
                            "when it first starts)",
                            key.error()));
  }
  const uint64_t head = merkle->ledger.store->HeadPosition();
  if (position && *position > head) {
    return Fail(kExitNo, fmt::format("position {} is past the head {}", *position, head));
  }
  projections::MerkleView view(merkle->runner->View());
  auto digest =
      eventstore::BuildDigest(*merkle->ledger.store, view, position.value_or(head), NowUs());
  if (!digest) return DataError(digest.error());
  key->Sign(*digest);
  return WriteOutput(arguments->Get("--out"),
                     eventstore::DigestToJson(*digest, key->public_key()) + "\n")
             ? 0
             : kExitData;
}

int MakeDigestRemote(const Options& options, const std::vector<std::string>& args) {
  int code = 0;
  auto arguments = Arguments::Parse("digest", args, {"--position", "--out"}, code);
  if (!arguments) return code;
  std::string target = "/v1/audit/digest";
  if (auto position = arguments->Get("--position")) target += "?position=" + UrlEncode(*position);
  auto answer = Remote(options, "GET", target);
  if (int failed = Pending(answer); failed != 0) return failed;
  auto parsed = eventstore::ParseDigestJson(answer->text);
  if (!parsed) return Fail(kExitData, "the server's digest: " + parsed.error());
  // A saved digest names the key that signed it; without one it could not be checked later.
  if (!parsed->public_key) {
    return UnexpectedAnswer("GET " + target + ": the digest names no public key; nothing written");
  }
  return WriteOutput(arguments->Get("--out"),
                     eventstore::DigestToJson(parsed->digest, *parsed->public_key) + "\n")
             ? 0
             : kExitData;
}

// --- prove ---

struct ProveRequest {
  bool inclusion = true;
  uint64_t position = 0;
  std::optional<uint64_t> tree_size;  // Inclusion: the tree; consistency: to_size.
  uint64_t from_size = 0;
  std::optional<ParsedDigest> digest;     // Embedded in the proof.
  std::optional<ParsedDigest> to_digest;  // Consistency: the newer digest.
  std::optional<std::string> out;
};

std::optional<ProveRequest> ParseProve(const std::vector<std::string>& args, int& code) {
  auto arguments = Arguments::Parse(
      "prove", args,
      {"--position", "--tree-size", "--digest", "--from-size", "--to-size", "--to-digest", "--out"},
      code);
  if (!arguments) return std::nullopt;
  ProveRequest request;
  request.out = arguments->Get("--out");
  auto number = [&](std::string_view name) -> std::optional<uint64_t> {
    auto text = arguments->Get(name);
    if (!text) return std::nullopt;
    auto parsed = ParseDecimal(*text);
    if (!parsed) code = Fail(kExitUsage, fmt::format("prove: {} needs a number", name));
    return parsed;
  };
  for (const char* name : {"--digest", "--to-digest"}) {
    if (auto path = arguments->Get(name)) {
      auto loaded = LoadDigest(*path);
      if (!loaded) {
        code = loaded.error();
        return std::nullopt;
      }
      (std::string_view(name) == "--digest" ? request.digest : request.to_digest) =
          std::move(*loaded);
    }
  }
  if (arguments->Has("--position")) {
    // An inclusion proof: the consistency proof's flags would be ignored, so they are refused.
    for (const char* other : {"--from-size", "--to-size", "--to-digest"}) {
      if (arguments->Has(other)) {
        code =
            Fail(kExitUsage,
                 fmt::format("prove: {} is for a consistency proof, not with --position", other));
        return std::nullopt;
      }
    }
    auto position = number("--position");
    if (!position || *position == 0) {
      if (code == 0) code = Fail(kExitUsage, "prove: --position needs a position");
      return std::nullopt;
    }
    request.position = *position;
    request.tree_size = number("--tree-size");
    if (code != 0) return std::nullopt;
    if (request.digest) {
      if (request.tree_size && *request.tree_size != request.digest->digest.tree_size) {
        code = Fail(kExitUsage, "prove: --tree-size differs from the digest's");
        return std::nullopt;
      }
      request.tree_size = request.digest->digest.tree_size;
    }
    return request;
  }
  request.inclusion = false;
  if (arguments->Has("--tree-size")) {
    code = Fail(kExitUsage,
                "prove: --tree-size is for an inclusion proof (--position); a "
                "consistency proof ends at --to-size");
    return std::nullopt;
  }
  auto from = number("--from-size");
  auto to = number("--to-size");
  if (code != 0) return std::nullopt;
  if ((request.digest && from && *from != request.digest->digest.tree_size) ||
      (request.to_digest && to && *to != request.to_digest->digest.tree_size)) {
    code = Fail(kExitUsage, "prove: a size differs from its digest's tree size");
    return std::nullopt;
  }
  if (request.digest) from = request.digest->digest.tree_size;
  if (request.to_digest) to = request.to_digest->digest.tree_size;
  if (!from) {
    code = Fail(kExitUsage,
                "prove: --position P [--tree-size N | --digest FILE], or --from-size M | "
                "--digest OLD, with [--to-size N | --to-digest NEW]");
    return std::nullopt;
  }
  request.from_size = *from;
  request.tree_size = to;
  return request;
}

int WriteProof(const ProveRequest& request, eventstore::InclusionProof* inclusion,
               eventstore::ConsistencyProof* consistency) {
  std::string text;
  if (inclusion != nullptr) {
    if (request.digest) inclusion->digest = request.digest;
    text = eventstore::InclusionProofToJson(*inclusion);
  } else {
    if (request.to_digest) consistency->digest = request.to_digest;
    text = eventstore::ConsistencyProofToJson(*consistency);
  }
  return WriteOutput(request.out, text + "\n") ? 0 : kExitData;
}

int Prove(const Options& options, const std::vector<std::string>& args) {
  int code = 0;
  auto request = ParseProve(args, code);
  if (!request) return code;
  auto merkle = OpenMerkle(options, code);
  if (!merkle) return code;
  projections::MerkleView view(merkle->runner->View());
  const uint64_t head = merkle->ledger.store->HeadPosition();
  if (request->inclusion) {
    auto proof = eventstore::BuildInclusionProof(*merkle->ledger.store, view, request->position,
                                                 request->tree_size.value_or(head));
    if (!proof) return Fail(kExitNo, proof.error().message);
    return WriteProof(*request, &*proof, nullptr);
  }
  auto proof = eventstore::BuildConsistencyProof(view, request->from_size,
                                                 request->tree_size.value_or(head));
  if (!proof) return Fail(kExitNo, proof.error().message);
  return WriteProof(*request, nullptr, &*proof);
}

int ProveRemote(const Options& options, const std::vector<std::string>& args) {
  int code = 0;
  auto request = ParseProve(args, code);
  if (!request) return code;
  std::string target = request->inclusion
                           ? fmt::format("/v1/audit/proof?position={}", request->position)
                           : fmt::format("/v1/audit/consistency?from_size={}", request->from_size);
  if (request->tree_size) {
    target +=
        (request->inclusion ? "&tree_size=" : "&to_size=") + std::to_string(*request->tree_size);
  }
  auto answer = Remote(options, "GET", target);
  if (int failed = Pending(answer); failed != 0) return failed;
  auto parsed = eventstore::ParseProofJson(answer->text);
  if (!parsed) return Fail(kExitData, "the server's proof: " + parsed.error());
  if (request->inclusion != parsed->inclusion.has_value()) {
    return Fail(kExitData, "the server answered a proof of the other kind");
  }
  return WriteProof(*request, parsed->inclusion ? &*parsed->inclusion : nullptr,
                    parsed->consistency ? &*parsed->consistency : nullptr);
}

// --- verify-proof ---

int ProofResult(const Options& options, bool ok, const std::string& kind,
                const std::string& message) {
  if (options.json) {
    fmt::print("{{\"ok\":{},\"proof\":{},\"message\":{}}}\n", ok, JsonString(kind),
               JsonString(message));
  } else {
    fmt::print("{}: {}\n", ok ? "ok" : "FAILED", message);
  }
  return ok ? 0 : kExitNo;
}

int VerifyProof(const Options& options, const std::vector<std::string>& args) {
  int code = 0;
  auto arguments = Arguments::Parse(
      "verify-proof", args, {"--proof", "--digest", "--to-digest", "--public-key", "--event-hash"},
      code);
  if (!arguments) return code;
  auto proof_path = arguments->Get("--proof");
  if (!proof_path) return Fail(kExitUsage, "verify-proof needs --proof FILE");
  auto text = ReadWholeFile(*proof_path);
  if (!text) return Fail(kExitData, "cannot read " + *proof_path);
  auto proof = eventstore::ParseProofJson(*text);
  if (!proof) return Fail(kExitData, *proof_path + ": " + proof.error());
  auto pinned = LoadPublicKey(*arguments);
  if (!pinned) return pinned.error();
  // The digests to anchor the roots in: given on the command line, else the one in the proof.
  std::optional<ParsedDigest> digest, to_digest;
  for (const char* name : {"--digest", "--to-digest"}) {
    if (auto path = arguments->Get(name)) {
      auto loaded = LoadDigest(*path);
      if (!loaded) return loaded.error();
      (std::string_view(name) == "--digest" ? digest : to_digest) = std::move(*loaded);
    }
  }
  // A pinned key checks a digest's signature; with none to check it would be ignored, and "ok"
  // would seem to say it was checked.
  const bool any_digest = digest || to_digest || (proof->inclusion && proof->inclusion->digest) ||
                          (proof->consistency && proof->consistency->digest);
  if (*pinned && !any_digest) {
    return Fail(kExitUsage,
                "verify-proof: --public-key checks a digest, and neither --digest nor the proof "
                "gives one");
  }
  std::vector<std::string> notes;
  auto check_signature = [&](const ParsedDigest& checked) {
    std::string note;
    const int failed = CheckSignature(checked, *pinned, note);
    if (failed == 0) notes.push_back(note);
    return failed;
  };

  if (proof->inclusion) {
    const eventstore::InclusionProof& inclusion = *proof->inclusion;
    if (!digest) digest = inclusion.digest;
    if (auto expected = arguments->Get("--event-hash")) {
      if (*expected != Hex(inclusion.event_hash)) {
        return ProofResult(options, false, "inclusion",
                           fmt::format("the proof is about event hash {}, not {}",
                                       Hex(inclusion.event_hash), *expected));
      }
    }
    if (!eventstore::CheckInclusionProof(inclusion)) {
      return ProofResult(options, false, "inclusion",
                         fmt::format("the path does not lead from the event at position {} to "
                                     "the root {}",
                                     inclusion.position, Hex(inclusion.root)));
    }
    if (digest) {
      if (int failed = check_signature(*digest); failed != 0) return failed;
      if (digest->digest.tree_size != inclusion.tree_size ||
          digest->digest.root != inclusion.root) {
        return ProofResult(options, false, "inclusion",
                           fmt::format("the proof's tree ({} events, root {}) is not the "
                                       "digest's ({} events, root {})",
                                       inclusion.tree_size, Hex(inclusion.root),
                                       digest->digest.tree_size, Hex(digest->digest.root)));
      }
    }
    return ProofResult(
        options, true, "inclusion",
        fmt::format(
            "the event at position {} with hash {} is in the tree of {} events with "
            "root {}{}",
            inclusion.position, Hex(inclusion.event_hash), inclusion.tree_size, Hex(inclusion.root),
            digest ? fmt::format(", the digest of {} ({})",
                                 eventstore::FormatRfc3339Us(digest->digest.time_us), notes.front())
                   : " (no digest given: compare the root with one you trust)"));
  }

  const eventstore::ConsistencyProof& consistency = *proof->consistency;
  if (!to_digest) to_digest = consistency.digest;
  if (!eventstore::CheckConsistencyProof(consistency)) {
    return ProofResult(options, false, "consistency",
                       fmt::format("the path does not show that the tree of {} events (root {}) "
                                   "is a prefix of the tree of {} (root {})",
                                   consistency.from_size, Hex(consistency.from_root),
                                   consistency.to_size, Hex(consistency.to_root)));
  }
  for (const auto& [anchor, size, root, label] :
       {std::tuple{&digest, consistency.from_size, consistency.from_root, "older"},
        std::tuple{&to_digest, consistency.to_size, consistency.to_root, "newer"}}) {
    if (!*anchor) continue;
    if (int failed = check_signature(**anchor); failed != 0) return failed;
    if ((*anchor)->digest.tree_size != size || (*anchor)->digest.root != root) {
      return ProofResult(options, false, "consistency",
                         fmt::format("the proof's {} tree ({} events, root {}) is not the "
                                     "digest's ({} events, root {})",
                                     label, size, Hex(root), (*anchor)->digest.tree_size,
                                     Hex((*anchor)->digest.root)));
    }
  }
  return ProofResult(
      options, true, "consistency",
      fmt::format("the tree of {} events (root {}) is a prefix of the tree of {} events (root "
                  "{}){}",
                  consistency.from_size, Hex(consistency.from_root), consistency.to_size,
                  Hex(consistency.to_root),
                  notes.empty() ? " (no digests given: compare the roots with ones you trust)"
                                : "; " + fmt::format("{}", fmt::join(notes, "; "))));
}

// --- replay ---

std::string OrderJson(const domain::OrderState& state, uint64_t position, uint64_t version) {
  json::object object;
  object["order_number"] = state.order_number;
  object["status"] = state.placed() ? domain::OrderStatusName(state.status) : "Not placed";
  object["position"] = position;
  object["stream_version"] = version;
  const std::string currency = state.placement ? state.placement->currency : "";
  object["currency"] = currency;
  object["total_minor"] = state.amounts.total_minor;
  object["captured_minor"] = state.amounts.captured_minor;
  object["refunded_minor"] = state.amounts.refunded_minor;
  object["captures"] = state.captures.size();
  if (state.placement) object["user"] = state.placement->user.username;
  json::array lines;
  for (const domain::LineState& line : state.lines) {
    lines.push_back(json::object{{"line_id", line.line.line_id},
                                 {"product_type", line.line.product_type},
                                 {"status", domain::LineStatusName(line.status)},
                                 {"attempts", line.attempts},
                                 {"last_error", line.last_error_message}});
  }
  object["lines"] = std::move(lines);
  return json::serialize(object);
}

int Replay(const Options& options, const std::vector<std::string>& args) {
  int code = 0;
  auto arguments = Arguments::Parse("replay", args, {"--to", "--out"}, code);
  if (!arguments) return code;
  auto to_text = arguments->Get("--to");
  if (!to_text) return Fail(kExitUsage, "replay needs --to POSITION|TIME");
  auto ledger = OpenLedger(options, false, code);
  if (!ledger) return code;
  uint64_t to = 0;
  // As status --as-of: a position the log has not reached, or a time to come, has no fixed answer
  // yet; folding up to the head instead would answer a question that was not asked.
  if (auto position = ParseDecimal(*to_text)) {
    if (const uint64_t head = ledger->store->HeadPosition(); *position > head) {
      return Fail(kExitUsage,
                  fmt::format("replay: --to {} is past the log's head ({})", *position, head));
    }
    to = *position;
  } else if (auto time = ParseRfc3339(*to_text)) {
    if (*time > NowUs()) {
      return Fail(kExitUsage, fmt::format("replay: --to {} is in the future", *to_text));
    }
    auto found = projections::PositionAtTime(*ledger->store, *time);
    if (!found) return DataError(found.error());
    to = *found;
  } else {
    return Fail(kExitUsage, "replay: --to takes a position or an RFC 3339 time");
  }
  struct Folded {
    domain::OrderState state;
    uint64_t position = 0;
    uint64_t version = 0;
  };
  std::map<std::string, Folded> orders;
  std::optional<eventstore::Error> failure;
  ProgressLine progress("replay");
  uint64_t done = 0;
  auto scanned = ledger->store->ScanAll(1, to, [&](const eventstore::RecordedEvent& record) {
    if (++done % 4096 == 0) progress.Update(done, to);
    if (!record.stream.starts_with(domain::kOrderStreamPrefix)) return true;
    auto event = eventstore::DecodeEvent(record);
    if (!event) {
      failure = event.error();
      return false;
    }
    Folded& folded = orders[record.stream.substr(domain::kOrderStreamPrefix.size())];
    auto next = domain::TryEvolve(std::move(folded.state), *event);
    if (!next) {
      failure = eventstore::Error{.code = eventstore::ErrorCode::kCorruption,
                                  .message = next.error().problem,
                                  .current_version = std::nullopt,
                                  .position = record.position};
      return false;
    }
    folded.state = std::move(*next);
    folded.position = record.position;
    folded.version = record.version;
    return true;
  });
  progress.Update(done, to);
  progress.Finish();
  if (!scanned) return DataError(scanned.error());
  if (failure) return DataError(*failure);
  auto out = arguments->Get("--out");
  std::string text;
  if (options.json || out) {
    for (const auto& [number, folded] : orders) {
      text += OrderJson(folded.state, folded.position, folded.version) + "\n";
    }
  } else {
    text += fmt::format("{} orders as of position {}\n", orders.size(), to);
    text += fmt::format("{:<22} {:<20} {:>10} {:>16} {:>6}\n", "ORDER", "STATUS", "POSITION",
                        "TOTAL", "LINES");
    for (const auto& [number, folded] : orders) {
      const domain::OrderState& state = folded.state;
      text += fmt::format(
          "{:<22} {:<20} {:>10} {:>16} {:>6}\n", number,
          state.placed() ? domain::OrderStatusName(state.status) : "Not placed", folded.position,
          state.placement ? FormatAmount(state.amounts.total_minor, state.placement->currency)
                          : "-",
          state.lines.size());
    }
  }
  if (!WriteOutput(out, text)) return kExitData;
  if (out) {
    std::fprintf(stderr, "ledgerctl: %zu orders as of position %llu written to %s\n", orders.size(),
                 static_cast<unsigned long long>(to), out->c_str());
  }
  return 0;
}

}  // namespace

bool IsAuditVerify(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--file" || arg == "--digest") return true;
  }
  return false;
}

int AuditVerify(const Options& options, const std::vector<std::string>& args) {
  return AuditVerifyImpl(options, args, false);
}

std::vector<Command> AuditCommands() {
  return {
      {"export", "export [--from P] [--to P] [--out FILE]",
       "JSON Lines of a range of the log, every event with its hashes", &Export, &ExportRemote},
      {"verify", "verify --file EXPORT | --digest D",
       "check an export (no server, no data) or the ledger against a signed digest "
       "[--digest D] [--public-key K]",
       nullptr, &VerifyRemote},  // Offline: the chain walk of ledgerctl_offline.cc hands over.
      {"digest", "digest [--position P] [--out FILE]",
       "a signed digest of the log (offline: [--key FILE], an existing key; default the "
       "ledger's, DIR/audit/signing.key)",
       &MakeDigest, &MakeDigestRemote},
      {"prove", "prove --position P | --from-size M",
       "an inclusion proof [--tree-size N | --digest D] or a consistency proof [--to-size N | "
       "--to-digest D] [--out FILE]",
       &Prove, &ProveRemote},
      {"verify-proof", "verify-proof --proof FILE",
       "check a proof with no server [--digest D] [--to-digest D] [--public-key K] "
       "[--event-hash H]",
       &VerifyProof, nullptr},
      {"replay", "replay --to P|TIME [--out FILE]",
       "every order's state at a position or time (--json: JSON Lines); not past the log's "
       "head or in the future (exit 2)",
       &Replay, nullptr},
  };
}

}  // namespace ledger::ctl
