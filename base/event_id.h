// EventId: the 128-bit idempotency key of one event, chosen by the writer. Appending an event
// whose id the log already holds never writes it twice (see eventstore/event_store.h).
//
// Text form: the canonical UUID layout, 8-4-4-4-12 lowercase hexadecimal digits.
// Thread safety: a plain value type; NewRandom() is thread-safe.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ledger {

class EventId {
 public:
  static constexpr size_t kSize = 16;

  // The nil id (all zero bits). Writers never use it for an event; the store rejects it.
  EventId() : bytes_{} {}
  explicit EventId(const std::array<uint8_t, kSize>& bytes) : bytes_(bytes) {}

  // A fresh id laid out as a UUIDv7: 48 bits of Unix milliseconds, then random bits. Ids made
  // close in time sort close together, which keeps the store's id index compact.
  static EventId NewRandom();

  // A deterministic id derived from a name inside a namespace (SHA-256, laid out as a UUIDv8):
  // the same (name_space, name) always gives the same id. Used where a retry must carry the
  // key of its first attempt, e.g. "PlaceOrder" + the order number.
  static EventId FromName(std::string_view name_space, std::string_view name);

  // Parses the canonical text form (either letter case). nullopt on anything else.
  static std::optional<EventId> Parse(std::string_view text);

  // Builds an id from exactly 16 raw bytes; nullopt on any other size.
  static std::optional<EventId> FromBytes(std::string_view bytes);

  std::string ToString() const;
  std::string_view AsBytes() const {
    return std::string_view(reinterpret_cast<const char*>(bytes_.data()), kSize);
  }
  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }
  bool IsNil() const { return *this == EventId(); }

  friend auto operator<=>(const EventId&, const EventId&) = default;
  friend bool operator==(const EventId&, const EventId&) = default;

 private:
  std::array<uint8_t, kSize> bytes_;
};

struct EventIdHash {
  size_t operator()(const EventId& id) const {
    uint64_t low = 0;
    for (size_t i = 8; i < EventId::kSize; ++i) low = (low << 8) | id.bytes()[i];
    return static_cast<size_t>(low ^ (low >> 29));
  }
};

}  // namespace ledger
