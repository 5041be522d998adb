#include "base/event_id.h"

#include <chrono>
#include <random>

#include "base/bytes.h"
#include "base/sha256.h"

namespace ledger {

namespace {
uint64_t RandomBits() {
  // One generator per thread, seeded from the OS: no lock on the hot path.
  thread_local std::mt19937_64 generator([] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }());
  return generator();
}

void SetVersionAndVariant(std::array<uint8_t, EventId::kSize>& bytes, uint8_t version) {
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | (version << 4));
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 9562 variant 10xx.
}
}  // namespace

EventId EventId::NewRandom() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const uint64_t unix_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
  std::array<uint8_t, kSize> bytes{};
  for (size_t i = 0; i < 6; ++i) bytes[i] = static_cast<uint8_t>(unix_ms >> (8 * (5 - i)));
  const uint64_t random_high = RandomBits();
  const uint64_t random_low = RandomBits();
  for (size_t i = 6; i < 8; ++i) bytes[i] = static_cast<uint8_t>(random_high >> (8 * (i - 6)));
  for (size_t i = 8; i < 16; ++i) bytes[i] = static_cast<uint8_t>(random_low >> (8 * (i - 8)));
  SetVersionAndVariant(bytes, 7);
  return EventId(bytes);
}

EventId EventId::FromName(std::string_view name_space, std::string_view name) {
  Sha256 hasher;
  const uint64_t name_space_size = name_space.size();
  hasher.Update(&name_space_size, sizeof(name_space_size));  // Unambiguous split of the two.
  hasher.Update(name_space);
  hasher.Update(name);
  const Hash256 digest = hasher.Finish();
  std::array<uint8_t, kSize> bytes{};
  for (size_t i = 0; i < kSize; ++i) bytes[i] = digest[i];
  SetVersionAndVariant(bytes, 8);
  return EventId(bytes);
}

std::optional<EventId> EventId::Parse(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  std::string hex;
  hex.reserve(32);
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash_expected = (i == 8 || i == 13 || i == 18 || i == 23);
    if (dash_expected != (text[i] == '-')) return std::nullopt;
    if (!dash_expected) hex.push_back(text[i]);
  }
  auto raw = FromHex(hex);
  if (!raw) return std::nullopt;
  return FromBytes(*raw);
}

std::optional<EventId> EventId::FromBytes(std::string_view raw) {
  if (raw.size() != kSize) return std::nullopt;
  std::array<uint8_t, kSize> bytes{};
  for (size_t i = 0; i < kSize; ++i) bytes[i] = static_cast<uint8_t>(raw[i]);
  return EventId(bytes);
}

std::string EventId::ToString() const {
  const std::string hex = ToHex(std::span<const uint8_t>(bytes_));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

}  // namespace ledger
