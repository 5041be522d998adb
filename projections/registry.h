// The ledger's projections, in one list, so that the server and the command line run and
// rebuild the same set.
#pragma once

#include <string_view>
#include <vector>

#include "projections/projection.h"

namespace ledger::projections {

// order_status, payments, revenue.
std::vector<ProjectionFactory> DefaultProjections();

// The factory of the projection named `name`; an empty function when there is none.
ProjectionFactory FindProjection(std::string_view name);

}  // namespace ledger::projections
