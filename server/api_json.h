// How the API renders the ledger as JSON: events, orders, amounts and times. Shared by the
// request handlers (server/ledger_api.cc) and the server-sent event stream
// (server/event_stream.cc), so that an event looks the same wherever it is read.
//
// Amounts are decimal strings in the currency's minor digits ("49.00"); times are RFC 3339 UTC
// with microseconds ("2026-11-22T12:00:00.000000Z").
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "domain/events.h"
#include "domain/order_state.h"
#include "eventstore/event_store.h"

namespace ledger::server {

// "" for times not set (<= 0).
std::string FormatTime(int64_t time_us);
// The time, or null when not set.
boost::json::value TimeValue(int64_t time_us);
// "49.00" in the currency's minor digits; the minor units as a string for an unknown currency.
boost::json::value AmountValue(int64_t minor_units, std::string_view currency);

// A JSON array of the strings.
boost::json::array StringsJson(const std::vector<std::string>& strings);
// The domain event's fields.
boost::json::object EventJson(const domain::Event& event);
// A line of an order's state: the basket line, status, attempts, last error, next retry, ...
boost::json::object LineStateJson(const domain::LineState& line, std::string_view currency);
// An order as its state says; `position` is that of the order's last event reflected.
boost::json::object OrderJson(const domain::OrderState& state, uint64_t position);
// A recorded event of the log: position, stream, version, type, recorded_at, actor, hash (hex)
// and data (EventJson). kCorruption when its data does not decode.
Result<boost::json::object, eventstore::Error> RecordJson(const eventstore::RecordedEvent& record);

// The text of boost::json::serialize(RecordJson(record)), appended to `out` without building a
// JSON tree: `event` is the record's data, decoded by the caller (eventstore::DecodeEvent). For
// the server-sent event stream, which sends every event of the log; tests/server/api_json_test.cc
// holds the two to the same bytes. Strings are escaped as Boost.JSON does: the quote, the
// backslash and the control characters (\b \t \n \f \r, \u00XX for the others); every other
// byte, UTF-8 sequences included, is copied as is.
void AppendRecordJson(const eventstore::RecordedEvent& record, const domain::Event& event,
                      std::string& out);

}  // namespace ledger::server
