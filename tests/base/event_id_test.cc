#include "base/event_id.h"

#include <catch2/catch.hpp>
#include <set>

namespace ledger {
namespace {

TEST_CASE("random event ids are distinct, time-ordered UUIDv7s", "[event_id]") {
  std::set<EventId> seen;
  for (int i = 0; i < 10000; ++i) REQUIRE(seen.insert(EventId::NewRandom()).second);
  const EventId id = EventId::NewRandom();
  CHECK((id.bytes()[6] >> 4) == 7);
  CHECK((id.bytes()[8] & 0xc0) == 0x80);
  CHECK_FALSE(id.IsNil());
}

TEST_CASE("named event ids are deterministic and separate namespaces", "[event_id]") {
  CHECK(EventId::FromName("PlaceOrder", "EDX-100042") ==
        EventId::FromName("PlaceOrder", "EDX-100042"));
  CHECK(EventId::FromName("PlaceOrder", "EDX-100042") !=
        EventId::FromName("PlaceOrder", "EDX-100043"));
  // The split between namespace and name is part of the key.
  CHECK(EventId::FromName("ab", "c") != EventId::FromName("a", "bc"));
  CHECK((EventId::FromName("x", "y").bytes()[6] >> 4) == 8);
}

TEST_CASE("event ids round-trip through text and reject malformed text", "[event_id]") {
  const EventId id = EventId::NewRandom();
  const auto parsed = EventId::Parse(id.ToString());
  REQUIRE(parsed.has_value());
  CHECK(*parsed == id);
  CHECK(EventId::Parse("0190f3a2-7c1e-7d2a-9b3c-4d5e6f708192").has_value());
  CHECK(EventId::Parse("0190F3A2-7C1E-7D2A-9B3C-4D5E6F708192").has_value());
  CHECK_FALSE(EventId::Parse("").has_value());
  CHECK_FALSE(EventId::Parse("0190f3a2-7c1e-7d2a-9b3c-4d5e6f70819").has_value());
  CHECK_FALSE(EventId::Parse("0190f3a2x7c1e-7d2a-9b3c-4d5e6f708192").has_value());
  CHECK_FALSE(EventId::Parse("0190f3a2-7c1e-7d2a-9b3c-4d5e6f70819g").has_value());
  CHECK_FALSE(EventId::FromBytes("short").has_value());
  CHECK(EventId().ToString() == "00000000-0000-0000-0000-000000000000");
}

}  // namespace
}  // namespace ledger
