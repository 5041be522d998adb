// Verifiable exports of the log: JSON Lines that carry every field the chain hash covers, so that
// an auditor can recompute each event's hash and the chain with no server and no data directory
// (FORMAT.md, "Exports").
//
//   line 1     {"export":"orderledger.export.v1","from":F,"to":T,"head":H,"exported_at":...}
//   line 2..   one event per line, positions F..T in order: position, stream, version, type,
//              event_id, recorded_at (RFC 3339) and recorded_at_us, correlation_id,
//              causation_id, actor, schema_version, payload (base64), previous_hash, hash
//
// ExportVerifier checks such a file line by line and names the first bad line: a line that is
// not an event, a position out of order (an event dropped, added or moved), a hash that does not
// match the event's content, a previous_hash that does not match the line before. Given a
// digest (eventstore/digest.h), it also checks that the export's chain hash at the digest's
// position is the signed one and, when the export starts at position 1, the Merkle root.
//
// Thread safety: free functions are safe from any thread; an ExportVerifier belongs to one.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "eventstore/digest.h"
#include "eventstore/event_store.h"
#include "eventstore/merkle.h"

namespace ledger::eventstore {

inline constexpr std::string_view kExportFormat = "orderledger.export.v1";

struct ExportHeader {
  uint64_t from_position = 1;
  uint64_t to_position = 0;    // The last position exported; from - 1 when none.
  uint64_t head_position = 0;  // The log's head when the export was taken.
  int64_t exported_at_us = 0;
};

// The header line and event lines, without a newline.
std::string ExportHeaderLine(const ExportHeader& header);
std::string ExportEventLine(const RecordedEvent& event);

Result<ExportHeader, std::string> ParseExportHeader(std::string_view line);
// The event a line describes, with its hashes as the line states them (not checked); an error
// text naming the field that is missing or malformed.
Result<RecordedEvent, std::string> ParseExportEvent(std::string_view line);

// Base64 (RFC 4648, with padding).
std::string EncodeBase64(std::string_view bytes);
std::optional<std::string> DecodeBase64(std::string_view text);

struct ExportReport {
  bool ok = true;
  // When !ok: the first bad line (from 1), the position it holds or should hold (0 when
  // unknown), and what is wrong.
  uint64_t line = 0;
  uint64_t position = 0;
  std::string problem;

  ExportHeader header;
  uint64_t events = 0;
  uint64_t last_position = 0;
  Hash256 last_hash{};
  // Whether the digest was checked: its chain head always, its Merkle root when the export
  // starts at position 1 (root_checked).
  bool digest_checked = false;
  bool root_checked = false;
};

class ExportVerifier {
 public:
  // With `digest`, the export must cover its position. The digest's signature is the caller's
  // to check (VerifyDigestSignature).
  explicit ExportVerifier(std::optional<Digest> digest = std::nullopt);

  // Checks the next line (lines number from 1). Returns false once a problem was found; later
  // lines are then ignored.
  bool Feed(std::string_view line);
  // Checks what only the end can tell (every position of the header present, the digest
  // covered) and returns the report.
  ExportReport Finish();

 private:
  bool Bad(uint64_t position, std::string problem);
  bool FeedEvent(std::string_view line);

  std::optional<Digest> digest_;
  ExportReport report_;
  uint64_t lines_ = 0;
  bool has_header_ = false;
  MerkleAccumulator tree_;
};

// Writes the export of positions [from, min(to, head)] of `store` to `out`: the header line,
// then one line per event, each ending in a newline. The records are checked against their own
// hashes on the way (a damaged record is kCorruption naming it). Returns the header written.
StoreResult<ExportHeader> WriteExport(EventStore& store, uint64_t from, uint64_t to,
                                      int64_t exported_at_us, std::ostream& out);

// Reads `input` to the end through an ExportVerifier.
ExportReport VerifyExport(std::istream& input, std::optional<Digest> digest = std::nullopt);

}  // namespace ledger::eventstore
