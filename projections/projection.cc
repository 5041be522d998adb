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

}  // namespace ledger::projections
