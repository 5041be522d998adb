#include "eventstore/record_codec.h"

#include <catch2/catch.hpp>

#include "tests/eventstore/store_test_support.h"

namespace ledger::eventstore::internal {
namespace {

using testing::SameRecord;

RecordedEvent SampleRecord() {
  RecordedEvent record;
  record.position = 42;
  record.stream = "order-EDX-100042";
  record.version = 3;
  record.event_id = EventId::NewRandom();
  record.event_type = "LineFulfilled";
  record.recorded_at_us = 1'790'000'000'000'000;
  record.correlation_id = EventId::NewRandom();
  record.actor = "process-manager";
  record.schema_version = 2;
  record.payload = std::string("\x00\x01payload\xff", 10);
  record.previous_hash = Sha256Digest("previous");
  record.hash = ComputeRecordHash(record);
  return record;
}

TEST_CASE("a record survives encoding and decoding whole", "[codec]") {
  const RecordedEvent original = SampleRecord();
  const std::string bytes = EncodeRecord(original);
  RecordedEvent decoded;
  REQUIRE(DecodeRecord(bytes, 42, decoded).has_value());
  CHECK(SameRecord(original, decoded));
  CHECK(HasValidHash(decoded));
}

TEST_CASE("a record decodes from an unaligned buffer", "[codec]") {
  const std::string bytes = EncodeRecord(SampleRecord());
  std::string shifted = "x" + bytes;
  RecordedEvent decoded;
  REQUIRE(DecodeRecord(std::string_view(shifted).substr(1), 42, decoded).has_value());
}

TEST_CASE("every field is covered by the hash", "[codec]") {
  const RecordedEvent original = SampleRecord();
  auto changed = [&](auto mutate) {
    RecordedEvent copy = original;
    mutate(copy);
    return ComputeRecordHash(copy) != original.hash;
  };
  CHECK(changed([](RecordedEvent& r) { r.position++; }));
  CHECK(changed([](RecordedEvent& r) { r.version++; }));
  CHECK(changed([](RecordedEvent& r) { r.stream += "x"; }));
  CHECK(changed([](RecordedEvent& r) { r.event_id = EventId::NewRandom(); }));
  CHECK(changed([](RecordedEvent& r) { r.event_type = "LineRevoked"; }));
  CHECK(changed([](RecordedEvent& r) { r.recorded_at_us++; }));
  CHECK(changed([](RecordedEvent& r) { r.correlation_id = EventId(); }));
  CHECK(changed([](RecordedEvent& r) { r.causation_id = EventId::NewRandom(); }));
  CHECK(changed([](RecordedEvent& r) { r.actor = "ops"; }));
  CHECK(changed([](RecordedEvent& r) { r.schema_version++; }));
  CHECK(changed([](RecordedEvent& r) { r.payload[0] = 'x'; }));
  CHECK(changed([](RecordedEvent& r) { r.previous_hash[0] ^= 1; }));
  // Moving bytes between adjacent variable-length fields changes the hash too.
  CHECK(changed([](RecordedEvent& r) {
    r.stream = "order-EDX-10004";
    r.event_type = "2LineFulfilled";
  }));
}

TEST_CASE("damaged bytes give a corruption error naming the position, never a crash", "[codec]") {
  const std::string bytes = EncodeRecord(SampleRecord());
  RecordedEvent decoded;
  SECTION("empty") {
    auto result = DecodeRecord("", 42, decoded);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == ErrorCode::kCorruption);
    CHECK(result.error().position == 42);
  }
  SECTION("truncated") {
    for (size_t size = 8; size < bytes.size(); size += 8) {
      auto result = DecodeRecord(std::string_view(bytes).substr(0, size), 42, decoded);
      REQUIRE_FALSE(result.has_value());
      CHECK(result.error().code == ErrorCode::kCorruption);
    }
  }
  SECTION("not a whole number of words") {
    auto result = DecodeRecord(std::string_view(bytes).substr(0, bytes.size() - 3), 42, decoded);
    REQUIRE_FALSE(result.has_value());
  }
  SECTION("garbage") {
    std::string garbage(bytes.size(), '\xa5');
    auto result = DecodeRecord(garbage, 42, decoded);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == ErrorCode::kCorruption);
  }
  SECTION("at another position") {
    auto result = DecodeRecord(bytes, 43, decoded);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().position == 43);
  }
  SECTION("a flipped byte is rejected, fails the hash, or changed nothing") {
    const RecordedEvent original = SampleRecord();
    const std::string original_bytes = EncodeRecord(original);
    for (size_t i = 0; i < original_bytes.size(); ++i) {
      std::string damaged = original_bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
      RecordedEvent out;
      auto result = DecodeRecord(damaged, 42, out);
      if (!result.has_value()) {
        CHECK(result.error().code == ErrorCode::kCorruption);
      } else if (HasValidHash(out)) {
        // Only bytes that carry no content (padding, unused pointer bits) may pass.
        CHECK(SameRecord(out, original));
      }
    }
  }
}

}  // namespace
}  // namespace ledger::eventstore::internal
