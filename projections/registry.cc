#include "projections/registry.h"

#include "projections/order_status_projection.h"
#include "projections/payments_projection.h"
#include "projections/revenue_projection.h"

namespace ledger::projections {

std::vector<ProjectionFactory> DefaultProjections() {
  return {
      [] { return std::make_unique<OrderStatusProjection>(); },
      [] { return std::make_unique<PaymentsProjection>(); },
      [] { return std::make_unique<RevenueProjection>(); },
  };
}

ProjectionFactory FindProjection(std::string_view name) {
  for (ProjectionFactory& factory : DefaultProjections()) {
    if (factory()->name() == name) return factory;
  }
  return {};
}

}  // namespace ledger::projections
