// Order and line statuses, with the original system's exact names so that people who know it
// feel at home, the transitions the ledger allows between them, and the product types.
//
// Line:  Open -> Complete | any fulfillment error;  fulfillment error -> Complete | any
//        fulfillment error;  Complete -> Revoked | Revocation Error;  Revocation Error -> Revoked.
// Order: derived from its lines (DeriveOrderStatus), so it moves Open -> Complete | Fulfillment
//        Error, Fulfillment Error -> Complete | Open, Complete -> Refunded. Fulfillment Error ->
//        Open is not in the list but follows from its derivation rule: when the only
//        failed line completes while another line has not been attempted yet, no line is in
//        error and not all are complete.
// Staying in the same status is always allowed: it is a no-op, never an error.
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "domain/events.h"

namespace ledger::domain {

// Never renumber: projections store these numbers.
enum class OrderStatus : uint8_t {
  kOpen = 1,
  kComplete = 2,
  kFulfillmentError = 3,
  kRefunded = 4,
};

// Never renumber: projections store these numbers.
enum class LineStatus : uint8_t {
  kOpen = 1,
  kComplete = 2,
  kFulfillmentConfigurationError = 3,
  kFulfillmentNetworkError = 4,
  kFulfillmentTimeoutError = 5,
  kFulfillmentServerError = 6,
  kRevoked = 7,
  kRevocationError = 8,
};

// "Open", "Complete", "Fulfillment Error", "Refunded".
std::string_view OrderStatusName(OrderStatus status);
// "Open", "Complete", "Fulfillment Configuration Error", ..., "Revoked", "Revocation Error".
std::string_view LineStatusName(LineStatus status);

std::span<const OrderStatus> AllOrderStatuses();
std::span<const LineStatus> AllLineStatuses();

bool IsFulfillmentError(LineStatus status);
// Open or a fulfillment error: the lines a (re)try of fulfillment may touch. A Complete line is
// never fulfilled again (the original re-ran every line and minted a second entitlement).
bool IsFulfillable(LineStatus status);
// Complete or Revocation Error: a line that was fulfilled and is not revoked, which a refund may
// revoke (again, after a failed revocation).
bool IsRevocable(LineStatus status);

// The line status a failed fulfillment attempt leaves. kUnknown counts as a server error: the
// partner system did something nobody classified.
LineStatus LineStatusForFailure(FailureKind kind);

bool IsLineTransitionAllowed(LineStatus from, LineStatus to);
bool IsOrderTransitionAllowed(OrderStatus from, OrderStatus to);

// The order status its lines imply: Refunded when every line is Revoked; Complete when every
// line is Complete, Revoked or Revocation Error (a line whose revocation failed was fulfilled,
// and the order must not look fulfillable again); Fulfillment Error when any line is in a
// fulfillment error; else Open.
OrderStatus DeriveOrderStatus(std::span<const LineStatus> line_statuses);

// The product types the fulfillment modules know. Any other name is allowed on a line
// (ProductKind::kOther): fulfillment then reports a configuration error for it.
enum class ProductKind : uint8_t {
  kOther = 0,
  kSeat = 1,
  kCourseEntitlement = 2,
  kEnrollmentCode = 3,
  kCoupon = 4,
  kDonation = 5,
};

inline constexpr std::string_view kSeat = "Seat";
inline constexpr std::string_view kCourseEntitlement = "Course Entitlement";
inline constexpr std::string_view kEnrollmentCode = "Enrollment Code";
inline constexpr std::string_view kCoupon = "Coupon";
inline constexpr std::string_view kDonation = "Donation";

// Exact, case-sensitive match of the names above; kOther for anything else.
ProductKind ClassifyProductType(std::string_view product_type);
// The name of a known kind; "" for kOther.
std::string_view ProductKindName(ProductKind kind);

}  // namespace ledger::domain
