#include "eventstore/audit_export.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <ostream>

#include "base/bytes.h"
#include "eventstore/audit_json.h"
#include "eventstore/record_codec.h"

namespace ledger::eventstore {
namespace {

namespace json = boost::json;
using namespace audit_json;

// Text fields go into the export as JSON strings when they are UTF-8 (they always are for the
// ledger's own events), else as "<name>_base64", so that the exact bytes the hash covers survive.
void PutText(json::object& object, std::string_view name, std::string_view text) {
  if (IsValidUtf8(text)) {
    object[name] = text;
  } else {
    object[std::string(name) + "_base64"] = EncodeBase64(text);
  }
}

Result<std::string, std::string> GetText(const json::object& object, std::string_view name) {
  const std::string encoded_name = std::string(name) + "_base64";
  if (object.contains(encoded_name) && object.contains(name)) {
    // Only one form is written; with both, one of them would be shown and not verified.
    return Unexpected(fmt::format("both \"{}\" and \"{}\"", name, encoded_name));
  }
  if (object.contains(encoded_name)) {
    auto encoded = Text(object, encoded_name);
    if (!encoded) return Unexpected(std::move(encoded).error());
    auto decoded = DecodeBase64(*encoded);
    if (!decoded) return Unexpected("\"" + encoded_name + "\" is not base64");
    return *decoded;
  }
  auto text = Text(object, name);
  if (!text) return Unexpected(std::move(text).error());
  return std::string(*text);
}

Result<EventId, std::string> GetEventId(const json::object& object, std::string_view name) {
  auto text = Text(object, name);
  if (!text) return Unexpected(std::move(text).error());
  auto id = EventId::Parse(*text);
  if (!id) return Unexpected("\"" + std::string(name) + "\" is not a UUID");
  return *id;
}

}  // namespace

std::string EncodeBase64(std::string_view bytes) {
  const size_t size = sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string text(size, '\0');
  sodium_bin2base64(text.data(), size, reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  text.resize(size - 1);  // The terminating NUL.
  return text;
}

std::optional<std::string> DecodeBase64(std::string_view text) {
  std::string bytes(text.size() / 4 * 3 + 3, '\0');
  size_t size = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(bytes.data()), bytes.size(), text.data(),
                        text.size(), nullptr, &size, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  bytes.resize(size);
  return bytes;
}

std::string ExportHeaderLine(const ExportHeader& header) {
  json::object object;
  object["export"] = kExportFormat;
  object["from"] = header.from_position;
  object["to"] = header.to_position;
  object["head"] = header.head_position;
  object["exported_at"] = FormatRfc3339Us(header.exported_at_us);
  object["exported_at_us"] = header.exported_at_us;
  return json::serialize(object);
}

std::string ExportEventLine(const RecordedEvent& event) {
  json::object object;
  object["position"] = event.position;
  PutText(object, "stream", event.stream);
  object["version"] = event.version;
  PutText(object, "type", event.event_type);
  object["event_id"] = event.event_id.ToString();
  object["recorded_at"] = FormatRfc3339Us(event.recorded_at_us);
  object["recorded_at_us"] = event.recorded_at_us;
  object["correlation_id"] = event.correlation_id.ToString();
  object["causation_id"] = event.causation_id.ToString();
  PutText(object, "actor", event.actor);
  object["schema_version"] = event.schema_version;
  object["payload"] = EncodeBase64(event.payload);
  object["previous_hash"] = ToHex(event.previous_hash);
  object["hash"] = ToHex(event.hash);
  return json::serialize(object);
}

Result<ExportHeader, std::string> ParseExportHeader(std::string_view line) {
  auto parsed = ParseObject(line);
  if (!parsed) return Unexpected(std::move(parsed).error());
  auto format = Text(*parsed, "export");
  if (!format || *format != kExportFormat) {
    return Unexpected(fmt::format("not an export header (\"export\":\"{}\")", kExportFormat));
  }
  auto from = Unsigned(*parsed, "from");
  auto to = Unsigned(*parsed, "to");
  auto head = Unsigned(*parsed, "head");
  auto at = Signed(*parsed, "exported_at_us");
  if (!from) return Unexpected(std::move(from).error());
  if (!to) return Unexpected(std::move(to).error());
  if (!head) return Unexpected(std::move(head).error());
  if (!at) return Unexpected(std::move(at).error());
  if (*from == 0 || *to + 1 < *from) {
    return Unexpected(
        fmt::format("the header's range {}..{} is not a range of positions", *from, *to));
  }
  return ExportHeader{
      .from_position = *from, .to_position = *to, .head_position = *head, .exported_at_us = *at};
}

Result<RecordedEvent, std::string> ParseExportEvent(std::string_view line) {
  auto parsed = ParseObject(line);
  if (!parsed) return Unexpected(std::move(parsed).error());
  const json::object& object = *parsed;
  // Every field of a line is covered by the event's hash, or is a view of one that is: a key
  // that is neither would be read by people and checked by nothing.
  static constexpr std::string_view kKeys[] = {
      "position",      "stream",   "stream_base64", "version",        "type",
      "type_base64",   "event_id", "recorded_at",   "recorded_at_us", "correlation_id",
      "causation_id",  "actor",    "actor_base64",  "schema_version", "payload",
      "previous_hash", "hash"};
  for (const auto& field : object) {
    if (std::find(std::begin(kKeys), std::end(kKeys), field.key()) == std::end(kKeys)) {
      return Unexpected(fmt::format("unknown field \"{}\"", std::string_view(field.key())));
    }
  }
  RecordedEvent event;
  auto position = Unsigned(object, "position");
  if (!position) return Unexpected(std::move(position).error());
  event.position = *position;
  auto stream = GetText(object, "stream");
  if (!stream) return Unexpected(std::move(stream).error());
  event.stream = std::move(*stream);
  auto version = Unsigned(object, "version");
  if (!version) return Unexpected(std::move(version).error());
  event.version = *version;
  auto type = GetText(object, "type");
  if (!type) return Unexpected(std::move(type).error());
  event.event_type = std::move(*type);
  auto event_id = GetEventId(object, "event_id");
  if (!event_id) return Unexpected(std::move(event_id).error());
  event.event_id = *event_id;
  auto recorded_at = Signed(object, "recorded_at_us");
  if (!recorded_at) return Unexpected(std::move(recorded_at).error());
  event.recorded_at_us = *recorded_at;
  auto recorded_at_text = Text(object, "recorded_at");
  if (!recorded_at_text) return Unexpected(std::move(recorded_at_text).error());
  if (*recorded_at_text != FormatRfc3339Us(event.recorded_at_us)) {
    return Unexpected(fmt::format("\"recorded_at\" {} is not \"recorded_at_us\" {}",
                                  *recorded_at_text, event.recorded_at_us));
  }
  auto correlation = GetEventId(object, "correlation_id");
  if (!correlation) return Unexpected(std::move(correlation).error());
  event.correlation_id = *correlation;
  auto causation = GetEventId(object, "causation_id");
  if (!causation) return Unexpected(std::move(causation).error());
  event.causation_id = *causation;
  auto actor = GetText(object, "actor");
  if (!actor) return Unexpected(std::move(actor).error());
  event.actor = std::move(*actor);
  auto schema_version = Unsigned(object, "schema_version");
  if (!schema_version) return Unexpected(std::move(schema_version).error());
  if (*schema_version > UINT32_MAX) return Unexpected(std::string("\"schema_version\" too large"));
  event.schema_version = static_cast<uint32_t>(*schema_version);
  auto payload_text = Text(object, "payload");
  if (!payload_text) return Unexpected(std::move(payload_text).error());
  auto payload = DecodeBase64(*payload_text);
  if (!payload) return Unexpected(std::string("\"payload\" is not base64"));
  event.payload = std::move(*payload);
  auto previous_hash = HexBytes<32>(object, "previous_hash");
  if (!previous_hash) return Unexpected(std::move(previous_hash).error());
  event.previous_hash = *previous_hash;
  auto hash = HexBytes<32>(object, "hash");
  if (!hash) return Unexpected(std::move(hash).error());
  event.hash = *hash;
  return event;
}

ExportVerifier::ExportVerifier(std::optional<Digest> digest) : digest_(std::move(digest)) {}

bool ExportVerifier::Bad(uint64_t position, std::string problem) {
  report_.ok = false;
  report_.line = lines_;
  report_.position = position;
  report_.problem = std::move(problem);
  return false;
}

bool ExportVerifier::Feed(std::string_view line) {
  if (!report_.ok) return false;
  ++lines_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!has_header_) {
    auto header = ParseExportHeader(line);
    if (!header) return Bad(0, "the first line is not the export's header: " + header.error());
    report_.header = *header;
    has_header_ = true;
    report_.last_position = header->from_position - 1;
    if (digest_ && digest_->position != 0 &&
        (digest_->position < header->from_position || digest_->position > header->to_position)) {
      return Bad(0, fmt::format("the export covers positions {}..{}, not the digest's position {}",
                                header->from_position, header->to_position, digest_->position));
    }
    return true;
  }
  return FeedEvent(line);
}

bool ExportVerifier::FeedEvent(std::string_view line) {
  const uint64_t expected = report_.last_position + 1;
  auto parsed = ParseExportEvent(line);
  if (!parsed) return Bad(expected, "not an event: " + parsed.error());
  const RecordedEvent& event = *parsed;
  if (event.position != expected) {
    return Bad(expected,
               fmt::format("holds position {} where position {} belongs: an event was "
                           "{}",
                           event.position, expected,
                           event.position > expected ? "dropped or moved" : "repeated or moved"));
  }
  if (event.position > report_.header.to_position) {
    return Bad(event.position, fmt::format("position {} is past the header's last position {}",
                                           event.position, report_.header.to_position));
  }
  if (internal::ComputeRecordHash(event) != event.hash) {
    return Bad(event.position, "the hash does not match the event's content (recomputed " +
                                   ToHex(internal::ComputeRecordHash(event)) + ", the line says " +
                                   ToHex(event.hash) + ")");
  }
  const bool first = report_.events == 0;
  if (first && event.position == 1 && event.previous_hash != Hash256{}) {
    return Bad(event.position, "position 1 names a predecessor hash; it must be all zero");
  }
  if (!first && event.previous_hash != report_.last_hash) {
    return Bad(event.position,
               fmt::format("previous_hash {} is not the hash of the line before ({}): the chain "
                           "is broken here",
                           ToHex(event.previous_hash), ToHex(report_.last_hash)));
  }
  if (report_.header.from_position == 1) tree_.Append(MerkleLeafHash(event.position, event.hash));
  if (digest_ && digest_->position == event.position) {
    if (event.hash != digest_->chain_head) {
      return Bad(event.position,
                 fmt::format("the chain hash at the digest's position {} is {}, the signed "
                             "digest says {}: this history is not the one signed",
                             event.position, ToHex(event.hash), ToHex(digest_->chain_head)));
    }
    if (report_.header.from_position == 1) {
      if (tree_.Root() != digest_->root) {
        return Bad(event.position,
                   fmt::format("the Merkle root over 1..{} is {}, the signed digest says {}",
                               event.position, ToHex(tree_.Root()), ToHex(digest_->root)));
      }
      report_.root_checked = true;
    }
    report_.digest_checked = true;
  }
  ++report_.events;
  report_.last_position = event.position;
  report_.last_hash = event.hash;
  return true;
}

ExportReport ExportVerifier::Finish() {
  if (!report_.ok) return report_;
  ++lines_;  // A problem found here is "after the last line".
  if (!has_header_) {
    Bad(0, "the file is empty: no export header");
    report_.line = 1;
    return report_;
  }
  if (report_.last_position != report_.header.to_position) {
    Bad(report_.last_position + 1,
        fmt::format("the export ends at position {}, its header says {}: events are missing at "
                    "the end",
                    report_.last_position, report_.header.to_position));
    return report_;
  }
  if (digest_ && digest_->position == 0) {
    // The digest of the empty log: every history extends it.
    report_.digest_checked = digest_->root == MerkleEmptyRoot() && digest_->chain_head == Hash256{};
    if (!report_.digest_checked) Bad(0, "the digest of position 0 has a root or head of its own");
  }
  return report_;
}

StoreResult<ExportHeader> WriteExport(EventStore& store, uint64_t from, uint64_t to,
                                      int64_t exported_at_us, std::ostream& out) {
  if (from == 0) from = 1;
  ExportHeader header{.from_position = from,
                      .to_position = std::max(std::min(to, store.HeadPosition()), from - 1),
                      .head_position = store.HeadPosition(),
                      .exported_at_us = exported_at_us};
  out << ExportHeaderLine(header) << '\n';
  if (header.to_position < from) return header;
  auto scanned = store.ScanAll(from, header.to_position, [&out](const RecordedEvent& event) {
    out << ExportEventLine(event) << '\n';
    return static_cast<bool>(out);
  });
  if (!scanned) return Unexpected(std::move(scanned).error());
  if (!out) {
    return Unexpected(Error{.code = ErrorCode::kIoError,
                            .message = "the export could not be written",
                            .current_version = std::nullopt,
                            .position = 0});
  }
  if (*scanned != header.to_position - from + 1) {
    return Unexpected(Error{.code = ErrorCode::kCorruption,
                            .message = fmt::format("the log ended at {} events of {}", *scanned,
                                                   header.to_position - from + 1),
                            .current_version = std::nullopt,
                            .position = from + *scanned});
  }
  return header;
}

ExportReport VerifyExport(std::istream& input, std::optional<Digest> digest) {
  ExportVerifier verifier(std::move(digest));
  std::string line;
  while (std::getline(input, line)) {
    if (!verifier.Feed(line)) break;
  }
  return verifier.Finish();
}

}  // namespace ledger::eventstore
