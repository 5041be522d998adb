// The bytes of one log record: its Cap'n Proto encoding (what RocksDB stores) and its canonical
// form (what the hash chain covers). Internal to the event store; see FORMAT.md.
//
// Thread safety: free functions, safe from any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "eventstore/event_store.h"

namespace ledger::eventstore::internal {

// Encodes `record` as an unpacked Cap'n Proto Envelope message (a flat array of 8-byte words).
std::string EncodeRecord(const RecordedEvent& record);

// Decodes `bytes` into `record`, reusing its buffers. Any malformed input (truncated, garbage,
// wrong field sizes, a position other than `expected_position`) yields kCorruption naming
// `expected_position`; never an exception or a crash.
Result<void, Error> DecodeRecord(std::string_view bytes, uint64_t expected_position,
                                 RecordedEvent& record);
// The same, for a record of a stream that `accept` accepts: false, with `record` holding only
// its position and stream, for one it turns away (the rest of it is not read).
Result<bool, Error> DecodeRecordIf(std::string_view bytes, uint64_t expected_position,
                                   const std::function<bool(std::string_view stream)>& accept,
                                   RecordedEvent& record);

// SHA-256 over the record's previous hash and canonical bytes: the hash it must carry.
Hash256 ComputeRecordHash(const RecordedEvent& record);

// Whether the record's own hash matches its content (a flipped byte anywhere shows here).
inline bool HasValidHash(const RecordedEvent& record) {
  return ComputeRecordHash(record) == record.hash;
}

}  // namespace ledger::eventstore::internal
