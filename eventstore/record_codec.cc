#include "eventstore/record_codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <kj/exception.h>

#include <cstring>
#include <vector>

#include "base/bytes.h"
#include "eventstore/capnp_message.h"
#include "eventstore/schema/envelope.capnp.h"

namespace ledger::eventstore::internal {

namespace {

capnp::Data::Reader AsData(std::string_view bytes) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size());
}
capnp::Data::Reader AsData(const EventId& id) { return AsData(id.AsBytes()); }
capnp::Data::Reader AsData(const Hash256& hash) {
  return capnp::Data::Reader(hash.data(), hash.size());
}
capnp::Text::Reader AsText(std::string_view text) {
  return capnp::Text::Reader(text.data(), text.size());
}

Error Corrupt(uint64_t position, std::string_view what) {
  return Error{.code = ErrorCode::kCorruption,
               .message = fmt::format("record at position {} is corrupt: {}", position, what),
               .current_version = std::nullopt,
               .position = position};
}

bool ReadId(capnp::Data::Reader data, EventId& out) {
  if (data.size() != EventId::kSize) return false;
  std::array<uint8_t, EventId::kSize> bytes{};
  std::memcpy(bytes.data(), data.begin(), EventId::kSize);
  out = EventId(bytes);
  return true;
}

bool ReadHash(capnp::Data::Reader data, Hash256& out) {
  if (data.size() != out.size()) return false;
  std::memcpy(out.data(), data.begin(), out.size());
  return true;
}

void AppendSized(std::string& out, std::string_view bytes) {
  AppendBigEndian32(out, static_cast<uint32_t>(bytes.size()));
  out.append(bytes);
}

}  // namespace

std::string EncodeRecord(const RecordedEvent& record) {
  LEDGER_ASSERT(record.position >= 1, "a record is never at position 0");
  capnp::MallocMessageBuilder message(
      static_cast<unsigned>(64 + (record.payload.size() + record.stream.size()) / 8));
  auto envelope = message.initRoot<schema::Envelope>();
  envelope.setEventId(AsData(record.event_id));
  envelope.setStream(AsText(record.stream));
  envelope.setVersion(record.version);
  envelope.setPosition(record.position);
  envelope.setEventType(AsText(record.event_type));
  envelope.setRecordedAtUs(record.recorded_at_us);
  envelope.setCorrelationId(AsData(record.correlation_id));
  envelope.setCausationId(AsData(record.causation_id));
  envelope.setActor(AsText(record.actor));
  envelope.setSchemaVersion(record.schema_version);
  envelope.setPayload(AsData(record.payload));
  envelope.setPreviousHash(AsData(record.previous_hash));
  envelope.setHash(AsData(record.hash));

  auto segments = message.getSegmentsForOutput();
  std::string bytes;
  bytes.resize(capnp::computeSerializedSizeInWords(message) * sizeof(capnp::word));
  kj::ArrayOutputStream stream(
      kj::arrayPtr(reinterpret_cast<kj::byte*>(bytes.data()), bytes.size()));
  capnp::writeMessage(stream, segments);
  LEDGER_ASSERT(stream.getArray().size() == bytes.size(), "capnp size mismatch");
  return bytes;
}

Result<void, Error> DecodeRecord(std::string_view bytes, uint64_t expected_position,
                                 RecordedEvent& record) {
  auto decoded = DecodeRecordIf(bytes, expected_position, {}, record);
  if (!decoded) return Unexpected(std::move(decoded).error());
  return {};
}

Result<bool, Error> DecodeRecordIf(std::string_view bytes, uint64_t expected_position,
                                   const std::function<bool(std::string_view stream)>& accept,
                                   RecordedEvent& record) {
  bool accepted = true;
  auto problem = internal::ReadMessage(
      bytes, [&](capnp::MessageReader& message) -> std::optional<std::string> {
        auto envelope = message.getRoot<schema::Envelope>();
        if (envelope.getPosition() != expected_position) {
          return fmt::format("it says it is at position {}", envelope.getPosition());
        }
        record.position = envelope.getPosition();
        auto stream = envelope.getStream();
        record.stream.assign(stream.cStr(), stream.size());
        if (accept && !accept(record.stream)) {
          accepted = false;
          return std::nullopt;
        }
        record.version = envelope.getVersion();
        auto event_type = envelope.getEventType();
        record.event_type.assign(event_type.cStr(), event_type.size());
        record.recorded_at_us = envelope.getRecordedAtUs();
        auto actor = envelope.getActor();
        record.actor.assign(actor.cStr(), actor.size());
        record.schema_version = envelope.getSchemaVersion();
        auto payload = envelope.getPayload();
        record.payload.assign(reinterpret_cast<const char*>(payload.begin()), payload.size());
        if (!ReadId(envelope.getEventId(), record.event_id) || record.event_id.IsNil()) {
          return "event id is not 16 non-zero bytes";
        }
        if (!ReadId(envelope.getCorrelationId(), record.correlation_id) ||
            !ReadId(envelope.getCausationId(), record.causation_id)) {
          return "correlation or causation id is not 16 bytes";
        }
        if (!ReadHash(envelope.getPreviousHash(), record.previous_hash) ||
            !ReadHash(envelope.getHash(), record.hash)) {
          return "a hash is not 32 bytes";
        }
        if (record.stream.empty() || record.event_type.empty()) {
          return "stream or event type is empty";
        }
        return std::nullopt;
      });
  if (problem) return Unexpected(Corrupt(expected_position, *problem));
  return accepted;
}

Hash256 ComputeRecordHash(const RecordedEvent& record) {
  // The canonical bytes, documented in FORMAT.md. Built in a per-thread buffer and hashed in
  // one call: cheaper than many small updates.
  static constexpr std::string_view kDomainTag("orderledger.event.v1", 20);
  thread_local std::string canonical;
  canonical.clear();
  canonical.append(kDomainTag);
  canonical.append(reinterpret_cast<const char*>(record.previous_hash.data()),
                   record.previous_hash.size());
  AppendBigEndian64(canonical, record.position);
  AppendBigEndian64(canonical, record.version);
  canonical.append(record.event_id.AsBytes());
  AppendBigEndian64(canonical, static_cast<uint64_t>(record.recorded_at_us));
  AppendBigEndian32(canonical, record.schema_version);
  canonical.append(record.correlation_id.AsBytes());
  canonical.append(record.causation_id.AsBytes());
  AppendSized(canonical, record.stream);
  AppendSized(canonical, record.event_type);
  AppendSized(canonical, record.actor);
  AppendSized(canonical, record.payload);
  return Sha256Digest(canonical);
}

}  // namespace ledger::eventstore::internal
