#include "domain/commands.h"

#include <algorithm>
#include <type_traits>

#include "domain/limits.h"
#include "domain/money.h"

namespace ledger::domain {
namespace {

// The original adds this to the basket id so that order numbers look alike.
constexpr int64_t kOrderNumberOffset = 100'000;

bool IsAsciiAlphanumeric(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

Unexpected<Rejection> InvalidOrderNumber(std::string detail) {
  return Unexpected(Rejection{RejectionCode::kInvalidOrderNumber, std::move(detail)});
}

}  // namespace

std::string_view CommandTypeName(const Command& command) {
  return std::visit(
      [](const auto& c) -> std::string_view {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, CapturePayment>) return "CapturePayment";
        if constexpr (std::is_same_v<T, PlaceOrder>) return "PlaceOrder";
        if constexpr (std::is_same_v<T, RecordLineFulfilled>) return "RecordLineFulfilled";
        if constexpr (std::is_same_v<T, RecordFulfillmentFailed>) return "RecordFulfillmentFailed";
        if constexpr (std::is_same_v<T, RequestFulfillmentRetry>) return "RequestFulfillmentRetry";
        if constexpr (std::is_same_v<T, RecordLineRevoked>) return "RecordLineRevoked";
        if constexpr (std::is_same_v<T, RecordRevocationFailed>) return "RecordRevocationFailed";
        if constexpr (std::is_same_v<T, RequestRevocation>) return "RequestRevocation";
      },
      command);
}

bool IsValidOrderNumber(std::string_view order_number) {
  if (order_number.empty() || order_number.size() > kOrderNumberBytesMax) return false;
  return std::all_of(order_number.begin(), order_number.end(), [](char c) {
    return IsAsciiAlphanumeric(c) || c == '-' || c == '_' || c == '.';
  });
}

Result<std::string, Rejection> GenerateOrderNumber(std::string_view partner, int64_t basket_id) {
  if (partner.empty() || partner.size() > kPartnerBytesMax ||
      !std::all_of(partner.begin(), partner.end(), IsAsciiAlphanumeric)) {
    return InvalidOrderNumber("no order number given and the partner short code '" +
                              std::string(partner) + "' cannot make one");
  }
  const std::optional<int64_t> number = CheckedAdd(basket_id, kOrderNumberOffset);
  if (basket_id <= 0 || !number) {
    return InvalidOrderNumber("no order number given and basket id " + std::to_string(basket_id) +
                              " cannot make one");
  }
  std::string order_number;
  for (char c : partner) {
    order_number += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  }
  order_number += '-';
  order_number += std::to_string(*number);
  return order_number;
}

std::optional<Rejection> CheckOrderNumber(std::string_view order_number) {
  if (IsValidOrderNumber(order_number)) return std::nullopt;
  return Rejection{RejectionCode::kInvalidOrderNumber,
                   "'" + std::string(order_number.substr(0, kOrderNumberBytesMax)) +
                       "' is not 1 to " + std::to_string(kOrderNumberBytesMax) +
                       " characters of [A-Za-z0-9._-]"};
}

Result<std::string, Rejection> ResolveOrderNumber(const PlaceOrder& command) {
  if (!command.order_number) return GenerateOrderNumber(command.partner, command.basket_id);
  if (std::optional<Rejection> rejection = CheckOrderNumber(*command.order_number)) {
    return Unexpected(std::move(*rejection));
  }
  return *command.order_number;
}

Result<std::string, Rejection> ResolveOrderNumber(const Command& command) {
  return std::visit(
      [](const auto& c) -> Result<std::string, Rejection> {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, PlaceOrder>) {
          return ResolveOrderNumber(c);
        } else {
          if (std::optional<Rejection> rejection = CheckOrderNumber(c.order_number)) {
            return Unexpected(std::move(*rejection));
          }
          return c.order_number;
        }
      },
      command);
}

}  // namespace ledger::domain
