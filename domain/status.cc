#include "domain/status.h"

#include <algorithm>
#include <array>

namespace ledger::domain {
namespace {

constexpr std::array kOrderStatuses = {OrderStatus::kOpen, OrderStatus::kComplete,
                                       OrderStatus::kFulfillmentError, OrderStatus::kRefunded};

constexpr std::array kLineStatuses = {
    LineStatus::kOpen,
    LineStatus::kComplete,
    LineStatus::kFulfillmentConfigurationError,
    LineStatus::kFulfillmentNetworkError,
    LineStatus::kFulfillmentTimeoutError,
    LineStatus::kFulfillmentServerError,
    LineStatus::kRevoked,
    LineStatus::kRevocationError,
};

}  // namespace

std::string_view OrderStatusName(OrderStatus status) {
  switch (status) {
    case OrderStatus::kOpen:
      return "Open";
    case OrderStatus::kComplete:
      return "Complete";
    case OrderStatus::kFulfillmentError:
      return "Fulfillment Error";
    case OrderStatus::kRefunded:
      return "Refunded";
  }
  return "Invalid";
}

std::string_view LineStatusName(LineStatus status) {
  switch (status) {
    case LineStatus::kOpen:
      return "Open";
    case LineStatus::kComplete:
      return "Complete";
    case LineStatus::kFulfillmentConfigurationError:
      return "Fulfillment Configuration Error";
    case LineStatus::kFulfillmentNetworkError:
      return "Fulfillment Network Error";
    case LineStatus::kFulfillmentTimeoutError:
      return "Fulfillment Timeout Error";
    case LineStatus::kFulfillmentServerError:
      return "Fulfillment Server Error";
    case LineStatus::kRevoked:
      return "Revoked";
    case LineStatus::kRevocationError:
      return "Revocation Error";
  }
  return "Invalid";
}

std::span<const OrderStatus> AllOrderStatuses() { return kOrderStatuses; }
std::span<const LineStatus> AllLineStatuses() { return kLineStatuses; }

bool IsFulfillmentError(LineStatus status) {
  switch (status) {
    case LineStatus::kFulfillmentConfigurationError:
    case LineStatus::kFulfillmentNetworkError:
    case LineStatus::kFulfillmentTimeoutError:
    case LineStatus::kFulfillmentServerError:
      return true;
    case LineStatus::kOpen:
    case LineStatus::kComplete:
    case LineStatus::kRevoked:
    case LineStatus::kRevocationError:
      return false;
  }
  return false;
}

bool IsFulfillable(LineStatus status) {
  return status == LineStatus::kOpen || IsFulfillmentError(status);
}

bool IsRevocable(LineStatus status) {
  return status == LineStatus::kComplete || status == LineStatus::kRevocationError;
}

LineStatus LineStatusForFailure(FailureKind kind) {
  switch (kind) {
    case FailureKind::kConfiguration:
      return LineStatus::kFulfillmentConfigurationError;
    case FailureKind::kNetwork:
      return LineStatus::kFulfillmentNetworkError;
    case FailureKind::kTimeout:
      return LineStatus::kFulfillmentTimeoutError;
    case FailureKind::kServer:
    case FailureKind::kUnknown:
      return LineStatus::kFulfillmentServerError;
  }
  return LineStatus::kFulfillmentServerError;
}

bool IsLineTransitionAllowed(LineStatus from, LineStatus to) {
  if (from == to) return true;
  switch (from) {
    case LineStatus::kOpen:
    case LineStatus::kFulfillmentConfigurationError:
    case LineStatus::kFulfillmentNetworkError:
    case LineStatus::kFulfillmentTimeoutError:
    case LineStatus::kFulfillmentServerError:
      return to == LineStatus::kComplete || IsFulfillmentError(to);
    case LineStatus::kComplete:
      return to == LineStatus::kRevoked || to == LineStatus::kRevocationError;
    case LineStatus::kRevocationError:
      return to == LineStatus::kRevoked;
    case LineStatus::kRevoked:
      return false;
  }
  return false;
}

bool IsOrderTransitionAllowed(OrderStatus from, OrderStatus to) {
  if (from == to) return true;
  switch (from) {
    case OrderStatus::kOpen:
      return to == OrderStatus::kComplete || to == OrderStatus::kFulfillmentError;
    case OrderStatus::kFulfillmentError:
      return to == OrderStatus::kComplete || to == OrderStatus::kOpen;
    case OrderStatus::kComplete:
      return to == OrderStatus::kRefunded;
    case OrderStatus::kRefunded:
      return false;
  }
  return false;
}

OrderStatus DeriveOrderStatus(std::span<const LineStatus> line_statuses) {
  if (line_statuses.empty()) return OrderStatus::kOpen;
  auto all = [&](auto predicate) {
    return std::all_of(line_statuses.begin(), line_statuses.end(), predicate);
  };
  if (all([](LineStatus s) { return s == LineStatus::kRevoked; })) return OrderStatus::kRefunded;
  if (all([](LineStatus s) {
        return s == LineStatus::kComplete || s == LineStatus::kRevoked ||
               s == LineStatus::kRevocationError;
      })) {
    return OrderStatus::kComplete;
  }
  if (std::any_of(line_statuses.begin(), line_statuses.end(), IsFulfillmentError)) {
    return OrderStatus::kFulfillmentError;
  }
  return OrderStatus::kOpen;
}

ProductKind ClassifyProductType(std::string_view product_type) {
  if (product_type == kSeat) return ProductKind::kSeat;
  if (product_type == kCourseEntitlement) return ProductKind::kCourseEntitlement;
  if (product_type == kEnrollmentCode) return ProductKind::kEnrollmentCode;
  if (product_type == kCoupon) return ProductKind::kCoupon;
  if (product_type == kDonation) return ProductKind::kDonation;
  return ProductKind::kOther;
}

std::string_view ProductKindName(ProductKind kind) {
  switch (kind) {
    case ProductKind::kSeat:
      return kSeat;
    case ProductKind::kCourseEntitlement:
      return kCourseEntitlement;
    case ProductKind::kEnrollmentCode:
      return kEnrollmentCode;
    case ProductKind::kCoupon:
      return kCoupon;
    case ProductKind::kDonation:
      return kDonation;
    case ProductKind::kOther:
      return "";
  }
  return "";
}

}  // namespace ledger::domain
