// A ledger with a process manager for tests: the event store and the state store in a temporary
// directory, the five modules routed in the default order (the LMS ones against a stand-in), and
// orders placed through the command service.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "eventstore/event_store.h"
#include "eventstore/order_command_service.h"
#include "eventstore/state_store.h"
#include "fulfillment/http_client.h"
#include "fulfillment/modules.h"
#include "fulfillment/process_manager.h"
#include "fulfillment/router.h"
#include "server/lms_standin.h"
#include "tests/eventstore/store_test_support.h"

namespace ledger::fulfillment::testing {

// Enrollment and course entitlement against `lms_url` (through `client`, a new one when null),
// then enrollment codes, coupons and donations.
Router DefaultRouter(const std::string& lms_url, std::string api_key, int64_t timeout_ms,
                     std::shared_ptr<HttpClient> client = nullptr);

// A capture and a placement of `lines` (totals computed), through `service`.
void PlaceOrder(eventstore::OrderCommandService& service, const std::string& order_number,
                std::vector<domain::Line> lines, int64_t now_us);

domain::Line Seat(std::string line_id, std::string course_key);
domain::Line Entitlement(std::string line_id, std::string course_uuid);
domain::Line Local(std::string line_id, std::string product_type, int64_t quantity = 1);

// How many times each event type appears in the order's stream.
std::map<std::string, int> EventCounts(eventstore::EventStore& store,
                                       const std::string& order_number);

}  // namespace ledger::fulfillment::testing
