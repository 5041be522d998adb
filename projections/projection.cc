#include "projections/projection.h"

#include <fmt/format.h>

namespace ledger::projections {

Error CorruptionError(std::string message, uint64_t position) {
  return Error{.code = eventstore::ErrorCode::kCorruption,
               .message = std::move(message),
               .current_version = std::nullopt,
               .position = position};
}

Error CannotApplyError(std::string_view projection, const RecordedEvent& record,
                       std::string_view order_number, std::string_view problem) {
  return CorruptionError(
      fmt::format("{} at position {} of order {} cannot apply to the {} "
                  "projection: {}",
                  record.event_type, record.position, order_number, projection, problem),
      record.position);
}

StoreResult<void> CheckInOrderStream(std::string_view projection, const RecordedEvent& record,
                                     std::string_view order_number) {
  const std::string_view stream = record.stream;
  if (stream.starts_with(domain::kOrderStreamPrefix) &&
      stream.substr(domain::kOrderStreamPrefix.size()) == order_number) {
    return {};
  }
  return Unexpected(CannotApplyError(projection, record, order_number,
                                     fmt::format("it is in stream {}", record.stream)));
}

}  // namespace ledger::projections
