#include "domain/events.h"

#include <type_traits>
#include <utility>

namespace ledger::domain {
namespace {

// Joins the parts of a key with a separator that order numbers, line ids and references cannot
// make ambiguous: each part is prefixed by its length.
class KeyBuilder {
 public:
  KeyBuilder& Add(std::string_view part) {
    key_ += std::to_string(part.size());
    key_ += ':';
    key_ += part;
    return *this;
  }
  KeyBuilder& Add(int64_t number) { return Add(std::to_string(number)); }
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

}  // namespace

std::string_view FailureKindName(FailureKind kind) {
  switch (kind) {
    case FailureKind::kUnknown:
      return "unknown";
    case FailureKind::kConfiguration:
      return "configuration";
    case FailureKind::kNetwork:
      return "network";
    case FailureKind::kTimeout:
      return "timeout";
    case FailureKind::kServer:
      return "server";
  }
  return "invalid";
}

bool IsValidFailureKind(FailureKind kind) { return FailureKindName(kind) != "invalid"; }

std::vector<std::string_view> EventTypeNames() {
  return []<size_t... kIndex>(std::index_sequence<kIndex...>) {
    return std::vector<std::string_view>{std::variant_alternative_t<kIndex, Event>::kTypeName...};
  }
  (std::make_index_sequence<std::variant_size_v<Event>>());
}

std::string_view EventTypeName(const Event& event) {
  return std::visit([](const auto& e) { return std::decay_t<decltype(e)>::kTypeName; }, event);
}

const std::string& EventOrderNumber(const Event& event) {
  return std::visit([](const auto& e) -> const std::string& { return e.order_number; }, event);
}

std::string OrderStreamName(std::string_view order_number) {
  std::string stream(kOrderStreamPrefix);
  stream += order_number;
  return stream;
}

EventId DeterministicEventId(const Event& event) {
  KeyBuilder key;
  key.Add(EventOrderNumber(event));
  std::visit(
      [&key](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, PaymentCaptured>) {
          key.Add(e.processor).Add(e.reference);
        } else if constexpr (std::is_same_v<T, LineFulfilled> || std::is_same_v<T, LineRevoked>) {
          key.Add(e.line_id);
        } else if constexpr (std::is_same_v<T, FulfillmentFailed>) {
          key.Add(e.line_id).Add(static_cast<int64_t>(e.attempt));
        } else if constexpr (std::is_same_v<T, FulfillmentRetryRequested>) {
          key.Add(e.requested_by).Add(e.requested_at_us);
          for (const std::string& line_id : e.line_ids) key.Add(line_id);
        } else if constexpr (std::is_same_v<T, RevocationFailed>) {
          key.Add(e.line_id).Add(e.refund_reference).Add(e.failed_at_us);
        } else if constexpr (std::is_same_v<T, RevocationRequested>) {
          key.Add(e.line_id).Add(e.refund_reference).Add(e.requested_at_us);
        }
        // OrderCreated and PostCheckout: the order number alone.
      },
      event);
  return EventId::FromName(EventTypeName(event), key.key());
}

}  // namespace ledger::domain
