// Byte helpers: fixed-width big-endian integers (so that keys sort numerically in RocksDB's
// bytewise order) and hexadecimal text.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ledger {

inline void AppendBigEndian64(std::string& out, uint64_t value) {
  char bytes[8];
  for (int i = 7; i >= 0; --i) {
    bytes[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  out.append(bytes, 8);
}

inline void AppendBigEndian32(std::string& out, uint32_t value) {
  char bytes[4];
  for (int i = 3; i >= 0; --i) {
    bytes[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  out.append(bytes, 4);
}

// Reads 8 big-endian bytes; the caller guarantees that 8 bytes are there.
inline uint64_t ReadBigEndian64(const char* bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

// Reads 4 big-endian bytes; the caller guarantees that 4 bytes are there.
inline uint32_t ReadBigEndian32(const char* bytes) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

std::string ToHex(std::span<const uint8_t> bytes);
inline std::string ToHex(std::string_view bytes) {
  return ToHex(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

// Parses lowercase or uppercase hexadecimal; nullopt on odd length or a non-hex character.
std::optional<std::string> FromHex(std::string_view hex);

}  // namespace ledger

namespace ledger {
// Whether `text` is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool IsValidUtf8(std::string_view text);
}  // namespace ledger
