#include "eventstore/event_store.h"

#include <fmt/format.h>

namespace ledger::eventstore {

Error InvalidArgumentError(std::string message) {
  return Error{.code = ErrorCode::kInvalidArgument,
               .message = std::move(message),
               .current_version = std::nullopt,
               .position = 0};
}

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kWrongExpectedVersion:
      return "wrong_expected_version";
    case ErrorCode::kEventIdReused:
      return "event_id_reused";
    case ErrorCode::kPartialDuplicate:
      return "partial_duplicate";
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kCorruption:
      return "corruption";
    case ErrorCode::kIoError:
      return "io_error";
    case ErrorCode::kClosed:
      return "closed";
  }
  return "unknown";
}

std::string Error::ToString() const {
  return fmt::format("{} ({}): {}", ErrorCodeName(code), static_cast<int>(code), message);
}

bool ExpectedVersion::IsSatisfiedBy(std::optional<uint64_t> current) const {
  switch (kind_) {
    case Kind::kAny:
      return true;
    case Kind::kNoStream:
      return !current.has_value();
    case Kind::kStreamExists:
      return current.has_value();
    case Kind::kExact:
      return current.has_value() && *current == version_;
  }
  return false;
}

std::string ExpectedVersion::ToString() const {
  switch (kind_) {
    case Kind::kAny:
      return "any";
    case Kind::kNoStream:
      return "no stream";
    case Kind::kStreamExists:
      return "stream exists";
    case Kind::kExact:
      return fmt::format("version {}", version_);
  }
  return "?";
}

bool RecordedEvent::HasSameContent(std::string_view other_stream, const NewEvent& other) const {
  return stream == other_stream && event_id == other.event_id && event_type == other.event_type &&
         payload == other.payload && correlation_id == other.correlation_id &&
         causation_id == other.causation_id && actor == other.actor &&
         schema_version == other.schema_version;
}

}  // namespace ledger::eventstore
