// Internal to the audit library (digest.cc, audit_export.cc): reading the fields of the JSON
// objects it writes, with an error text naming the field for anything missing or mistyped.
#pragma once

#include <boost/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace ledger::eventstore::audit_json {

inline Result<const boost::json::value*, std::string> Field(const boost::json::object& object,
                                                            std::string_view name) {
  const boost::json::value* value = object.if_contains(name);
  if (value == nullptr) return Unexpected("no \"" + std::string(name) + "\"");
  return value;
}

inline Result<uint64_t, std::string> Unsigned(const boost::json::object& object,
                                              std::string_view name) {
  auto value = Field(object, name);
  if (!value) return Unexpected(std::move(value).error());
  if ((*value)->is_uint64()) return (*value)->get_uint64();
  if ((*value)->is_int64() && (*value)->get_int64() >= 0) {
    return static_cast<uint64_t>((*value)->get_int64());
  }
  return Unexpected("\"" + std::string(name) + "\" is not a non-negative integer");
}

inline Result<int64_t, std::string> Signed(const boost::json::object& object,
                                           std::string_view name) {
  auto value = Field(object, name);
  if (!value) return Unexpected(std::move(value).error());
  if ((*value)->is_int64()) return (*value)->get_int64();
  return Unexpected("\"" + std::string(name) + "\" is not an integer");
}

inline Result<std::string_view, std::string> Text(const boost::json::object& object,
                                                  std::string_view name) {
  auto value = Field(object, name);
  if (!value) return Unexpected(std::move(value).error());
  if (!(*value)->is_string()) return Unexpected("\"" + std::string(name) + "\" is not a string");
  const boost::json::string& text = (*value)->get_string();
  return std::string_view(text.data(), text.size());
}

// A hex string of exactly N bytes.
template <size_t N>
Result<std::array<uint8_t, N>, std::string> HexBytes(const boost::json::object& object,
                                                     std::string_view name) {
  auto text = Text(object, name);
  if (!text) return Unexpected(std::move(text).error());
  auto bytes = FromHex(*text);
  if (!bytes || bytes->size() != N) {
    return Unexpected("\"" + std::string(name) + "\" is not " + std::to_string(N) +
                      " bytes in hex");
  }
  std::array<uint8_t, N> out{};
  for (size_t i = 0; i < N; ++i) out[i] = static_cast<uint8_t>((*bytes)[i]);
  return out;
}

// Parses `text` as one JSON object.
inline Result<boost::json::object, std::string> ParseObject(std::string_view text) {
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(text, error);
  if (error) return Unexpected("not JSON (" + error.message() + ")");
  if (!value.is_object()) return Unexpected(std::string("not a JSON object"));
  return std::move(value.get_object());
}

}  // namespace ledger::eventstore::audit_json
