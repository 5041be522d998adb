// The bytes of projection rows: big-endian integers and length-prefixed texts, written with the
// Put functions and read back with RowReader, which checks every length against the bytes that
// are there. Each projection documents its own row layout with these pieces.
//
// Thread safety: plain functions; a RowReader belongs to one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "domain/limits.h"

namespace ledger::projections {

// The key of an order's row in projections with one row per order: "o/<order number>" (relative
// to the generation).
inline std::string OrderRowKey(std::string_view order_number) {
  std::string key("o/");
  key.append(order_number);
  return key;
}

inline void PutU8(std::string& out, uint8_t value) { out.push_back(static_cast<char>(value)); }
inline void PutU64(std::string& out, uint64_t value) { AppendBigEndian64(out, value); }
inline void PutI64(std::string& out, int64_t value) {
  AppendBigEndian64(out, static_cast<uint64_t>(value));
}
inline void PutText(std::string& out, std::string_view text) {
  AppendBigEndian32(out, static_cast<uint32_t>(text.size()));
  out.append(text);
}

// Reads a row front to back. After the first read that finds too few bytes (or a value out of
// its range), ok() is false and every later read fails too, so a decoder can read a whole row
// and check once.
class RowReader {
 public:
  explicit RowReader(std::string_view bytes) : bytes_(bytes) {}

  bool ok() const { return ok_; }
  bool at_end() const { return bytes_.empty(); }

  uint8_t U8() {
    if (!Need(1)) return 0;
    const auto value = static_cast<uint8_t>(bytes_[0]);
    bytes_.remove_prefix(1);
    return value;
  }
  bool Bool() {
    const uint8_t value = U8();
    if (value > 1) ok_ = false;
    return value == 1;
  }
  uint32_t U32() {
    if (!Need(4)) return 0;
    const uint32_t value = ReadBigEndian32(bytes_.data());
    bytes_.remove_prefix(4);
    return value;
  }
  uint64_t U64() {
    if (!Need(8)) return 0;
    const uint64_t value = ReadBigEndian64(bytes_.data());
    bytes_.remove_prefix(8);
    return value;
  }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  // A signed amount that may not be negative.
  int64_t Amount() {
    const int64_t value = I64();
    if (value < 0) ok_ = false;
    return value;
  }
  std::string Text() {
    const uint32_t size = U32();
    // No text the domain accepts is longer; a longer length is damage, not a big allocation.
    if (size > domain::kTextBytesMax) ok_ = false;
    if (!Need(size)) return {};
    std::string text(bytes_.substr(0, size));
    bytes_.remove_prefix(size);
    return text;
  }

 private:
  bool Need(size_t count) {
    if (ok_ && bytes_.size() >= count) return true;
    ok_ = false;
    return false;
  }
  std::string_view bytes_;
  bool ok_ = true;
};

}  // namespace ledger::projections
