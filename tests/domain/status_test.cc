#include "domain/status.h"

#include <catch2/catch.hpp>
#include <set>
#include <utility>
#include <vector>

namespace ledger::domain {
namespace {

using L = LineStatus;
using O = OrderStatus;

TEST_CASE("statuses carry the original's exact names", "[status]") {
  CHECK(OrderStatusName(O::kOpen) == "Open");
  CHECK(OrderStatusName(O::kComplete) == "Complete");
  CHECK(OrderStatusName(O::kFulfillmentError) == "Fulfillment Error");
  CHECK(OrderStatusName(O::kRefunded) == "Refunded");
  CHECK(LineStatusName(L::kOpen) == "Open");
  CHECK(LineStatusName(L::kComplete) == "Complete");
  CHECK(LineStatusName(L::kFulfillmentConfigurationError) == "Fulfillment Configuration Error");
  CHECK(LineStatusName(L::kFulfillmentNetworkError) == "Fulfillment Network Error");
  CHECK(LineStatusName(L::kFulfillmentTimeoutError) == "Fulfillment Timeout Error");
  CHECK(LineStatusName(L::kFulfillmentServerError) == "Fulfillment Server Error");
  CHECK(LineStatusName(L::kRevoked) == "Revoked");
  CHECK(LineStatusName(L::kRevocationError) == "Revocation Error");
}

TEST_CASE("status numbers are stable", "[status]") {
  CHECK(static_cast<int>(O::kOpen) == 1);
  CHECK(static_cast<int>(O::kRefunded) == 4);
  CHECK(static_cast<int>(L::kOpen) == 1);
  CHECK(static_cast<int>(L::kFulfillmentServerError) == 6);
  CHECK(static_cast<int>(L::kRevocationError) == 8);
  CHECK(AllLineStatuses().size() == 8);
  CHECK(AllOrderStatuses().size() == 4);
}

TEST_CASE("line transitions: exactly the issue's graph, plus staying put", "[status]") {
  const std::vector<L> errors = {L::kFulfillmentConfigurationError, L::kFulfillmentNetworkError,
                                 L::kFulfillmentTimeoutError, L::kFulfillmentServerError};
  std::set<std::pair<L, L>> allowed;
  for (L status : AllLineStatuses()) allowed.insert({status, status});
  allowed.insert({L::kOpen, L::kComplete});
  for (L error : errors) {
    allowed.insert({L::kOpen, error});
    allowed.insert({error, L::kComplete});
    for (L other : errors) allowed.insert({error, other});
  }
  allowed.insert({L::kComplete, L::kRevoked});
  allowed.insert({L::kComplete, L::kRevocationError});
  allowed.insert({L::kRevocationError, L::kRevoked});

  for (L from : AllLineStatuses()) {
    for (L to : AllLineStatuses()) {
      INFO(LineStatusName(from) << " -> " << LineStatusName(to));
      CHECK(IsLineTransitionAllowed(from, to) == (allowed.count({from, to}) == 1));
    }
  }
}

TEST_CASE("order transitions: Open <-> Fulfillment Error, both -> Complete -> Refunded",
          "[status]") {
  const std::set<std::pair<O, O>> allowed = {
      {O::kOpen, O::kOpen},
      {O::kComplete, O::kComplete},
      {O::kFulfillmentError, O::kFulfillmentError},
      {O::kRefunded, O::kRefunded},
      {O::kOpen, O::kComplete},
      {O::kOpen, O::kFulfillmentError},
      {O::kFulfillmentError, O::kComplete},
      // The failed line completed while another line is still Open (see domain/status.h).
      {O::kFulfillmentError, O::kOpen},
      {O::kComplete, O::kRefunded},
  };
  for (O from : AllOrderStatuses()) {
    for (O to : AllOrderStatuses()) {
      INFO(OrderStatusName(from) << " -> " << OrderStatusName(to));
      CHECK(IsOrderTransitionAllowed(from, to) == (allowed.count({from, to}) == 1));
    }
  }
}

TEST_CASE("the order status follows from its lines", "[status]") {
  struct Case {
    std::vector<L> lines;
    O status;
  };
  const Case cases[] = {
      {{L::kOpen}, O::kOpen},
      {{L::kOpen, L::kComplete}, O::kOpen},
      {{L::kComplete, L::kComplete}, O::kComplete},
      {{L::kComplete, L::kRevoked}, O::kComplete},
      {{L::kComplete, L::kRevocationError}, O::kComplete},
      {{L::kRevoked, L::kRevoked}, O::kRefunded},
      {{L::kRevoked}, O::kRefunded},
      {{L::kRevoked, L::kRevocationError}, O::kComplete},
      {{L::kComplete, L::kFulfillmentNetworkError}, O::kFulfillmentError},
      {{L::kOpen, L::kFulfillmentConfigurationError}, O::kFulfillmentError},
      {{L::kRevoked, L::kFulfillmentServerError}, O::kFulfillmentError},
      {{L::kRevoked, L::kOpen}, O::kOpen},
  };
  for (const Case& c : cases) {
    CHECK(DeriveOrderStatus(c.lines) == c.status);
  }
}

TEST_CASE("fulfillable lines are Open or in a fulfillment error", "[status]") {
  for (L status : AllLineStatuses()) {
    INFO(LineStatusName(status));
    const bool fulfillable =
        status != L::kComplete && status != L::kRevoked && status != L::kRevocationError;
    CHECK(IsFulfillable(status) == fulfillable);
    CHECK(IsFulfillmentError(status) == (fulfillable && status != L::kOpen));
  }
}

TEST_CASE("failure kinds map to the original's line error statuses", "[status]") {
  CHECK(LineStatusForFailure(FailureKind::kConfiguration) == L::kFulfillmentConfigurationError);
  CHECK(LineStatusForFailure(FailureKind::kNetwork) == L::kFulfillmentNetworkError);
  CHECK(LineStatusForFailure(FailureKind::kTimeout) == L::kFulfillmentTimeoutError);
  CHECK(LineStatusForFailure(FailureKind::kServer) == L::kFulfillmentServerError);
  CHECK(LineStatusForFailure(FailureKind::kUnknown) == L::kFulfillmentServerError);
}

TEST_CASE("product types: five known by name, any other allowed", "[status]") {
  CHECK(ClassifyProductType("Seat") == ProductKind::kSeat);
  CHECK(ClassifyProductType("Course Entitlement") == ProductKind::kCourseEntitlement);
  CHECK(ClassifyProductType("Enrollment Code") == ProductKind::kEnrollmentCode);
  CHECK(ClassifyProductType("Coupon") == ProductKind::kCoupon);
  CHECK(ClassifyProductType("Donation") == ProductKind::kDonation);
  CHECK(ClassifyProductType("seat") == ProductKind::kOther);
  CHECK(ClassifyProductType("Executive Education") == ProductKind::kOther);
  for (ProductKind kind :
       {ProductKind::kSeat, ProductKind::kCourseEntitlement, ProductKind::kEnrollmentCode,
        ProductKind::kCoupon, ProductKind::kDonation}) {
    CHECK(ClassifyProductType(ProductKindName(kind)) == kind);
  }
  CHECK(ProductKindName(ProductKind::kOther).empty());
}

}  // namespace
}  // namespace ledger::domain
